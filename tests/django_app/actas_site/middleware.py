from django.contrib.auth.middleware import RemoteUserMiddleware


class ActAsRemoteUserMiddleware(RemoteUserMiddleware):
    """The signed-in user is the username ActAs sends in X-Forwarded-User (SPEC §5). ActAs
    strips any X-Forwarded-User a client sends, so the app must be reachable only through it."""

    header = "HTTP_X_FORWARDED_USER"
