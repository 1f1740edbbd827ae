"""A crowd of readers in one asyncio process, driven by the benchmark over stdin and stdout.

Each reader is a Socket.IO v5 client over a bare WebSocket (`transport=websocket`, where a
browser ends up once upgraded), spoken with wsproto, which python-engineio already depends
on, so no extra package. Every `change` carries two times in time.time()'s clock: when its
bytes reached the reader's socket (the kernel's SO_TIMESTAMPNS stamp) and when this process
handled them; with thousands of readers in one process the second includes waiting behind
the others, which separate browsers would not do.

Run as `python -m bench.readers --url URL --slug SLUG --count N --expect M`. It prints one
JSON object per line: `{"ready": …}` once all N are subscribed, `{"receipts": …}` once every
reader has M changes (or the deadline passed), then waits for a line `close` on stdin (or end
of input) and prints `{"closed": …}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

CHANGE_PREFIX = '42["change",'
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not name it
TIMESPEC = struct.Struct("@ll")
RECEIVE_BYTES = 65536
ANCILLARY_BYTES = socket.CMSG_SPACE(TIMESPEC.size)
CLOSE_WAIT = 120.0  # the benchmark says `close` within seconds; this only bounds a lost one


def raise_open_files_limit() -> int:
    """Each reader is a socket; lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Crowd:
    """What all readers share: where to connect, and the receipts they collect."""

    def __init__(
        self, host: str, port: int, slug: str, expect: int, deflate: bool, since: int | None = None
    ) -> None:
        self.host, self.port, self.slug, self.expect = host, port, slug, expect
        self.deflate = deflate
        # A browser subscribes with the seq its page was rendered at; `since` does the same.
        request = {"article": slug} if since is None else {"article": slug, "since": since}
        self.subscribe = "420" + json.dumps(["subscribe", request], separators=(",", ":"))
        # By update id: when each reader's copy reached its socket (the kernel's stamp), and
        # when this process got round to it (one process serves them all, so later).
        self.arrived: dict[int, list[float]] = {}
        self.handled: dict[int, list[float]] = {}
        self.unstamped = 0  # receipts the kernel did not stamp (then `arrived` = `handled`)
        self.readers: list[Reader] = []
        self.unfinished = 0  # readers still waiting for some of their `expect` changes
        self.all_received = asyncio.Event()
        self.extensions_accepted: set[str] = set()

    def finished_one(self) -> None:
        self.unfinished -= 1
        if self.unfinished == 0:
            self.all_received.set()


def kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The SO_TIMESTAMPNS receive time of the data just read, in time.time()'s clock."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return seconds + nanoseconds / 1e9
    return None


class Reader:
    """One reader: handshake, connect to the default namespace, subscribe, then listen.

    A plain non-blocking socket watched by the event loop, read with recvmsg() so that each
    read carries the kernel's receive time: the figures then measure the server, not how far
    down this process's queue of two thousand sockets a reader happened to be.
    """

    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd
        self.loop = asyncio.get_running_loop()
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock: socket.socket | None = None
        self.subscribed: asyncio.Future[None] = self.loop.create_future()
        self.partial: list[str] = []
        self.changes = 0
        self.closed = False
        self.sending: set[asyncio.Task] = set()

    async def connect(self) -> None:
        sock = self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await self.loop.sock_connect(sock, (self.crowd.host, self.crowd.port))
        self.loop.add_reader(sock.fileno(), self.readable)
        extensions = [PerMessageDeflate()] if self.crowd.deflate else []
        target = "/socket.io/?EIO=4&transport=websocket"
        host = f"{self.crowd.host}:{self.crowd.port}"
        self.write(self.ws.send(Request(host=host, target=target, extensions=extensions)))
        await self.subscribed

    def readable(self) -> None:
        try:
            data, ancdata, _flags, _address = self.sock.recvmsg(RECEIVE_BYTES, ANCILLARY_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(f"connection lost: {exc}")
            return
        if not data:
            self.fail("the server closed the connection")
            return
        handled = time.time()
        arrived = kernel_stamp(ancdata)
        if arrived is None:
            self.crowd.unstamped += 1
            arrived = handled
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self.partial.append(event.data)
                if event.message_finished:
                    self.packet("".join(self.partial), arrived, handled)
                    self.partial.clear()
            elif isinstance(event, AcceptConnection):
                for extension in event.extensions:
                    self.crowd.extensions_accepted.add(extension.name)
            elif isinstance(event, Ping):
                self.write(self.ws.send(event.response()))
            elif isinstance(event, (CloseConnection, RejectConnection)):
                self.fail(f"server closed the WebSocket: {event!r}")

    def packet(self, text: str, arrived: float, handled: float) -> None:
        """Handle one engine.io packet (and the Socket.IO packet inside a message)."""
        if text.startswith(CHANGE_PREFIX):
            update_id = json.loads(text[2:])[1]["update"]["id"]
            self.crowd.arrived.setdefault(update_id, []).append(arrived)
            self.crowd.handled.setdefault(update_id, []).append(handled)
            self.changes += 1
            if self.changes == self.crowd.expect:
                self.crowd.finished_one()
        elif text == "2":  # engine.io ping: answer, or the server drops us after ~45 s
            self.send("3")
        elif text.startswith("0"):  # engine.io open: connect to the default namespace
            self.send("40")
        elif text.startswith("40"):  # namespace connected
            self.send(self.crowd.subscribe)
        elif text.startswith("430"):  # the subscribe ack
            ack = json.loads(text[3:])[0]
            if not ack.get("ok"):
                self.fail(f"subscribe refused: {ack}")
            elif not self.subscribed.done():
                self.subscribed.set_result(None)
        elif text.startswith(("41", "44", "1")):
            self.fail(f"disconnected by the server: {text[:200]}")

    def send(self, text: str) -> None:
        self.write(self.ws.send(TextMessage(data=text)))

    def write(self, data: bytes) -> None:
        """Readers send a few bytes at a time; a full buffer is finished by the loop."""
        if self.closed:
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.fail(f"send failed: {exc}")
            return
        if sent < len(data):
            task = self.loop.create_task(self.loop.sock_sendall(self.sock, data[sent:]))
            self.sending.add(task)  # the loop holds tasks weakly
            task.add_done_callback(self.sending.discard)

    def fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(reason))
        self.close()

    def close(self) -> None:
        if self.closed or self.sock is None:
            return
        self.closed = True
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


async def connect_one(crowd: Crowd, gate: asyncio.Semaphore, timeout: float) -> str | None:
    """Connect and subscribe one reader; None on success, else why it failed."""
    reader = Reader(crowd)
    crowd.readers.append(reader)
    async with gate:
        try:
            async with asyncio.timeout(timeout):
                await reader.connect()
        except (OSError, TimeoutError) as exc:
            reader.close()
            return f"{type(exc).__name__}: {exc}"
    return None


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def read_command(timeout: float) -> str:
    """The next line on stdin ('' at end of input or after `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        async with asyncio.timeout(timeout):
            return (await reader.readline()).decode().strip()
    except TimeoutError:
        return ""


async def run(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    crowd = Crowd(url.hostname, url.port, args.slug, args.expect, args.deflate, args.since)
    gate = asyncio.Semaphore(args.concurrency)

    started, cpu_started = time.time(), time.process_time()
    outcomes = await asyncio.gather(
        *(connect_one(crowd, gate, args.connect_timeout) for _ in range(args.count))
    )
    connect_seconds = time.time() - started
    errors = [outcome for outcome in outcomes if outcome is not None]
    crowd.unfinished = sum(
        reader.subscribed.done() and not reader.closed for reader in crowd.readers
    )
    emit(
        {
            "ready": True,
            "connected": len(outcomes) - len(errors),
            "failed": len(errors),
            "errors": sorted(set(errors))[:5],
            "connect_seconds": connect_seconds,
            "cpu_seconds": time.process_time() - cpu_started,
            "extensions": sorted(crowd.extensions_accepted),
            "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }
    )

    cpu_started = time.process_time()
    if args.expect > 0 and crowd.unfinished > 0:
        try:
            async with asyncio.timeout(args.receive_timeout):
                await crowd.all_received.wait()
        except TimeoutError:
            pass
    emit(
        {
            "receipts": {"arrived": crowd.arrived, "handled": crowd.handled},
            "unstamped": crowd.unstamped,
            "unfinished": max(crowd.unfinished, 0),
            "cpu_seconds": time.process_time() - cpu_started,
        }
    )

    await read_command(CLOSE_WAIT)
    for reader in crowd.readers:
        reader.close()
    emit({"closed": len(crowd.readers)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.readers", description=__doc__)
    parser.add_argument("--url", required=True, help="the server, http://127.0.0.1:PORT")
    parser.add_argument("--slug", required=True, help="the story to subscribe to")
    parser.add_argument("--count", type=int, required=True, help="how many readers")
    parser.add_argument("--expect", type=int, default=0, help="changes each reader waits for")
    parser.add_argument("--concurrency", type=int, default=64, help="connects in flight")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--since", type=int, help="subscribe from this seq, as a page would")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--receive-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("readers only connect to this machine (127.0.0.1)")
    raise_open_files_limit()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
