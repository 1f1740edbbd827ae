"""`make serve`'s process (gunicorn, deploy/gunicorn.conf.py, deploy/liveblog_worker.py) and
its two clocks for requests that do not end: REQUEST_DEADLINE, which must cut off ordinary
requests and never a reader's WebSocket (else every reader would drop once a deadline),
and GRACEFUL_TIMEOUT, what a stop leaves requests in progress.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.liveserver import ROOT, Api, _die_with_parent, free_port, prepare_database, wait_for
from tests.rawreader import RawReader

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(120)]

GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "--config", "deploy/gunicorn.conf.py"]
DEADLINE = 2  # REQUEST_DEADLINE here: seconds, small so that tests outlast it several times
GRACEFUL = 3  # GRACEFUL_TIMEOUT here
BOUND = 30.0  # seconds any wait here may take: far past the settings above


class Serve:
    """One `make serve` process on a SQLite file, with an editor's API token."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        database = f"sqlite:///{tmp_path / 'serve.sqlite'}"
        self.token = prepare_database(database)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "serve.log"
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": database,
            "SECRET_KEY": "deadline-test",
            "PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "RATELIMIT_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                GUNICORN,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # master and worker in one group, signalled together
                preexec_fn=_die_with_parent,
            )
        wait_for(self._ready, timeout=BOUND, what="gunicorn")
        self.api = Api(self.url, self.token)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log()[-3000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path, REQUEST_DEADLINE=str(DEADLINE), GRACEFUL_TIMEOUT=str(GRACEFUL))
    try:
        yield server
    finally:
        server.stop()


def test_a_websocket_reader_outlives_the_request_deadline(serve):
    slug = serve.api.new_story("Outlasting the deadline")
    reader = RawReader(serve.url)
    try:
        reader.subscribe(slug)
        time.sleep(3 * DEADLINE)  # three deadlines pass with nothing for this reader
        serve.api.post(slug, "after three deadlines")
        reader.wait_for(lambda text: text.startswith('42["change"'), timeout=BOUND)
        assert not reader.closed
    finally:
        reader.close()
    assert "overran" not in serve.log()


def test_a_slow_ordinary_request_is_cut_off_at_the_deadline(serve):
    # A long-poll with nothing to carry waits for the next ping (25 s): past the deadline.
    polling = serve.url + "/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(polling, timeout=BOUND).text[1:])["sid"]
    assert requests.post(f"{polling}&sid={sid}", data="40", timeout=BOUND).ok
    assert requests.get(f"{polling}&sid={sid}", timeout=BOUND).text.startswith("40")
    waiting = requests.get(f"{polling}&sid={sid}", timeout=BOUND)
    assert waiting.status_code == 503
    assert waiting.text == "The server took too long to answer.\n"
    assert f"overran its {float(DEADLINE)}s deadline" in serve.log()
    # The process goes on serving.
    assert requests.get(serve.url + "/healthz", timeout=BOUND).text == "ok"


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=BOUND).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def stopping(tmp_path: Path) -> Iterator[Serve]:
    """A process whose requests only GRACEFUL_TIMEOUT can end within BOUND: their own
    clocks (REQUEST_DEADLINE, HTTP_TIMEOUT) are far longer."""
    server = Serve(
        tmp_path, REQUEST_DEADLINE="600", HTTP_TIMEOUT="600", GRACEFUL_TIMEOUT=str(GRACEFUL)
    )
    try:
        yield server
    finally:
        server.stop()


def start_post(serve: Serve, slug: str, body: bytes) -> socket.socket:
    """A connection the process has accepted, with a POST on it whose headers and first
    bytes are sent, the rest of its body not yet."""
    conn = socket.create_connection(("127.0.0.1", serve.port), timeout=BOUND)
    host = f"Host: 127.0.0.1:{serve.port}\r\n"
    conn.sendall(f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode())
    answer = b""
    while not answer.endswith(b"\r\n\r\nok"):  # accepted, answered, kept alive
        chunk = conn.recv(65536)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    conn.sendall(
        f"POST /api/articles/{slug}/updates HTTP/1.1\r\n{host}"
        f"Authorization: Bearer {serve.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    time.sleep(0.3)  # for the worker to read the headers it has been sent
    return conn


def read_all(conn: socket.socket) -> str:
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer.decode(errors="replace")


def test_sigterm_refuses_new_connections_and_finishes_requests_in_progress(stopping):
    slug = stopping.api.new_story("Stopping")
    body = json.dumps({"body": "sent across the stop"}).encode()
    with start_post(stopping, slug, body) as request:
        os.killpg(stopping.process.pid, signal.SIGTERM)
        wait_for(lambda: refused(stopping.port), timeout=BOUND, what="the listener closed")
        request.sendall(body[10:])
        answer = read_all(request)
    head, _, payload = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 201"), answer
    assert "Connection: close" in head  # and no further request on it
    assert json.loads(payload)["body"] == "sent across the stop"
    assert stopping.process.wait(BOUND) == 0


def test_a_request_that_never_ends_does_not_outlast_the_graceful_timeout(stopping):
    slug = stopping.api.new_story("Stalled")
    with start_post(stopping, slug, json.dumps({"body": "never all sent"}).encode()) as request:
        os.killpg(stopping.process.pid, signal.SIGTERM)
        # Only GRACEFUL_TIMEOUT ends it within BOUND: the process stops, the request unanswered.
        stopping.process.wait(BOUND)
        assert read_all(request) == ""
