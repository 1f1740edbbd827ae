"""The server under test, in a process of its own, and what the benchmark reads from it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.crowd import CrowdProcess, Editor
from tests.liveserver import ROOT, Api, LiveServer, prepare_database

# Each way of serving the app: how it is started, and the WebSocket code that should answer.
MODES = {
    # What `python app.py` does: Flask-SocketIO's socketio.run(), which hands gevent's
    # WSGIServer gevent-websocket's WebSocketHandler.
    "gevent-websocket": [sys.executable, str(ROOT / "app.py")],
    # gevent's WSGIServer with its plain handler: engine.io speaks WebSocket through
    # simple-websocket (wsproto underneath) on the raw socket.
    "simple-websocket": [sys.executable, "-m", "bench.simple_server"],
    # The reference: Node.js with the socket.io package (bench/peer), stories in memory.
    "peer": ["node", str(ROOT / "bench" / "peer" / "server.js")],
}
PEER_DIR = ROOT / "bench" / "peer"
# Several liveblog processes relay changes through Redis (each run on a channel of its own).
REDIS_URL = "redis://127.0.0.1:6379/0"


def ensure_peer() -> None:
    """Install the peer's socket.io package from the npm registry once (gitignored)."""
    if (PEER_DIR / "node_modules" / "socket.io").is_dir():
        return
    if shutil.which("npm") is None:
        raise RuntimeError("the peer needs Node.js and npm (node 20 or newer)")
    subprocess.run(
        ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"],
        cwd=PEER_DIR,
        check=True,
    )


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class ServerProcess(LiveServer):
    """`python app.py` or the simple-websocket launcher on a free port; stop() ends it."""

    def __init__(
        self, mode: str, database_url: str, log_path: Path, cpus: str | None = None, **env: str
    ) -> None:
        # The benchmark posts faster than an editor may, and all its readers share one
        # address: no rate limits and no cap on connections per address.
        super().__init__(
            database_url,
            log_path,
            SECRET_KEY="bench-secret",
            RATELIMIT_ENABLED="0",
            MAX_CONNECTIONS_PER_ADDRESS="0",
            **env,
        )
        self.mode = mode
        # `cpus`: a taskset CPU list, so the server does not compete with its readers.
        self.command = (*(["taskset", "-c", cpus] if cpus else []), *MODES[mode])

    def start(self, timeout: float = 30.0) -> ServerProcess:
        super().start(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)


@contextmanager
def scratch_server(name: str) -> Iterator[tuple[ServerProcess, Api, str]]:
    """One liveblog server on a scratch SQLite file, its editor's API and a new story's slug."""
    with tempfile.TemporaryDirectory(prefix=f"liveblog-{name}-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        token = prepare_database(url)
        server = ServerProcess("gevent-websocket", url, Path(tmp) / "server.log").start()
        try:
            api = Api(server.url, token)
            yield server, api, api.new_story()
        finally:
            server.stop()


def websocket_handshake(url: str) -> str:
    """The server's answer to a WebSocket upgrade offering permessage-deflate, as a browser does.

    The headers tell the two implementations apart: wsproto (simple-websocket) accepts the
    deflate offer and says so; gevent-websocket ignores extensions.
    """
    host, port = url.removeprefix("http://").split(":")
    request = (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) < 8192:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n\r\n")[0].decode(errors="replace")


SLUG = "bench"
WARM_UP_READERS = 20


@contextmanager
def serving(
    mode: str, workdir: Path, deflate: bool, cpus: str | None = None, reader_cpus: str | None = None
) -> Iterator[tuple[ServerProcess, Editor]]:
    """A started server of `mode` on a fresh SQLite file, with the story SLUG, warmed up."""
    with serving_many(mode, workdir, deflate, cpus, reader_cpus) as (servers, editor):
        yield servers[0], editor


@contextmanager
def serving_many(
    mode: str,
    workdir: Path,
    deflate: bool,
    cpus: str | None = None,
    reader_cpus: str | None = None,
    processes: int = 1,
) -> Iterator[tuple[list[ServerProcess], Editor]]:
    """`processes` servers of `mode` on one fresh SQLite file (and one Redis channel of their
    own when more than one), with the story SLUG, each warmed up.

    The warm-up (a few readers, one update) loads what the first reader and the first post
    would otherwise load lazily, so neither the memory figures nor the first latency carry it.
    The editor posts through the first server.
    """
    rundir = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=workdir))
    database_url = f"sqlite:///{rundir / 'bench.sqlite'}"
    token = prepare_database(database_url)
    if mode == "peer":
        ensure_peer()
    env = {}
    if processes > 1:
        env = {"REDIS_URL": REDIS_URL, "REDIS_CHANNEL": f"bench-{uuid.uuid4().hex[:12]}"}
    servers: list[ServerProcess] = []
    editor: Editor | None = None
    try:
        for n in range(processes):
            log = rundir / f"server{n}.log"
            servers.append(ServerProcess(mode, database_url, log, cpus, **env).start())
        editor = Editor(servers[0].url, token)
        editor.create_story(SLUG)
        crowds = [
            CrowdProcess(
                server.url, SLUG, WARM_UP_READERS, expect=1, deflate=deflate, cpus=reader_cpus
            )
            for server in servers
        ]
        try:
            for crowd in crowds:
                crowd.ready(timeout=30)
            editor.post(SLUG, 0)
            for crowd in crowds:
                crowd.receipts(timeout=30)
        finally:
            for crowd in crowds:
                crowd.close()
        yield servers, editor
    except BaseException:
        for server in servers:
            print(f"--- {mode} server log (tail) ---\n{server.log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if editor is not None:
            editor.close()
        for server in servers:
            server.stop()
