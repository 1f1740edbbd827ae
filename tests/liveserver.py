"""A real liveblog server process on a free port, as `python app.py` runs it (gevent), and a
Socket.IO reader that sees packets in the order they arrived on the wire."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import engineio
import requests
import socketio

from liveblog import create_app, services, tokens
from liveblog.extensions import db

ROOT = Path(__file__).resolve().parent.parent
EDITOR = "reporter"
PASSWORD = "live server password"
TIMEOUT = 5.0  # every wait of a reader for the network is bounded by this (seconds)


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the test run dies, so no server outlives its run."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """The first truthy value `predicate` gives within `timeout` seconds, or an assertion error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_database(database_url: str) -> str:
    """Create the schema and an editor on `database_url`; returns that editor's API token."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        editor = services.create_editor(EDITOR, PASSWORD)
        token = tokens.issue(editor)
        db.session.remove()
        db.engine.dispose()
    return token


class LiveServer:
    """Start with `start()`, stop with `stop()` (or both with `with`); `url` is where it listens."""

    command: tuple[str, ...] = (sys.executable, str(ROOT / "app.py"))

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = log_path
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "live-server-secret",
            "RATELIMIT_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> LiveServer:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/api/articles", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def live_server_on_sqlite(folder: Path, **env: str) -> Iterator[tuple[LiveServer, str]]:
    """A server on a fresh SQLite file in `folder`, with an editor: (server, the editor's token)."""
    url = f"sqlite:///{folder / 'live.sqlite'}"
    token = prepare_database(url)
    with LiveServer(url, folder / "server.log", **env) as server:
        yield server, token


@contextmanager
def servers(database_url: str, folder: Path, count: int, **env: str) -> Iterator[list[LiveServer]]:
    """`count` servers on one database, each logging to a file of its own in `folder`."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(LiveServer(database_url, folder / f"server{n}.log", **env))
            for n in range(count)
        ]


class Api:
    """A server's JSON API as an editor's script uses it, with a token; asserts each status."""

    def __init__(self, server_url: str, token: str) -> None:
        self.url = server_url + "/api"
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = requests.request(
            method, self.url + path, headers=self.headers, timeout=20, **kwargs
        )
        assert response.status_code == expect, (method, path, response.text)
        return response.json() if response.content else None

    def create_story(self, title: str, slug: str) -> dict[str, Any]:
        story = self.request("POST", "/articles", 201, json={"title": title, "slug": slug})
        assert story["seq"] == 0
        return story

    def new_story(self, title: str = "Live story") -> str:
        """A story with a slug unique even across test runs sharing one Redis."""
        return self.create_story(title, f"story-{uuid.uuid4().hex[:12]}")["slug"]

    def story(self, slug: str) -> dict[str, Any]:
        return self.request("GET", f"/articles/{slug}", 200)

    def post(self, slug: str, body: str, **fields: Any) -> dict[str, Any]:
        return self.request("POST", f"/articles/{slug}/updates", 201, json={"body": body, **fields})

    def edit(self, slug: str, update_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/articles/{slug}/updates/{update_id}", 200, json=fields)

    def delete(self, slug: str, update_id: int) -> None:
        self.request("DELETE", f"/articles/{slug}/updates/{update_id}", 204)

    def changes(self, slug: str, since: int = 0) -> dict[str, Any]:
        return self.request("GET", f"/articles/{slug}/changes?since={since}", 200)


# --- a Socket.IO client that keeps the packets in the order they arrived --------------


class _WireLog(engineio.Client):
    """Records every Socket.IO packet in arrival order, before it is dispatched.

    python-engineio hands each message to its handler in a thread of its own, so handlers
    may see packets out of order; only the read loop, which calls `_receive_packet` one
    packet at a time, sees the order the server sent them in.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.packets: list[tuple[float, socketio.packet.Packet]] = []
        self.arrived = threading.Condition()

    def _receive_packet(self, pkt: engineio.packet.Packet) -> None:
        if pkt.packet_type == engineio.packet.MESSAGE and isinstance(pkt.data, str):
            parsed = socketio.packet.Packet(encoded_packet=pkt.data)
            with self.arrived:
                self.packets.append((time.monotonic(), parsed))
                self.arrived.notify_all()
        super()._receive_packet(pkt)


class Reader(socketio.Client):
    """A reader's socket: subscribe, then look at what arrived, in wire order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(reconnection=False, handle_sigint=False, **kwargs)

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _WireLog

    @property
    def wire(self) -> _WireLog:
        return self.eio

    def timeline(self) -> list[tuple[float, str, Any]]:
        """(arrival time, event name or 'ack', payload) for each event and ack so far."""
        with self.wire.arrived:
            packets = list(self.wire.packets)
        out = []
        for moment, pkt in packets:
            if pkt.packet_type == socketio.packet.EVENT:
                out.append((moment, pkt.data[0], pkt.data[1] if len(pkt.data) > 1 else None))
            elif pkt.packet_type == socketio.packet.ACK:
                out.append((moment, "ack", pkt.data[0] if pkt.data else None))
        return out

    def events(self, name: str) -> list[Any]:
        return [payload for _, event, payload in self.timeline() if event == name]

    def changes(self) -> list[dict[str, Any]]:
        return self.events("change")

    def wait_until(self, predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        """Wait for packets until `predicate()` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self.wire.arrived:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; arrived so far: {self.timeline()}")
                self.wire.arrived.wait(left)

    def wait_changes(self, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        self.wait_until(lambda: len(self.changes()) >= count, timeout)
        return self.changes()

    def subscribe(self, slug: Any, since: Any = None) -> dict[str, Any]:
        data = {"article": slug} if since is None else {"article": slug, "since": since}
        return self.send_subscribe(data)

    def send_subscribe(self, data: Any) -> Any:
        return self.call("subscribe", data, timeout=TIMEOUT)

    def round_trip(self) -> None:
        """Anything the server queued for this socket before now has arrived after this."""
        ack = self.send_subscribe(None)
        assert ack["ok"] is False


@contextmanager
def reader(url: str, origin: str | None = None) -> Iterator[Reader]:
    """A connected Reader over the WebSocket transport, disconnected at the end."""
    options = {"websocket_extra_options": {"origin": origin}} if origin else {}
    sio = Reader(**options)
    sio.connect(url, transports=["websocket"], wait_timeout=TIMEOUT)
    try:
        yield sio
    finally:
        sio.disconnect()
