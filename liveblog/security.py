"""Response headers that keep a page from running or loading anything it should not.

They are added by a WSGI middleware around the whole application rather than in Flask's
`after_request`, so that Socket.IO's own responses (which never reach Flask) and the error
pages of every layer carry them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
# A year, as browsers' preload lists expect; only sent when the site is served over TLS.
HSTS = "max-age=31536000; includeSubDomains"
# What a refusal may quote of the client's own input, so a 10,000-character slug is not
# sent straight back (nor written to the log) in full.
MAX_ECHO = 80

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """The client's input shortened for quoting in a refusal."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SecureHeaders:
    """Adds the security headers to every response that does not set its own."""

    def __init__(self, app: WSGIApp, hsts: bool) -> None:
        self.app = app
        self.headers = [
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ]
        if hsts:
            self.headers.append(("Strict-Transport-Security", HSTS))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in self.headers if h[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def init_app(app: Flask) -> None:
    app.wsgi_app = SecureHeaders(app.wsgi_app, hsts=app.config["SESSION_COOKIE_SECURE"])
