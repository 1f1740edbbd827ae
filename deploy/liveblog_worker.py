"""The production server's worker: gevent-websocket under gunicorn, with two additions.

`make serve` runs gunicorn with this worker (deploy/gunicorn.conf.py names it). It is
gevent-websocket's own `GeventWebSocketWorker`, which serves WebSockets and long-polling
from greenlets, plus:

- Timeouts for HTTP connections. gevent's server waits for ever on a client that opens a
  connection and sends nothing, or sends its request a byte at a time, and each such
  connection holds one of the process's `worker_connections` slots: enough of them and the
  process stops accepting anyone. Here a connection must send each request's line and headers
  within REQUEST_TIMEOUT, may sit idle between requests for KEEPALIVE_TIMEOUT (gunicorn's
  `keepalive`), and every read and write of a request's body and response must progress
  within REQUEST_TIMEOUT. Engine.IO sets its own, longer timeout on WebSockets. A request
  that is still running at REQUEST_DEADLINE is cut off (503), WebSockets aside.
- A graceful stop that readers notice at once. On SIGTERM gunicorn stops accepting and then
  waits for open connections to end, but a reader's socket never ends by itself: it would be
  cut at `graceful_timeout`, and readers would learn of it only from a ping timeout. Here,
  once the listeners are closed, every Socket.IO connection is closed by the server, so each
  reader reconnects at once, to another process behind the load balancer, and catches up.
  Requests in progress are left to finish.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import gevent
from gevent.pywsgi import MAX_REQUEST_LINE
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler

REQUEST_TIMEOUT = float(os.environ.get("HTTP_TIMEOUT") or 30)
# A whole request, WebSockets aside: far past Engine.IO's 25-second long-polls. A request
# can otherwise wait for ever inside the application (Engine.IO's own handling of some
# malformed polling POSTs does), each holding one of the process's connection slots.
REQUEST_DEADLINE = float(os.environ.get("REQUEST_DEADLINE") or 60)
access_log = logging.getLogger("liveblog.access")
SHUTDOWN_IDLE = 0.1  # seconds a kept-alive connection waits for a request while stopping


class SlowRequest(ValueError):
    """A request whose line and headers did not arrive in time (gevent answers it 400)."""


class Overrun(Exception):
    """A request still running at REQUEST_DEADLINE."""


class TimedHandler(WebSocketHandler):
    """gevent-websocket's handler, with deadlines on what a client must send."""

    keepalive_timeout = 5.0  # replaced by gunicorn's `keepalive` when the worker starts
    request_timeout = REQUEST_TIMEOUT
    request_deadline = REQUEST_DEADLINE
    stopping = False  # set on SIGTERM: answer what has come, then close
    _deadline: gevent.Timeout | None = None

    def handle(self) -> None:
        self._served = 0
        # Every read and write on this connection must make progress within the timeout.
        self.socket.settimeout(self.request_timeout)
        super().handle()

    def handle_one_request(self) -> Any:
        try:
            return super().handle_one_request()
        finally:
            if self._deadline is not None:
                self._deadline.close()

    def read_requestline(self) -> str:
        # Waiting for a request: a new connection or a kept-alive one may idle this long,
        # except that through a shutdown a kept-alive one is not kept waiting.
        idle = SHUTDOWN_IDLE if self.stopping and self._served else self.keepalive_timeout
        with gevent.Timeout(idle, TimeoutError("idle connection")):
            first = self.rfile.readline(1)
        if not first:
            return ""
        # Then the request line and headers, together, within the request timeout.
        self._deadline = gevent.Timeout.start_new(
            self.request_timeout, SlowRequest(f"request not received in {self.request_timeout}s")
        )
        try:
            rest = self.rfile.readline(MAX_REQUEST_LINE - 1)
        except SlowRequest as error:  # gevent closes quietly on a socket error here
            raise TimeoutError(str(error)) from None
        return (first + rest).decode("latin-1")

    def read_request(self, raw_requestline: str) -> Any:
        try:
            result = super().read_request(raw_requestline)
        finally:
            if self._deadline is not None:
                self._deadline.close()  # the application's own time is not limited here
        self._served += 1
        return result

    def run_application(self) -> None:
        if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            super().run_application()  # a reader's socket lasts as long as it is read
            return
        deadline = gevent.Timeout.start_new(self.request_deadline, Overrun)
        try:
            super().run_application()
        except Overrun:
            self.close_connection = True
            access_log.warning(
                "%s %s overran its %ss deadline; connection closed",
                self.environ.get("REQUEST_METHOD"), self.environ.get("PATH_INFO"),
                self.request_deadline,
            )  # fmt: skip
            if not self.headers_sent:
                # With its length: the response is not finished the usual way, so a chunked
                # one would lack its last chunk and clients would see a broken answer.
                body = b"The server took too long to answer.\n"
                headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
                self.start_response("503 Service Unavailable", [*headers, ("Connection", "close")])
                self.write(body)
        finally:
            deadline.close()

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None):
        if self.stopping and not status.startswith("101"):
            # Tell the client not to send another request on this connection.
            headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)


class Worker(GeventWebSocketWorker):
    wsgi_handler = TimedHandler

    def init_process(self) -> None:
        TimedHandler.keepalive_timeout = float(self.cfg.keepalive) or TimedHandler.keepalive_timeout
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)  # run() closes the listeners within a second
        TimedHandler.stopping = True
        gevent.spawn(self._close_sockets_when_not_listening)

    def _close_sockets_when_not_listening(self) -> None:
        # Close readers' sockets only once no new connection can reach this process, so
        # their reconnections go to another one.
        while any(listener.fileno() != -1 for listener in self.sockets):
            gevent.sleep(0.05)
        from liveblog.extensions import socketio  # loaded by now, after gevent's patching

        if socketio.server is None:
            return
        eio = socketio.server.eio
        sockets = list(eio.sockets.values())
        self.log.info("closing %d Socket.IO connections for shutdown", len(sockets))
        for connection in sockets:
            # wait=False: a reader that stopped reading must not hold up the others.
            connection.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
