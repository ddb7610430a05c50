from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import path, re_path

from notes import views

urlpatterns = [
    path("", views.home, name="home"),
    path("whoami/", views.whoami),
    path("ajax/", views.ajax_page),
    path("ajax/notes/", views.ajax_create),
    path("xsrf/", views.xsrf_page),
    path("xsrf/notes/", views.xsrf_create),
    path("admin/", admin.site.urls),
    # The admin's CSS and JS straight from the installed apps: fine for a test site (a real
    # deployment serves collected static files from its web server or WhiteNoise).
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
