"""What one client may hold and send over Socket.IO: connections per address, events per connection.

`AddressCap` is counted at engine.io's connect and disconnect, so a connection refused there
costs no greenlet, queue or Socket.IO session: it is answered 401 at its handshake, and the
same address's page requests are served as before. The address is the client's as seen
through TRUSTED_PROXIES, like the rate limits' (engine.io sees requests before Flask's ProxyFix).

`EventGate` stands in front of every message a connection sends. A reader sends a handful
in its life (the namespace connect, one `subscribe` per story followed); one connection that
sent tens of thousands of `subscribe`s a second once had a handler greenlet started for
each, and every other client of the process waited behind them for tens of seconds. Here
each connection has a rate with a burst, and a bound on its handlers running or waiting;
a connection past either is closed at once, and what it had sent and not yet been read is
never handled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from .logs import log_malformed

EXTENSION = "liveblog.connections"
GATE_EXTENSION = "liveblog.event_gate"

logger = logging.getLogger(__name__)


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


class Allowance:
    """A token bucket: `burst` at once, then `rate` a second."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class _Budget:
    """One connection's allowance of messages and the handlers it has running or waiting."""

    __slots__ = ("allowance", "closed", "pending")

    def __init__(self, rate: float, burst: int) -> None:
        self.allowance = Allowance(rate, burst)
        self.pending = 0
        self.closed = False


def _is_event(data: Any) -> bool:
    """A Socket.IO EVENT or BINARY_EVENT packet: the ones that run an application handler."""
    return isinstance(data, str) and data[:1] in ("2", "5")


class EventGate:
    """A rate and a bounded backlog of handlers per connection; a connection past either is closed.

    Every message counts against the rate. Events (the packets that run an application
    handler) each get a task of their own, as python-socketio would start them, but no more
    than `max_pending` per connection at once; the other packets (namespace connect and
    disconnect, acks) are cheap and handled in order, where they arrive.
    """

    def __init__(self, rate: float, burst: int, max_pending: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_pending = max_pending
        self.budgets: dict[str, _Budget] = {}
        self.closed = 0  # connections closed for sending too much, for the tests and metrics

    def wrap(self, engineio_server: Any) -> None:
        """Put the gate in front of the engine.io server's message handler.

        python-socketio is told not to start tasks of its own (`async_handlers=False`), so
        that the tasks started here are all there are, and the bound holds.
        """
        on_message: Callable = engineio_server.handlers["message"]
        on_disconnect: Callable = engineio_server.handlers["disconnect"]

        def message(sid: str, data: Any) -> Any:
            budget = self.budgets.get(sid)
            if budget is None:
                budget = self.budgets[sid] = _Budget(self.rate, self.burst)
            if budget.closed:
                return None  # the rest of a flood already read: dropped unhandled
            if not budget.allowance.take():
                return self._close(engineio_server, sid, budget, "sent messages too fast")
            if not _is_event(data):
                return on_message(sid, data)
            if budget.pending >= self.max_pending:
                return self._close(engineio_server, sid, budget, "had too many events waiting")
            budget.pending += 1
            engineio_server.start_background_task(
                self._handle, engineio_server, on_message, budget, sid, data
            )
            return None

        def disconnect(sid: str, *args: Any) -> Any:
            budget = self.budgets.pop(sid, None)
            if budget is not None:
                budget.closed = True
            return on_disconnect(sid, *args)

        engineio_server.on("message", message)
        engineio_server.on("disconnect", disconnect)

    @staticmethod
    def _handle(
        engineio_server: Any, on_message: Callable, budget: _Budget, sid: str, data: Any
    ) -> None:
        try:
            if not budget.closed:
                on_message(sid, data)
        except Exception as error:
            # A packet that cannot be decoded: logged once per connection, as those handled
            # where they arrive are (liveblog.logs).
            log_malformed(engineio_server, sid, data, error)
        finally:
            budget.pending -= 1

    def _close(self, engineio_server: Any, sid: str, budget: _Budget, why: str) -> None:
        budget.closed = True
        self.closed += 1
        connection = engineio_server.sockets.get(sid)
        logger.warning("closed Socket.IO connection %s: it %s", sid, why)
        if connection is None:
            return
        # The TCP connection first (gevent's WebSocket): the loop reading it stops at once,
        # instead of reading the rest of the flood only to drop it.
        hang_up = getattr(connection, "liveblog_hang_up", None)
        if hang_up is not None:
            hang_up()
        connection.close(wait=False, abort=True)


def init_app(app: Flask, engineio_server: Any) -> None:
    gate = EventGate(
        rate=app.config["SOCKET_EVENTS_PER_SECOND"],
        burst=app.config["SOCKET_EVENTS_BURST"],
        max_pending=app.config["SOCKET_EVENTS_PENDING"],
    )
    gate.wrap(engineio_server)
    app.extensions[GATE_EXTENSION] = gate
    limit = app.config["MAX_CONNECTIONS_PER_ADDRESS"]
    if limit <= 0:
        return  # 0: no cap (benchmarks open thousands of connections from one address)
    cap = AddressCap(limit, app.config["TRUSTED_PROXIES"])
    cap.wrap(engineio_server)
    app.extensions[EXTENSION] = cap
