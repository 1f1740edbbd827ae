"""A cap on the Socket.IO connections one client address may hold open.

Counted at engine.io's connect and disconnect, so a connection refused here costs no
greenlet, queue or Socket.IO session: it is answered 401 at its handshake, and the same
address's page requests are served as before. The address is the client's as seen through
TRUSTED_PROXIES, like the rate limits' (engine.io sees requests before Flask's ProxyFix).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

EXTENSION = "liveblog.connections"


def client_address(environ: dict[str, Any], trusted_proxies: int) -> str:
    """The address `trusted_proxies` hops back in X-Forwarded-For, else the peer's own."""
    remote = environ.get("REMOTE_ADDR") or "unknown"
    if trusted_proxies <= 0:
        return remote
    forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < trusted_proxies or not forwarded[-trusted_proxies]:
        return remote  # fewer proxies than configured: nothing trustworthy was added
    return forwarded[-trusted_proxies]


class AddressCap:
    """Open engine.io connections by client address, refusing those over `limit`."""

    def __init__(self, limit: int, trusted_proxies: int) -> None:
        self.limit = limit
        self.trusted_proxies = trusted_proxies
        self.open: dict[str, int] = {}
        self.address_of: dict[str, str] = {}
        self.refused = 0
        self.lock = threading.Lock()

    def admit(self, sid: str, environ: dict[str, Any]) -> bool:
        address = client_address(environ, self.trusted_proxies)
        with self.lock:
            if self.open.get(address, 0) >= self.limit:
                self.refused += 1
                return False
            self.open[address] = self.open.get(address, 0) + 1
            self.address_of[sid] = address
            return True

    def release(self, sid: str) -> None:
        with self.lock:
            address = self.address_of.pop(sid, None)
            if address is None:
                return
            left = self.open[address] - 1
            if left:
                self.open[address] = left
            else:
                del self.open[address]

    def wrap(self, engineio_server: Any) -> None:
        """Put the cap in front of the engine.io server's own connect and disconnect handlers."""
        on_connect: Callable = engineio_server.handlers["connect"]
        on_disconnect: Callable = engineio_server.handlers["disconnect"]

        def connect(sid: str, environ: dict[str, Any], *args: Any) -> Any:
            if not self.admit(sid, environ):
                return False  # engine.io answers 401 and keeps nothing of the connection
            try:
                accepted = on_connect(sid, environ, *args)
            except BaseException:
                self.release(sid)
                raise
            if accepted is not None and accepted is not True:
                self.release(sid)
            return accepted

        def disconnect(sid: str, *args: Any) -> Any:
            self.release(sid)
            return on_disconnect(sid, *args)

        engineio_server.on("connect", connect)
        engineio_server.on("disconnect", disconnect)


def init_app(app: Flask, engineio_server: Any) -> None:
    limit = app.config["MAX_CONNECTIONS_PER_ADDRESS"]
    if limit <= 0:
        return  # 0: no cap (benchmarks open thousands of connections from one address)
    cap = AddressCap(limit, app.config["TRUSTED_PROXIES"])
    cap.wrap(engineio_server)
    app.extensions[EXTENSION] = cap
