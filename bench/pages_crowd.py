"""Readers arriving at a story, as a crowd does: each loads the page, then subscribes from it.

One process of the crowd that bench.pages starts several of. Each reader, at its own moment
within the arrival window, GETs the story page (a fresh connection, no cache), reads the seq
the page names, opens a Socket.IO v5 WebSocket (spoken with wsproto, which python-engineio
already depends on) and subscribes from that seq; from then on it records when each change
reached it. Run as `python -m bench.pages_crowd --url URL --slug SLUG --count N --start T
--spread S`. It prints JSON lines: `{"arrived": …}` once every reader has its page and its
subscription, then, after a line `final SEQ` on stdin, `{"done": …}` once every reader holds
every change up to SEQ (or the deadline passed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request, TextMessage

from bench.readers import raise_open_files_limit

SEQ_RE = re.compile(rb'id="updates"[^>]*data-seq="(\d+)"')


class Reader:
    def __init__(self, host: str, port: int, slug: str) -> None:
        self.host, self.port, self.slug = host, port, slug
        self.page_seq: int | None = None
        self.page_seconds = 0.0
        self.page_bytes = 0
        self.seen: dict[int, float] = {}  # seq -> when it arrived
        self.error: str | None = None
        self.subscribed = asyncio.Event()
        self.changed = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def load_page(self) -> None:
        started = time.time()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        request = (
            f"GET /articles/{self.slug} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/html\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        body = await reader.read()
        writer.close()
        self.page_seconds = time.time() - started
        self.page_bytes = len(body)
        if not body.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"page answered {body[:40]!r}")
        found = SEQ_RE.search(body)
        if not found:
            raise ConnectionError("the page names no seq")
        self.page_seq = int(found.group(1))

    async def follow(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.writer = writer
        ws = WSConnection(ConnectionType.CLIENT)
        target = "/socket.io/?EIO=4&transport=websocket"
        writer.write(ws.send(Request(host=f"{self.host}:{self.port}", target=target)))
        subscribe = ["subscribe", {"article": self.slug, "since": self.page_seq}]
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            now = time.time()
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Ping):
                    writer.write(ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    reply = self.packet(event.data, now, subscribe)
                    if reply:
                        writer.write(ws.send(TextMessage(data=reply)))
                elif not isinstance(event, AcceptConnection):
                    raise ConnectionError(f"WebSocket: {event!r}")

    def packet(self, text: str, now: float, subscribe: list) -> str | None:
        if text.startswith('42["change",'):
            change = json.loads(text[2:])[1]
            self.seen.setdefault(change["seq"], now)
            self.changed.set()
        elif text == "2":
            return "3"
        elif text.startswith("0"):
            return "40"
        elif text.startswith("40"):
            return "420" + json.dumps(subscribe, separators=(",", ":"))
        elif text.startswith("430"):
            ack = json.loads(text[3:])[0]
            if not ack.get("ok"):
                raise ConnectionError(f"subscribe refused: {ack}")
            self.subscribed.set()
        return None

    async def run(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.time()))
        try:
            await self.load_page()
            await self.follow()  # until the benchmark is done with it
        except (OSError, ConnectionError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.subscribed.set()

    def complete(self, final: int) -> bool:
        return self.page_seq is not None and all(
            seq in self.seen for seq in range(self.page_seq + 1, final + 1)
        )


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def read_line(stream: asyncio.StreamReader) -> str:
    return (await stream.readline()).decode().strip()


async def run(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    readers = [Reader(url.hostname, url.port, args.slug) for _ in range(args.count)]
    step = args.spread / max(args.count, 1)
    tasks = [
        asyncio.create_task(reader.run(args.start + args.offset + i * step))
        for i, reader in enumerate(readers)
    ]
    await asyncio.gather(*(reader.subscribed.wait() for reader in readers))
    pages = sorted(reader.page_seconds for reader in readers if reader.error is None)
    emit(
        {
            "arrived": sum(reader.error is None for reader in readers),
            "errors": sorted({reader.error for reader in readers if reader.error})[:5],
            "page_seconds": pages,
            "page_bytes": max((reader.page_bytes for reader in readers), default=0),
        }
    )

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    command = await read_line(stdin)
    final = int(command.split()[1]) if command.startswith("final ") else 0
    deadline = time.time() + args.receive_timeout
    while time.time() < deadline:
        if all(reader.complete(final) or reader.error for reader in readers):
            break
        await asyncio.sleep(0.05)
    complete = [reader for reader in readers if reader.complete(final)]
    emit(
        {
            "done": len(complete),
            "incomplete": len(readers) - len(complete),
            # per seq, when the last of this process's readers had it
            "last": {
                seq: max(reader.seen[seq] for reader in complete if seq in reader.seen)
                for seq in range(1, final + 1)
                if any(seq in reader.seen for reader in complete)
            },
        }
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pages_crowd", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--slug", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start", type=float, required=True, help="time.time() of the first")
    parser.add_argument("--offset", type=float, default=0.0, help="this process's first, after")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds over which they come")
    parser.add_argument("--receive-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("readers only connect to this machine (127.0.0.1)")
    raise_open_files_limit()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
