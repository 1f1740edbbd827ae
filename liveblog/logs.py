"""Logging for production: one line per request and per socket connect and disconnect.

Lines are plain text by default, or one JSON object each with LOG_FORMAT=json for a log
shipper. Malformed Socket.IO input is logged once per connection, as a single line: a
client sending garbage must not be able to fill the disk with tracebacks.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qs

from flask import Flask
from pythonjsonlogger.json import JsonFormatter
from werkzeug.wsgi import ClosingIterator

from . import metrics
from .security import clip

access_log = logging.getLogger("liveblog.access")
socket_log = logging.getLogger("liveblog.socket")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "message"]
# Libraries that log through their own handlers unless told otherwise.
LIBRARY_LOGGERS = ("engineio.server", "socketio.server")
# The server's own access lines would repeat the application's (AccessLog below).
SERVER_ACCESS_LOGGERS = ("geventwebsocket.handler",)
# Marks the handler installed here, so a second app in one process replaces it.
HANDLER_NAME = "liveblog"
STARTED = "liveblog.started"  # environ key: when the request reached the application
# The request being handled in this greenlet (or thread), for log records made without it.
_current_request: ContextVar[dict[str, Any] | None] = ContextVar("request", default=None)


def init_app(app: Flask) -> None:
    """Send the application's logs, as text or JSON, to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.name = HANDLER_NAME
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(
            JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level"})
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = app.config["LOG_LEVEL"].upper()
    for name in ("liveblog", "liveblog.access", "liveblog.socket"):
        logging.getLogger(name).setLevel(level)


def init_middleware(app: Flask) -> None:
    """Once Socket.IO is bound: its loggers use the handler above, its events are logged."""
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        # Engine.IO and Socket.IO add a plain handler of their own; one format is wanted.
        library.handlers = [h for h in library.handlers if type(h) is not logging.StreamHandler]
    for name in SERVER_ACCESS_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    from .extensions import socketio

    watch_sockets(socketio.server.eio)
    engineio_log = logging.getLogger("engineio.server")
    for old in [f for f in engineio_log.filters if isinstance(f, UndecodablePosts)]:
        engineio_log.removeFilter(old)
    engineio_log.addFilter(UndecodablePosts(socketio.server.eio))
    app.wsgi_app = AccessLog(app.wsgi_app)


class AccessLog:
    """One line per HTTP request (Socket.IO's polling requests too), written when it ends."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        environ[STARTED] = time.perf_counter()
        _current_request.set(environ)
        status: list[str] = []

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[:] = [line.split(" ", 1)[0]]
            return start_response(line, headers, exc_info)

        try:
            body = self.app(environ, start)
        except ValueError as error:
            if "wsgi.websocket" not in environ:
                _log_request(environ, "500")
                raise
            # Engine.IO could not decode a WebSocket frame, which ends the connection: one
            # line for it, not a traceback.
            socket_log.warning(
                "malformed Engine.IO packet from %s (%s); connection closed",
                environ.get("REMOTE_ADDR"), clip(str(error)),
            )  # fmt: skip
            _log_request(environ, "400")
            return []
        except BaseException:
            _log_request(environ, "500")
            raise
        return ClosingIterator(body, lambda: _log_request(environ, status[0] if status else "-"))


def _log_request(environ: dict[str, Any], status: str) -> None:
    milliseconds = round((time.perf_counter() - environ[STARTED]) * 1000, 1)
    query = environ.get("QUERY_STRING", "")
    path = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    fields = {
        "method": environ.get("REQUEST_METHOD"),
        "path": clip(path, 300),
        "status": int(status) if status.isdigit() else None,
        "duration_ms": milliseconds,
        "remote_addr": environ.get("REMOTE_ADDR"),
    }
    access_log.info(
        "%s %s %s %sms %s", fields["method"], fields["path"], status, milliseconds,
        fields["remote_addr"], extra=fields,
    )  # fmt: skip


def watch_sockets(eio: Any) -> None:
    """Log Engine.IO connections as they open and close, and malformed packets once each.

    Wraps the handlers python-socketio registered with Engine.IO (through its public `on`),
    so the socket handlers themselves stay as they are.
    """
    on_connect, on_message, on_disconnect = (
        eio.handlers[event] for event in ("connect", "message", "disconnect")
    )

    def connected(sid: str, environ: dict[str, Any], *args: Any) -> Any:
        upgrade = environ.get("HTTP_UPGRADE", "").lower()
        transport = "websocket" if upgrade == "websocket" else "polling"
        fields = {"sid": sid, "remote_addr": environ.get("REMOTE_ADDR"), "transport": transport}
        accepted = on_connect(sid, environ, *args)
        if accepted is not None and accepted is not True:
            # Refused (engine.io's rule): no disconnect will follow, so it is not counted.
            return accepted
        socket_log.info("socket connect %s from %s (%s)", sid, fields["remote_addr"], transport,
                        extra=fields)  # fmt: skip
        metrics.CONNECTED.inc()
        return accepted

    def disconnected(sid: str, *args: Any) -> Any:
        reason = str(args[0]) if args else "unknown"
        fields = {"sid": sid, "reason": reason}
        socket_log.info("socket disconnect %s (%s)", sid, reason, extra=fields)
        metrics.CONNECTED.dec()
        return on_disconnect(sid, *args)

    def message(sid: str, data: Any) -> Any:
        try:
            return on_message(sid, data)
        except Exception as error:  # undecodable input; the event handlers catch their own
            log_malformed(eio, sid, data, error)
            return None

    eio.on("connect", connected)
    eio.on("message", message)
    eio.on("disconnect", disconnected)


def log_malformed(eio: Any, sid: str, data: Any, error: Exception) -> None:
    """Log the first malformed packet of a connection, in one line; drop the rest silently."""
    socket = eio.sockets.get(sid)
    if socket is None or getattr(socket, "liveblog_malformed", False):
        return
    socket.liveblog_malformed = True  # lives and dies with the connection
    sample = clip(data if isinstance(data, str) else repr(data), 60)
    socket_log.warning(
        "malformed Socket.IO packet from %s (%s: %s), first was %r; later ones not logged",
        sid, type(error).__name__, clip(str(error)), sample, extra={"sid": sid},
    )  # fmt: skip


class UndecodablePosts(logging.Filter):
    """Engine.IO logs a traceback for every polling POST it cannot decode, and keeps the
    session: one client could fill the log. Keep the first per connection, as one line."""

    def __init__(self, eio: Any) -> None:
        super().__init__()
        self.eio = eio

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "post request handler error" or not record.exc_info:
            return True
        environ = _current_request.get() or {}
        sid = parse_qs(environ.get("QUERY_STRING", "")).get("sid", [""])[0]
        socket = self.eio.sockets.get(sid)
        if socket is None or getattr(socket, "liveblog_malformed", False):
            return False
        socket.liveblog_malformed = True
        error = record.exc_info[1]
        record.msg = "malformed Engine.IO packet from %s (%s: %s); later ones not logged"
        record.args = (sid, type(error).__name__, clip(str(error)))
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
