"""The send path under gevent: what engine.io uses to queue and write each reader's packets.

engine.io gives every connection a queue and a writer greenlet, the only one that writes to
that connection's socket. Its gevent driver uses gevent's general-purpose queue, whose
blocking `get(timeout=…)` starts and stops a timer for every packet, and gevent-websocket,
which builds the same WebSocket frame again for every reader of a broadcast. With thousands
of readers of one story, queueing, those timers and framing were about half of the server's
CPU per update in a profile.

engine.io takes its queue, WebSocket and task classes from its server's driver table (the
gevent driver's `_async`) each time it needs one. `install` gives one server a table of its
own, so this changes that server alone and patches none of engine.io's modules:

* `ConnectionQueue`: one deque and at most one waiting greenlet, no timer per packet, and a
  cap on the bytes waiting for a reader: a reader that stops reading is dropped at the cap
  (it resubscribes from its last seq and catches up from the change log), so it cannot
  make the process hold every update for it;
* `FramedWebSocket`: gevent-websocket's connection, with each broadcast's frame built once
  and written to every reader as it is;
* `background_task`: engine.io's background tasks are greenlets, except each connection's
  ping, which waits 25 s between pings as a sleeping greenlet of its own; here it is a timer,
  so a reader costs two greenlets (its reader loop and its writer), not three.

engine.io's writer greenlet stays the only writer of each socket.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
from engineio import packet
from engineio.async_drivers import gevent as engineio_gevent
from engineio.socket import Socket
from gevent.event import Event
from gevent.hub import Waiter, get_hub
from gevent.queue import Empty
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import Header, WebSocket

from .connections import Allowance

logger = logging.getLogger(__name__)


def packet_size(item: Any) -> int:
    """Characters (about bytes) an engine.io packet takes on the wire; 0 for the None marker."""
    if item is None:
        return 0
    return len(item.encode())  # engine.io caches the encoding: the writer reuses this string


class ConnectionQueue:
    """engine.io's per-connection packet queue under gevent (put, get, task_done, join).

    A blocking get has no timeout of its own: engine.io's client monitor closes a connection
    whose pings go unanswered, and closing puts None here, which wakes the waiting writer
    (or long-poll) as a timeout would have, without a timer per packet.
    """

    __slots__ = (
        "_drained",
        "_items",
        "_unfinished",
        "_waiter",
        "_waking",
        "limit",
        "on_overflow",
        "overflowed",
        "queued_bytes",
    )

    def __init__(self, limit: int = 0) -> None:
        # Made when a packet waits and dropped when the last is taken: an empty deque is
        # 600 bytes, times every idle reader.
        self._items: collections.deque[Any] | None = None
        self._waiter: Waiter | None = None
        self._waking = False
        self._unfinished = 0
        self._drained: Event | None = None
        self.limit = limit  # bytes waiting before the reader is dropped; 0: no cap
        self.queued_bytes = 0
        self.overflowed = False
        # Called once when the cap is passed; the WebSocket sets it to close its socket.
        self.on_overflow: Callable[[], None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if self.overflowed:
            return  # the connection is being dropped: nothing more is kept for it
        size = packet_size(item)
        # A reader keeping up takes each packet off at once, whatever its size; only packets
        # piling up behind others count against the cap.
        if self.limit and self._items and self.queued_bytes + size > self.limit:
            self._overflow()
            return
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        self.queued_bytes += size
        self._unfinished += 1
        if self._waiter is not None and not self._waking:
            self._waking = True
            get_hub().loop.run_callback(self._wake)

    def _wake(self) -> None:
        self._waking = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.switch(None)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._items and block and not self.overflowed:
            waiter = self._waiter = Waiter()
            try:
                waiter.get()
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        if self.overflowed or not self._items:
            raise Empty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        self.queued_bytes -= packet_size(item)
        return item

    def task_done(self) -> None:
        if self._unfinished > 0:
            self._unfinished -= 1
        if self._unfinished == 0 and self._drained is not None:
            self._drained.set()
            self._drained = None

    def join(self, timeout: float | None = None) -> None:
        while self._unfinished:
            if self._drained is None:
                self._drained = Event()
            if not self._drained.wait(timeout) and timeout is not None:
                return

    def _overflow(self) -> None:
        dropped = self.qsize()
        self.overflowed = True
        self._items = None  # the memory goes now, not when the socket is finally closed
        self.queued_bytes = 0
        for _ in range(dropped):
            self.task_done()
        if self._waiter is not None and not self._waking:
            self._waking = True
            get_hub().loop.run_callback(self._wake)
        logger.info("dropped a reader more than %d bytes behind", self.limit)
        if self.on_overflow is not None:
            self.on_overflow()


class FrameCache:
    """The WebSocket frames of the last few messages sent, by identity of the message.

    A broadcast hands every reader's writer the very same string (engine.io caches a packet's
    encoding and Socket.IO encodes a broadcast once), so its frame is built once.
    """

    SIZE = 8

    def __init__(self) -> None:
        self._frames: dict[int, tuple[str, bytes]] = {}

    def frame(self, message: str) -> bytes:
        entry = self._frames.get(id(message))
        if entry is not None and entry[0] is message:
            return entry[1]
        payload = message.encode()
        frame = Header.encode_header(True, WebSocket.OPCODE_TEXT, b"", len(payload), 0) + payload
        if len(self._frames) >= self.SIZE:
            del self._frames[next(iter(self._frames))]
        # The message is kept with its frame, so its id cannot be reused while cached.
        self._frames[id(message)] = (message, frame)
        return frame


class FramedWebSocket(engineio_gevent.WebSocketWSGI):
    """engine.io's gevent-websocket connection, writing cached frames for text messages."""

    frames = FrameCache()
    # Frames of any kind a client may send: a burst, then a rate (install() sets them).
    frame_rate = 10.0
    frame_burst = 60

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        # gevent's socket under the WebSocket: frames are written to it with one send() each.
        self._raw = getattr(environ.get("wsgi.websocket"), "handler", None)
        self._raw = getattr(self._raw, "socket", None)
        connection = getattr(self.app, "__self__", None)  # the engine.io socket being served
        self._frames = Allowance(self.frame_rate, self.frame_burst)
        if connection is not None:
            # How liveblog.connections closes a connection that sends too much.
            connection.liveblog_hang_up = lambda: self._abort(environ)
        queue = getattr(connection, "queue", None)
        if isinstance(queue, ConnectionQueue) and queue.limit:
            queue.on_overflow = lambda: self._abort(environ)
            if self._raw is not None:
                # Left to itself the kernel grows a stalled reader's send buffer to 4 MiB
                # (net.ipv4.tcp_wmem), memory outside the cap; fixing the size also stops
                # that growth. The kernel doubles what is asked for its own bookkeeping.
                with contextlib.suppress(OSError):
                    self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, queue.limit // 4)
        return super().__call__(environ, start_response)

    def wait(self) -> Any:
        """The next message the client sent, or None once the connection is closed.

        gevent reads a socket without yielding while it has data, so a client that sends
        without pause would hold the loop from every other client: each frame gives the loop
        a turn, and a connection sending frames of any kind faster than its allowance is
        hung up on (None ends engine.io's reading loop as a closed connection does).
        """
        message = super().wait()
        if message is None:
            return None
        if not self._frames.take():
            logger.warning("closed a WebSocket that sent frames too fast")
            self._abort(self.environ)
            return None
        gevent.sleep(0)
        return message

    def send(self, message: Any) -> None:
        if not isinstance(message, str):
            return super().send(message)
        raw = getattr(self, "_raw", None)
        if raw is None or self._sock.closed:
            return super().send(message)  # gevent-websocket's own path (and its own errors)
        frame = self.frames.frame(message)
        try:
            # One send() call; gevent's sendall() would first ask the kernel for the socket's
            # buffer size, a second system call per reader per message.
            sent = raw.send(frame)
            if sent < len(frame):
                raw.sendall(memoryview(frame)[sent:])
        except OSError as exc:
            raise ConnectionError("the reader's connection is gone") from exc

    @staticmethod
    def _abort(environ: dict[str, Any]) -> None:
        """End a dropped reader's TCP connection now: its writer and reader loops both end."""
        websocket = environ.get("wsgi.websocket")
        handler = getattr(websocket, "handler", None)
        raw = getattr(handler, "socket", None)
        if raw is None:
            return
        with contextlib.suppress(OSError):  # already gone
            raw.shutdown(socket.SHUT_RDWR)


class ReaderHandler(WebSocketHandler):
    """gevent-websocket's connection handler, reading through a 2 KiB buffer, not 8 KiB.

    A reader's connection reads one HTTP request and then a pong every 25 s; the buffer is
    kept for the connection's whole life, so its size is paid once per reader. Larger
    reads (a request body) bypass the buffer whatever its size.
    """

    READ_BUFFER = 2048

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        if rfile is None:
            rfile = sock.makefile("rb", self.READ_BUFFER)
        super().__init__(sock, address, server, rfile)


class PingTimer:
    """A connection's next ping, as engine.io's ping task sends it, on a timer of the loop."""

    __slots__ = ("connection", "timer")

    def __init__(self, connection: Socket) -> None:
        self.connection = connection
        self.timer: Any = None

    def start(self) -> None:
        self.timer = get_hub().loop.timer(self.connection.server.ping_interval)
        self.timer.start(self._ping)

    def _ping(self) -> None:
        self.timer.close()
        self.timer = None
        connection = self.connection
        if connection.closing or connection.closed:
            return
        connection.last_ping = time.time()
        try:
            connection.send(packet.Packet(packet.PING))  # only queues it: never blocks the loop
        except Exception:
            logger.exception("could not ping %s", connection.sid)

    def join(self, timeout: float | None = None) -> None:
        return None


def background_task(target: Callable, args: Any = (), kwargs: Any = None) -> Any:
    """engine.io's task class: a greenlet, or a timer for a connection's ping."""
    if getattr(target, "__func__", None) is Socket._send_ping:
        return PingTimer(target.__self__)
    return engineio_gevent.Thread(target, list(args), kwargs or {})


def install(
    engineio_server: Any, max_queued_bytes: int, frame_rate: float, frame_burst: int
) -> bool:
    """Give a gevent engine.io server this module's queue and WebSocket; False if not gevent.

    engine.io reads these from the server's driver table each time it makes a connection's
    queue or answers an upgrade, so a table of the server's own changes that server alone.
    """
    if engineio_server.async_mode != "gevent" or engineio_gevent.SimpleWebSocketWSGI is not None:
        return False
    table = dict(engineio_server._async)
    table["queue"] = lambda: ConnectionQueue(max_queued_bytes)
    limits = {"frame_rate": frame_rate, "frame_burst": frame_burst}
    table["websocket"] = type("FramedWebSocket", (FramedWebSocket,), limits)
    table["thread"] = background_task
    engineio_server._async = table
    return True


def tune_garbage_collector() -> None:
    """Keep full collections rare and short; call once the app is built, before serving.

    With thousands of readers one full collection took 0.2-1.2 s, and every reader waited
    for an update being sent while it ran. What start-up loaded lives as long as the process,
    so it is frozen out of the collector's sight; young collections come after 10,000
    allocations instead of 700, and a full one after 100 of the middle generation's instead
    of 10 (and, as always, only once the objects surviving since the last one reach a
    quarter of those it would scan). A server under another launcher (gunicorn) calls this
    from its worker start-up hook.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
