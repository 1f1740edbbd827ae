"""Two real server processes with REDIS_URL, behind one trusted proxy: a client's failed
sign-ins on one count on the other, as with several processes behind a load balancer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.liveserver import LiveServer, prepare_database

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/3"


@pytest.fixture
def pair(tmp_path) -> Iterator[list[LiveServer]]:
    url = f"sqlite:///{tmp_path / 'pair.sqlite'}"
    prepare_database(url)
    env = {
        "REDIS_URL": REDIS_URL,
        "REDIS_CHANNEL": f"test-limits-{uuid.uuid4().hex[:10]}",
        "RATELIMIT_ENABLED": "1",
        "LOGIN_RATE_LIMIT": "3 per minute",
        "TRUSTED_PROXIES": "1",
    }
    servers = [LiveServer(url, tmp_path / f"server{n}.log", **env) for n in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def failed_sign_in(server: LiveServer, username: str, client: str) -> int:
    """A wrong password from a fresh browser at `client`, as the proxy forwards it."""
    headers = {"X-Forwarded-For": client}
    with requests.Session() as browser:
        page = browser.get(f"{server.url}/editor/login", headers=headers, timeout=20).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        return browser.post(
            f"{server.url}/editor/login",
            data={"username": username, "password": "a guess", "csrf_token": token},
            headers=headers,
            timeout=20,
        ).status_code


def test_failed_sign_ins_on_one_process_count_on_the_other(pair):
    first, second = pair
    n = uuid.uuid4().int  # an address and an account of this run's own: counts last a minute
    client, other = f"198.18.{n % 256}.{(n >> 8) % 254 + 1}", f"198.19.{n % 256}.7"
    name = f"editor-{uuid.uuid4().hex[:12]}"
    assert [failed_sign_in(first, name, client) for _ in range(2)] == [401, 401]
    assert failed_sign_in(second, name, client) == 401  # the third, on the other process
    assert failed_sign_in(first, name, client) == 429
    assert failed_sign_in(second, name, client) == 429
    # Another client behind the same proxy is counted apart, on either process.
    assert failed_sign_in(second, name, other) == 401
    assert failed_sign_in(first, name, other) == 401
