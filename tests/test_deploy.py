"""The production deployment, run for real: nginx with deploy/nginx.conf in front of two
server processes started as `make serve` starts them, on one PostgreSQL and one Redis.

The contract fixes nginx's ports (8080 in front of 5001 and 5002). Other test runs and
benchmarks share this machine, so the copy of the file started here differs from it in
those three port numbers, each replaced by a free port, and in the site's name (the
operator's to set), 127.0.0.1 here; everything else is the file as shipped (the
unmodified file is checked with `nginx -t` too).

nginx keeps a reader on one process by the reader's address (`hash $remote_addr`). To put
readers on both processes, each test client connects from an address of its own in
127.0.0.0/8, and which process an address lands on is read from the processes' own logs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from requests.adapters import HTTPAdapter

from liveblog import create_app, services, tokens
from liveblog.extensions import db
from tests.conftest import fresh_postgres_database, skip_unless_ci
from tests.deployment import GUNICORN, Backend, answers
from tests.liveserver import ROOT, Api, _die_with_parent, free_port, wait_for
from tests.liveserver import Reader as WireReader
from tests.stories import links_on

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONFIG = ROOT / "deploy" / "nginx.conf"
FLASK = [str(Path(sys.executable).parent / "flask"), "--app", "app"]
REDIS_URL = "redis://127.0.0.1:6379/6"
SITE_NAME = "liveblog.example"  # the shipped nginx.conf's, for the operator to replace
HOST = "127.0.0.1"  # the site's name here: the address the tests reach nginx on
TIMEOUT = 10.0  # every wait for the network is bounded by this (seconds)

pytestmark = [pytest.mark.timeout(240), pytest.mark.deploy, pytest.mark.slow]


# --- processes -------------------------------------------------------------------------


class Nginx:
    def __init__(self, prefix: Path, backends: list[Backend], port: int) -> None:
        self.prefix = prefix
        self.port = port
        self.url = f"http://{HOST}:{port}"
        text = CONFIG.read_text()
        for port in ("5001", "5002"):
            assert text.count(f"127.0.0.1:{port}") == 1, port
        # Only the operator's own name is served: the loopback names go, so that the tests'
        # forged hosts are refused as any name the operator did not list would be.
        served = f"server_name {SITE_NAME} localhost 127.0.0.1;"
        assert text.count(served) == 1
        text = text.replace(served, f"server_name {HOST};")
        text = text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
        text = text.replace("127.0.0.1:5001", f"127.0.0.1:{backends[0].port}")
        text = text.replace("127.0.0.1:5002", f"127.0.0.1:{backends[1].port}")
        self.config = prefix.parent / "nginx.conf"
        self.config.write_text(text)
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        command = [NGINX, "-p", str(self.prefix), "-c", str(self.config), "-g", "daemon off;"]
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, preexec_fn=_die_with_parent, text=True
        )
        wait_for(lambda: self.process.poll() is not None or answers(self.url + "/healthz"))
        assert self.process.poll() is None, self.process.stderr.read()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.process.stderr.close()


def nginx_prefix(base: Path) -> Path:
    """PREFIX as deploy/README lays it out: static/ and media/ linked in, nothing else."""
    prefix = base / "prefix"
    prefix.mkdir()
    media = base / "media"
    media.mkdir()
    (media / "pixel.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    (prefix / "media").symlink_to(media)
    # nginx's workers run as an unprivileged user when it is started as root, and the
    # checkout may sit where that user cannot read (a clone under /root): static/ is copied
    # here rather than linked as deploy/README links it.
    shutil.copytree(ROOT / "static", prefix / "static")
    for path in (base, prefix, media, *prefix.joinpath("static").rglob("*")):
        path.chmod(0o755)
    (media / "pixel.png").chmod(0o644)
    return prefix


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped at the end."""
    with fresh_postgres_database("liveblog_deploy") as url:
        yield url


def migrate_concurrently(env: dict[str, str], count: int) -> list[subprocess.CompletedProcess]:
    """`make serve`'s first step, run by several processes starting at once."""
    command = [*FLASK, "schema-upgrade"]
    with ThreadPoolExecutor(count) as pool:
        runs = pool.map(
            lambda _: subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            ),
            range(count),
        )
        return list(runs)


def make_editor(database_url: str) -> str:
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        token = tokens.issue(services.create_editor("deployer", "deploy password"))
        db.session.remove()
        db.engine.dispose()
    return token


class Deployment:
    def __init__(
        self, backends: list[Backend], nginx: Nginx, token: str, env: dict[str, str]
    ) -> None:
        self.backends = backends
        self.nginx = nginx
        self.token = token
        self.env = env  # the processes' settings
        self.sources: dict[str, list[str]] = {}

    def backend_of(self, sid: str) -> Backend:
        found = wait_for(lambda: [b for b in self.backends if b.has_socket(sid)], what=f"sid {sid}")
        return found[0]

    def map_sources(self, per_backend: int = 3) -> None:
        """Find client addresses that nginx sends to each process (from the access logs)."""
        self.sources = {backend.name: [] for backend in self.backends}
        for n in range(2, 120):
            source = f"127.0.0.{n}"
            self.sources[self.lands_on(source).name].append(source)
            if all(len(found) >= per_backend for found in self.sources.values()):
                return
        raise AssertionError(f"nginx sent every address to one process: {self.sources}")

    def lands_on(self, source: str) -> Backend:
        """The process nginx sends a request from `source` to now."""
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        response = bound_session(source).get(f"{self.nginx.url}/healthz?{probe}", timeout=5)
        assert response.status_code == 200

        def landed() -> list[tuple[Backend, dict[str, Any]]]:
            return [
                (backend, record)
                for backend in self.backends
                for record in backend.records()
                if probe in record.get("path", "")
            ]

        backend, record = wait_for(landed, what=probe)[0]
        # TRUSTED_PROXIES=1: the application sees the client, not nginx.
        assert record["remote_addr"] == source
        return backend

    def wait_routed(self, backend: Backend) -> None:
        """Until nginx sends this process's addresses to it again (after it was down, nginx
        leaves it alone for `fail_timeout`)."""
        source = self.sources[backend.name][0]
        wait_for(lambda: self.lands_on(source) is backend, timeout=20, what="routing")


@pytest.fixture(scope="module")
def deployment(database) -> Iterator[Deployment]:
    if not Path(NGINX).exists():
        skip_unless_ci("nginx is not installed (apt-get install nginx)")
    # Not under pytest's temporary folder, which nginx's unprivileged workers cannot enter.
    base = Path(tempfile.mkdtemp(prefix="liveblog-deploy-"))
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "REDIS_CHANNEL": f"liveblog-deploy-{uuid.uuid4().hex[:8]}",
        "SECRET_KEY": "deploy-test-secret",  # one key, so any process reads any session
        "TRUSTED_PROXIES": "1",
        "RATELIMIT_ENABLED": "0",
        "LOG_FORMAT": "json",
        "METRICS_ENABLED": "1",
        "PYTHONUNBUFFERED": "1",
    }
    runs = migrate_concurrently(env, 2)
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
    token = make_editor(database)
    port = free_port()
    # No PUBLIC_URL: links are built from the host nginx passes on, which the tests of forged
    # host names need. The processes answer to nginx's address.
    env["ALLOWED_HOSTS"] = f"{HOST}:{port}"
    backends = [Backend(name, env, base / f"{name}.log") for name in ("a", "b")]
    nginx = Nginx(nginx_prefix(base), backends, port)
    try:
        for backend in backends:
            backend.start()
        nginx.start()
        deployment = Deployment(backends, nginx, token, env)
        deployment.map_sources()
        yield deployment
    finally:
        nginx.stop()
        for backend in backends:
            backend.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def behind_tls(deployment: Deployment) -> Iterator[tuple[Nginx, Backend]]:
    """deploy/README's other setup: a TLS terminator in front of nginx, so the processes
    trust two proxies. The tests play the terminator, sending the headers it adds. One
    process, named on both of nginx's upstream lines, is enough here."""
    base = Path(tempfile.mkdtemp(prefix="liveblog-tls-"))
    port = free_port()
    env = {**deployment.env, "TRUSTED_PROXIES": "2", "ALLOWED_HOSTS": f"{HOST}:{port}"}
    backend = Backend("tls", env, base / "tls.log")
    nginx = Nginx(nginx_prefix(base), [backend, backend], port)
    try:
        backend.start()
        yield nginx.start(), backend
    finally:
        nginx.stop()
        backend.stop()
        shutil.rmtree(base, ignore_errors=True)


# --- clients from a chosen address ------------------------------------------------------


def bound_session(source: str) -> requests.Session:
    """A requests session whose connections leave from `source`."""

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["source_address"] = (source, 0)
            super().init_poolmanager(*args, **kwargs)

    session = requests.Session()
    session.mount("http://", Adapter())
    return session


class SocketFrom(Mapping):
    """websocket-client options giving every connection attempt a new socket from `source`
    (the client has no option to choose its address, but takes a connected socket)."""

    def __init__(self, url: str, source: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address, self.source = (host, int(port)), source

    def __getitem__(self, key: str) -> Any:
        if key != "socket":
            raise KeyError(key)
        return socket.create_connection(
            self.address, timeout=TIMEOUT, source_address=(self.source, 0)
        )

    def __iter__(self) -> Iterator[str]:
        return iter(["socket"])

    def __len__(self) -> int:
        return 1

    def pop(self, key: str, default: Any = None) -> Any:
        return default


class LiveReader(WireReader):
    """A reader that, like reader.js, resubscribes after every reconnection from the last
    change it has, and records why each connection ended."""

    def __init__(self, url: str, source: str, transport: str) -> None:
        options: dict[str, Any] = {"http_session": bound_session(source)}
        if transport == "websocket":
            options["websocket_extra_options"] = SocketFrom(url, source)
        socketio.Client.__init__(  # WireReader turns reconnection off; this one reconnects
            self, handle_sigint=False, reconnection_delay=0.2, reconnection_delay_max=1, **options
        )
        self.url, self.transport = url, transport
        self.slug: str | None = None
        self.reasons: list[str] = []
        self.problems: list[str] = []
        self.leaving = False
        self.subscribed = threading.Event()
        self.on("connect", self._resubscribe)
        self.on("disconnect", self._on_disconnect)

    def start(self, slug: str, since: int = 0) -> LiveReader:
        self.slug = slug
        self.since = since
        self.connect(self.url, transports=[self.transport], wait_timeout=TIMEOUT)
        assert self.subscribed.wait(TIMEOUT), (self.transport, self.eio.sid, self.problems)
        return self

    def _resubscribe(self) -> None:
        seqs = [change["seq"] for change in self.changes()]
        since = max(seqs, default=self.since)
        self.subscribed.clear()
        try:
            ack = self.call("subscribe", {"article": self.slug, "since": since}, timeout=TIMEOUT)
        except socketio.exceptions.SocketIOError as error:  # the test sees it, not a thread
            self.problems.append(f"subscribe since {since}: {error!r}")
            return
        if ack.get("ok") is True:
            self.subscribed.set()
        else:
            self.problems.append(f"subscribe since {since} refused: {ack}")

    def _on_disconnect(self, reason: str | None = None) -> None:
        self.reasons.append(str(reason))
        # python-socketio gives up when the server closes the connection; browsers'
        # engine.io-client reconnects at once, as here.
        if reason == self.reason.SERVER_DISCONNECT:
            threading.Thread(target=self._reconnect_like_a_browser, daemon=True).start()

    def _reconnect_like_a_browser(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not self.leaving:
            try:
                self.connect(self.url, transports=[self.transport], wait_timeout=TIMEOUT)
                return
            except (socketio.exceptions.ConnectionError, ValueError, OSError):
                time.sleep(0.1)  # not yet fully disconnected, or nobody answering yet

    def disconnect(self) -> None:
        self.leaving = True  # and no reconnecting after this
        super().disconnect()

    def seqs(self) -> list[int]:
        return [change["seq"] for change in self.changes()]


def readers_on(deployment: Deployment, slug: str, backend: Backend) -> list[LiveReader]:
    """One polling and one WebSocket reader, through nginx, that land on `backend`."""
    deployment.wait_routed(backend)
    sources = deployment.sources[backend.name]
    made: list[LiveReader] = []
    try:
        for source, transport in zip(sources, ("polling", "websocket"), strict=False):
            made.append(LiveReader(deployment.nginx.url, source, transport))
            made[-1].start(slug)
            assert deployment.backend_of(made[-1].eio.sid) is backend, transport
    except AssertionError as error:
        for reader in made:
            reader.disconnect()
        logs = {b.name: b.log()[-4000:] for b in deployment.backends}
        raise AssertionError(f"{error}; logs: {logs}") from error
    return made


def post_through_both(deployment: Deployment, slug: str, count: int) -> None:
    """`count` posts, alternately through each process, several at once."""
    apis = [Api(backend.url, deployment.token) for backend in deployment.backends]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: apis[n % 2].post(slug, f"update {n}"), range(count)))


# --- the tests --------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{}, {"ALLOWED_HOSTS": " , "}])
def test_make_serve_refuses_to_start_without_public_url_or_allowed_hosts(settings):
    clean = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(free_port())}
    server = subprocess.Popen(
        GUNICORN,
        cwd=ROOT,
        env={**clean, **settings},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a server that did start is stopped, worker and all
    )
    try:
        status = server.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        raise AssertionError("gunicorn started without PUBLIC_URL or ALLOWED_HOSTS") from None
    lines = server.stderr.read().strip().splitlines()
    server.stderr.close()
    assert status == 78, lines  # EX_CONFIG: systemd's unit does not restart it
    assert len(lines) == 1, lines
    assert "PUBLIC_URL" in lines[0] and "ALLOWED_HOSTS" in lines[0]


def test_the_shipped_config_passes_nginx_t(tmp_path):
    if not Path(NGINX).exists():
        skip_unless_ci("nginx is not installed (apt-get install nginx)")
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(CONFIG), "-g", "daemon off;"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_both_processes_migrated_once_and_log_json(deployment):
    for backend in deployment.backends:
        assert answers(backend.url + "/readyz")
        lines = [line for line in backend.log().splitlines() if line.strip()]
        # LOG_FORMAT=json: every line a JSON object, gunicorn's own included.
        records = [json.loads(line) for line in lines]
        names = {record["name"] for record in records}
        assert {"gunicorn.error", "liveblog.access"} <= names, names
        assert "geventwebsocket.handler" not in names  # no second access line per request


def test_pages_files_and_probes_through_nginx(deployment):
    url = deployment.nginx.url
    page = requests.get(url + "/", timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors" in page.headers["Content-Security-Policy"]

    css = requests.get(url + "/static/css/site.css", timeout=TIMEOUT)
    assert css.status_code == 200
    assert css.content == (ROOT / "static" / "css" / "site.css").read_bytes()
    assert css.headers["Content-Type"] == "text/css"
    # Static files keep their names across releases: an hour, then a revalidation.
    assert css.headers["Cache-Control"] == "max-age=3600"
    media = requests.get(url + "/media/pixel.png", timeout=TIMEOUT)
    assert (media.status_code, media.headers["Content-Type"]) == (200, "image/png")
    assert "sandbox" in media.headers["Content-Security-Policy"]
    # Uploads have random names and never change: a year, never revalidated (the README's
    # promise, and what the application itself sends for them).
    assert media.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    missing = requests.get(url + "/media/0123456789abcdef.png", timeout=TIMEOUT)
    assert missing.status_code == 404
    assert "immutable" not in missing.headers.get("Cache-Control", "")  # it may come tomorrow
    # nginx served those from disk: no process logged them.
    paths = [record.get("path", "") for b in deployment.backends for record in b.records()]
    assert not [path for path in paths if path.startswith(("/static/", "/media/"))]

    # Metrics and readiness are per process: asked of each directly, never through nginx.
    assert requests.get(url + "/metrics", timeout=TIMEOUT).status_code == 404
    assert requests.get(url + "/readyz", timeout=TIMEOUT).status_code == 404
    assert requests.get(url + "/healthz", timeout=TIMEOUT).text == "ok"
    for backend in deployment.backends:
        scraped = requests.get(backend.url + "/metrics", timeout=TIMEOUT)
        assert scraped.status_code == 200
        assert "liveblog_connections" in scraped.text
        assert requests.get(backend.url + "/readyz", timeout=TIMEOUT).text == "ready"


PAGE_MAX_AGE = 5  # the setting's default, which the deployment runs with (README)


def app_requests_for(deployment: Deployment, path: str) -> int:
    """How many requests for `path` the processes have served: all of them logged, since a
    request sent after them is (requests from one address go to one process, in order)."""
    after = f"/healthz?after-{uuid.uuid4().hex[:8]}"
    assert requests.get(deployment.nginx.url + after, timeout=TIMEOUT).ok
    records = lambda: [r for b in deployment.backends for r in b.records()]  # noqa: E731
    wait_for(lambda: any(r.get("path") == after for r in records()), what=after)
    return sum(1 for record in records() if record.get("path") == path)


def test_story_pages_cached_for_readers_never_for_editors(deployment):
    api = Api(deployment.nginx.url, deployment.token)
    slug = api.new_story("Cached")
    api.post(slug, "The first update")
    path = f"/articles/{slug}"
    url = deployment.nginx.url + path

    filled = time.monotonic()
    first = requests.get(url, timeout=TIMEOUT)
    assert (first.status_code, first.headers["X-Cache-Status"]) == (200, "MISS")
    assert first.headers["Cache-Control"] == "public, max-age=5, s-maxage=5"
    # The next readers within PAGE_MAX_AGE get nginx's copy, and the application never
    # hears of them, even once the story has moved on.
    second = requests.get(url, timeout=TIMEOUT)
    assert (second.status_code, second.headers["X-Cache-Status"]) == (200, "HIT")
    assert second.text == first.text
    api.post(slug, "The second update")
    while time.monotonic() < filled + PAGE_MAX_AGE - 1:
        again = requests.get(url, timeout=TIMEOUT)
        assert again.headers["X-Cache-Status"] == "HIT"
        assert "The second update" not in again.text  # the live script catches up
        time.sleep(0.5)
    assert app_requests_for(deployment, path) == 1

    # Past it, one reader's request renders the story as it is now, and the next gets that.
    time.sleep(max(0.0, filled + PAGE_MAX_AGE + 1 - time.monotonic()))
    fresh = requests.get(url, timeout=TIMEOUT)
    assert fresh.status_code == 200
    assert fresh.headers["X-Cache-Status"] == "EXPIRED"  # nginx's word for a refetched copy
    assert "The second update" in fresh.text
    after = requests.get(url, timeout=TIMEOUT)
    assert (after.headers["X-Cache-Status"], after.text) == ("HIT", fresh.text)
    assert app_requests_for(deployment, path) == 2

    signed_in = requests.get(url, cookies={"session": "an-editor-session"}, timeout=TIMEOUT)
    assert signed_in.headers["X-Cache-Status"] == "BYPASS"
    assert app_requests_for(deployment, path) == 3


def raw_request(nginx: Nginx, head: str) -> str:
    """A request exactly as written (requests would mend its request line and Host)."""
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=TIMEOUT) as conn:
        conn.sendall(f"{head}Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


# Requests that once made the next readers' page link elsewhere, through nginx's cache.
FORGERIES = {
    # nginx takes the host from an absolute request line, and passed the Host header on.
    "request line": "GET http://{site}{path} HTTP/1.1\r\nHost: evil.example\r\n",
    # The port is the client's to name, and was not in the cache key.
    "port": "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:1\r\n",
    "X-Forwarded-Host": "GET {path} HTTP/1.1\r\nHost: {site}\r\nX-Forwarded-Host: evil.example\r\n",
    "X-Forwarded-Proto": "GET {path} HTTP/1.1\r\nHost: {site}\r\nX-Forwarded-Proto: https\r\n",
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_host_does_not_reach_the_next_reader(deployment, forgery):
    nginx = deployment.nginx
    slug = Api(nginx.url, deployment.token).new_story(f"Forged {forgery}")
    path = f"/articles/{slug}"
    raw_request(nginx, FORGERIES[forgery].format(site=f"{HOST}:{nginx.port}", path=path))
    page = requests.get(nginx.url + path, timeout=TIMEOUT)  # after it, as a cache would
    assert page.status_code == 200
    assert links_on(page.text) == {nginx.url + path}, page.headers.get("X-Cache-Status")
    assert "evil.example" not in page.text and f"https://{HOST}" not in page.text


def test_an_unknown_host_is_refused_by_nginx(deployment):
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    for path in ("/articles/any", "/socket.io/?EIO=4&transport=polling", "/healthz"):
        refused = requests.get(
            f"{deployment.nginx.url}{path}{'&' if '?' in path else '?'}{probe}",
            headers={"Host": "evil.example"},
            timeout=TIMEOUT,
        )
        assert refused.status_code == 421, path
        assert "does not answer to that host name" in refused.text
    # No process saw them: a request sent after them is logged, and they are not.
    after = f"after-{probe}"
    assert requests.get(f"{deployment.nginx.url}/healthz?{after}", timeout=TIMEOUT).ok
    paths = lambda: [r.get("path", "") for b in deployment.backends for r in b.records()]  # noqa: E731
    wait_for(lambda: any(after in path for path in paths()), what=after)
    assert not [path for path in paths() if probe in path and after not in path]


def test_behind_tls_the_terminators_scheme_and_client_make_it_through(deployment, behind_tls):
    nginx, backend = behind_tls
    slug = Api(backend.url, deployment.token).new_story("Behind TLS")
    path = f"/articles/{slug}"
    # What the terminator adds; it passes the reader's Host header on as it came.
    terminator = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    site = f"{HOST}:{nginx.port}"
    for cache in ("MISS", "HIT"):
        page = requests.get(nginx.url + path, headers=terminator, timeout=TIMEOUT)
        assert links_on(page.text) == {f"https://{site}{path}"}
        assert page.headers["X-Cache-Status"] == cache
    logged = wait_for(lambda: [r for r in backend.records() if r.get("path") == path])
    assert logged[0]["remote_addr"] == "203.0.113.7"  # for rate limits and logs
    # A plain-HTTP request the terminator passed on gets a page of its own, not that copy.
    plain = {**terminator, "X-Forwarded-Proto": "http"}
    page = requests.get(nginx.url + path, headers=plain, timeout=TIMEOUT)
    assert links_on(page.text) == {f"http://{site}{path}"}
    assert page.headers["X-Cache-Status"] == "MISS"


def test_changes_reach_readers_on_both_processes_in_order(deployment):
    api = Api(deployment.nginx.url, deployment.token)
    slug = api.new_story("Across processes")
    readers = [
        reader
        for backend in deployment.backends
        for reader in readers_on(deployment, slug, backend)
    ]
    try:
        post_through_both(deployment, slug, 30)
        for reader in readers:
            reader.wait_changes(30, timeout=30)
            assert reader.seqs() == list(range(1, 31)), (reader.transport, reader.seqs())
    finally:
        for reader in readers:
            reader.disconnect()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_reader_catches_up_through_nginx(deployment, transport):
    api = Api(deployment.nginx.url, deployment.token)
    slug = api.new_story("Catch-up")
    for n in range(5):
        api.post(slug, f"before {n}")
    reader = LiveReader(deployment.nginx.url, deployment.sources["b"][0], transport)
    try:
        reader.start(slug, since=2)
        assert reader.seqs() == [3, 4, 5]  # before the ack: `start` waited for it
        api.post(slug, "live")
        reader.wait_changes(4)
        assert reader.seqs() == [3, 4, 5, 6]
    finally:
        reader.disconnect()


def test_sigterm_closes_readers_at_once_and_finishes_requests(deployment):
    a, b = deployment.backends
    api = Api(b.url, deployment.token)
    slug = api.new_story("Graceful")
    readers = readers_on(deployment, slug, a)
    # A request in progress when the signal comes: its body is not all sent yet.
    body = json.dumps({"body": "sent across the shutdown"}).encode()
    request = socket.create_connection(("127.0.0.1", a.port), timeout=TIMEOUT)
    request.sendall(
        f"POST /api/articles/{slug}/updates HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {deployment.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    try:
        time.sleep(0.2)  # let the worker accept it and read its headers
        a.signal(signal.SIGTERM)
        # Closed by the server, not by a ping timeout: each reader reconnects at once, to
        # the other process, and is caught up there. A polling reader between two polls
        # finds its next one refused instead (the listener is closed first): a transport
        # error, on which clients reconnect at once too.
        ends = {"polling": {"server disconnect", "transport error"}}
        for reader in readers:
            wait_for(lambda reader=reader: reader.reasons, what="disconnect")
            expected = ends.get(reader.transport, {"server disconnect"})
            assert reader.reasons[0] in expected, (reader.transport, reader.reasons)
        request.sendall(body[10:])
        answer = request.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 201"), answer
        for reader in readers:
            wait_for(lambda reader=reader: reader.connected and reader.subscribed.is_set())
            assert deployment.backend_of(reader.eio.sid) is b
            reader.wait_changes(1)
        assert a.process.wait(30) == 0
        Api(b.url, deployment.token).post(slug, "after the shutdown")
        for reader in readers:
            reader.wait_changes(2)
            assert reader.seqs() == [1, 2]
    finally:
        request.close()
        for reader in readers:
            reader.disconnect()
        a.stop()  # if the test failed before it had exited
        a.start()


def test_killed_process_readers_move_to_the_other_and_it_comes_back(deployment):
    a, b = deployment.backends
    api_b = Api(b.url, deployment.token)
    slug = api_b.new_story("Killed")
    readers = readers_on(deployment, slug, a)
    try:
        api_b.post(slug, "before the crash")
        for reader in readers:
            reader.wait_changes(1)
        a.signal(signal.SIGKILL)
        a.process.wait(TIMEOUT)
        for n in range(3):
            api_b.post(slug, f"while it is down {n}")
        for reader in readers:
            reader.wait_changes(4, timeout=20)
            assert reader.seqs() == [1, 2, 3, 4], (reader.transport, reader.seqs())
            assert deployment.backend_of(reader.eio.sid) is b
        a.start()
        Api(a.url, deployment.token).post(slug, "posted on the restarted process")
        for reader in readers:
            reader.wait_changes(5)
            assert reader.seqs() == [1, 2, 3, 4, 5]
        # Once nginx retries it, the restarted process takes its readers again, live.
        newcomer = wait_for(
            lambda: _reader_landing_on(deployment, slug, a), timeout=20, what="a reader on a"
        )
        try:
            api_b.post(slug, "to both")
            newcomer.wait_changes(1)
            assert newcomer.changes()[-1]["seq"] == 6
        finally:
            newcomer.disconnect()
    finally:
        for reader in readers:
            reader.disconnect()
        if a.process.poll() is not None:
            a.start()


def _reader_landing_on(deployment: Deployment, slug: str, backend: Backend) -> LiveReader | None:
    reader = LiveReader(deployment.nginx.url, deployment.sources[backend.name][2], "websocket")
    reader.start(slug, since=Api(backend.url, deployment.token).story(slug)["seq"])
    if deployment.backend_of(reader.eio.sid) is backend:
        return reader
    reader.disconnect()
    time.sleep(0.5)
    return None
