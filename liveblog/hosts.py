"""Which host names the site answers to.

Without PUBLIC_URL, every absolute link on a page (canonical, Open Graph, JSON-LD, feeds) is
built from the request's Host, and a shared cache in front hands that page to everyone: a
forged Host must be refused before anything is rendered. With ALLOWED_HOSTS set, Flask
refuses any other (its TRUSTED_HOSTS), and Socket.IO's requests, which never reach Flask's
routing, are refused here the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_host

from .errors import wants_json
from .security import clip

# Flask-SocketIO's default path, which the reader's script and deploy/nginx.conf use too.
SOCKET_PATH = "/socket.io/"


def init_app(app: Flask) -> None:
    allowed = list(app.config["ALLOWED_HOSTS"])
    if not allowed:
        return  # any host: development, or links fixed by PUBLIC_URL
    app.config["TRUSTED_HOSTS"] = allowed
    app.register_error_handler(SecurityError, _refused)
    app.wsgi_app = SocketHosts(app.wsgi_app, allowed)


def refusal(environ: dict[str, Any]) -> str:
    return f"This site does not answer to the host name {clip(environ.get('HTTP_HOST', ''))!r}."


def _refused(error: SecurityError) -> Any:
    # Plain text, not the error page: that page's links would be built from the refused host.
    message = refusal(request.environ)
    if wants_json():
        return jsonify(error=message), 400
    return Response(message, status=400, mimetype="text/plain")


class SocketHosts:
    """Refuses Socket.IO requests naming a host that is not allowed, as Flask does the rest."""

    def __init__(self, app: Callable[..., Iterable[bytes]], allowed: list[str]) -> None:
        self.app = app
        self.allowed = allowed

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        if environ.get("PATH_INFO", "").startswith(SOCKET_PATH):
            try:
                get_host(environ, self.allowed)
            except SecurityError:
                answer = Response(refusal(environ), status=400, mimetype="text/plain")
                return answer(environ, start_response)
        return self.app(environ, start_response)
