"""The production server process (`make serve`'s gunicorn) against slow and idle clients.

A client that opens connections and then sends its request a byte at a time, or nothing at
all, must not be able to hold them for ever: each holds one of the process's connection
slots, and once they are all taken nobody else is answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.deployment import Backend
from tests.liveserver import prepare_database

pytestmark = [pytest.mark.deploy, pytest.mark.slow]  # gunicorn, as `make serve` runs it

SLOTS = 12  # the process's connection slots (WORKER_CONNECTIONS), few so a test fills them
BOUND = 20.0  # seconds: far past the timeouts below, so only a missing timeout fails


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Backend]:
    url = f"sqlite:///{tmp_path / 'serve.sqlite'}"
    prepare_database(url)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "DATABASE_URL": url,
        "SECRET_KEY": "serving-test",
        "PUBLIC_URL": "http://127.0.0.1",  # without it (or ALLOWED_HOSTS), no `make serve`
        "HTTP_TIMEOUT": "2",
        "KEEPALIVE_TIMEOUT": "1",
        "WORKER_CONNECTIONS": str(SLOTS),
        "REQUEST_DEADLINE": "3",
        "LOG_FORMAT": "json",
    }
    backend = Backend("serve", env, tmp_path / "serve.log")
    try:
        yield backend.start()
    finally:
        backend.stop()


def trickle(port: int, closed: list[bool]) -> None:
    """Send a request's headers one byte every 0.2 s until the server hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        conn.settimeout(0.2)
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            try:
                conn.sendall(b"X")
                if conn.recv(1024) == b"":  # closed without a word
                    break
                break  # an answer (400) and then the close
            except TimeoutError:
                continue  # nothing yet: keep trickling
            except OSError:
                break  # reset by the server
        else:
            return
    closed.append(True)


def test_slow_clients_are_cut_off_and_others_served(server):
    closed: list[bool] = []
    slow = [
        threading.Thread(target=trickle, args=(server.port, closed), daemon=True)
        for _ in range(SLOTS + 4)
    ]
    for thread in slow:
        thread.start()
    time.sleep(0.5)  # let them take every slot
    # Someone else, meanwhile, is answered once the slow ones are cut off.
    answer = requests.get(server.url + "/healthz", timeout=BOUND)
    assert (answer.status_code, answer.text) == (200, "ok")
    for thread in slow:
        thread.join(BOUND + 5)
    assert len(closed) == len(slow), "slow connections the server closed"


def test_idle_connections_are_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as idle:
        assert idle.recv(1024) == b""  # closed by the server, having sent nothing
    with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as kept_alive:
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = kept_alive.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        while kept_alive.recv(4096):  # then nothing more is asked: closed after a while
            pass


def test_requests_stuck_in_the_application_are_cut_off(server):
    """Engine.IO answers a polling POST of an unknown packet type by closing the session and
    waiting, with no end, for a poll that would carry the close; each such request would
    hold a connection slot for ever."""
    polling = server.url + "/socket.io/?EIO=4&transport=polling"
    for _ in range(SLOTS + 2):
        sid = json.loads(requests.get(polling, timeout=BOUND).text[1:])["sid"]
        assert requests.post(f"{polling}&sid={sid}", data="40", timeout=BOUND).ok
        with contextlib.suppress(requests.Timeout):  # Engine.IO does not answer it
            requests.post(f"{polling}&sid={sid}", data="9", timeout=0.5)
    # Each such request is cut off at the deadline, so the slots come back for everyone else.
    answer = requests.get(server.url + "/healthz", timeout=BOUND)
    assert (answer.status_code, answer.text) == (200, "ok")
    assert "overran its 3.0s deadline" in server.log()


def test_long_polls_within_the_deadline_are_untouched(server):
    polling = server.url + "/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(polling, timeout=BOUND).text[1:])["sid"]
    assert requests.post(f"{polling}&sid={sid}", data="40", timeout=BOUND).ok
    connected = requests.get(f"{polling}&sid={sid}", timeout=BOUND)
    assert connected.status_code == 200 and connected.text.startswith("40")
    assert "overran" not in server.log()
