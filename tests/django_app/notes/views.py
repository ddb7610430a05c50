import json
import secrets

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden, JsonResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_POST

from .models import Note

XSRF_COOKIE = "XSRF-TOKEN"


@login_required
def home(request):
    return render(request, "notes/home.html")


def whoami(request):
    """What Django believes: the user and which Django session this browser is in."""
    return JsonResponse({"user": request.user.get_username() if request.user.is_authenticated else None,
                         "session": request.session.session_key})


@login_required
@ensure_csrf_cookie
def ajax_page(request):
    return render(request, "notes/ajax.html")


@login_required
@require_POST
def ajax_create(request):
    """Django's documented AJAX pattern: CsrfViewMiddleware checks X-CSRFToken against the
    csrftoken cookie the page's script read from document.cookie."""
    data = json.loads(request.body or b"{}")
    note = Note.objects.create(title=data.get("title", ""), created_by=request.user.get_username())
    return JsonResponse({"id": note.id, "created_by": note.created_by})


@login_required
def xsrf_page(request):
    """Angular's (and Laravel/axios's) pattern: the server sets a script-readable XSRF-TOKEN
    cookie; the client echoes it in X-XSRF-TOKEN; the server compares with its session."""
    token = request.session.get("xsrf") or secrets.token_urlsafe(24)
    request.session["xsrf"] = token
    response = render(request, "notes/xsrf.html")
    response.set_cookie(XSRF_COOKIE, token, secure=True, samesite="Lax", httponly=False)
    return response


@csrf_exempt  # checked below, the Angular way, instead of Django's own token
@login_required
@require_POST
def xsrf_create(request):
    sent = request.headers.get("X-XSRF-Token", "")
    expected = request.session.get("xsrf", "")
    if not expected or not constant_time_compare(sent, expected):
        return HttpResponseForbidden("XSRF token missing or wrong")
    data = json.loads(request.body or b"{}")
    note = Note.objects.create(title=data.get("title", ""), created_by=request.user.get_username())
    return JsonResponse({"id": note.id, "created_by": note.created_by})
