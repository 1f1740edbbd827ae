"""A reader on a bare WebSocket that can stop reading: what a stalled or hostile client does.

python-socketio's client always reads; this one speaks just enough engine.io and Socket.IO
(through wsproto, which python-engineio already installs) to connect and subscribe, then
reads only when told to. Its receive buffer is small, so what the server sends piles up in
the server, not in the kernel.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, RejectConnection, Request, TextMessage

TIMEOUT = 5.0


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class RawReader:
    def __init__(self, url: str, receive_buffer: int = 4096) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connecting, so the window the server sees is small from the start.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((parts.hostname, parts.port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.packets: list[str] = []
        self.partial: list[str] = []
        self.closed = False
        target = "/socket.io/?EIO=4&transport=websocket"
        handshake = Request(host=f"{parts.hostname}:{parts.port}", target=target)
        self.sock.sendall(self.ws.send(handshake))
        self.wait_for(lambda text: text.startswith("0{"))  # engine.io open
        self.send("40")
        self.wait_for(lambda text: text.startswith("40"))  # namespace connected

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def subscribe(self, slug: str, since: int | None = None, wait: bool = True) -> Any:
        data = {"article": slug} if since is None else {"article": slug, "since": since}
        self.send("420" + json.dumps(["subscribe", data]))
        if wait:
            ack = self.wait_for(lambda text: text.startswith("430"))
            return json.loads(ack[3:])[0]
        return None

    def pong(self) -> bool:
        """What a hostile client sends every few seconds to look alive; False once refused."""
        try:
            self.send("3")
            return True
        except OSError:
            return False

    def _read(self) -> bool:
        """Read once; False when the server has closed the connection."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self.partial.append(event.data)
                if event.message_finished:
                    self.packets.append("".join(self.partial))
                    self.partial.clear()
            elif isinstance(event, (CloseConnection, RejectConnection)):
                self.closed = True
        return not self.closed

    def wait_for(self, matches: Any, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for index, text in enumerate(self.packets):
                if matches(text):
                    return self.packets.pop(index)
            if time.monotonic() > deadline or not self._read():
                raise AssertionError(f"no such packet; got {[p[:80] for p in self.packets]}")

    def changes(self) -> list[dict[str, Any]]:
        return [json.loads(text[2:])[1] for text in self.packets if text.startswith('42["change"')]

    def drain(self, timeout: float) -> bool:
        """Read whatever the server sends for `timeout` s; True if it closed the connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._read():
                    return True
            except TimeoutError:
                continue
        return False

    def close(self) -> None:
        self.sock.close()
