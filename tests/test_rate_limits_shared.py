"""Rate limits as production runs them: with REDIS_URL the counts live in Redis, where every
process sees them (an in-memory fallback would hide a misconfiguration: each process would
count alone), and behind TRUSTED_PROXIES they key on the client the proxy names.

Flask-Limiter's `limiter` is one object per Python process, and its counts in Redis outlive
a test: every test here signs in as an account and from addresses of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from liveblog import create_app
from liveblog.extensions import db
from tests.conftest import app_config, csrf_token

REDIS_URL = "redis://127.0.0.1:6379/3"
LIMITED = {"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute"}

# An app made here with REDIS_URL must not leave later tests on its message queue.
pytestmark = pytest.mark.usefixtures("socketio_left_as_found")


def unique_address() -> str:
    """An address of TEST-NET-2 no other test or run uses (the counts last a minute)."""
    n = uuid.uuid4().int
    return f"198.51.{n % 256}.{(n >> 8) % 254 + 1}"


def failed_sign_in(app: Flask, username: str, **request) -> int:
    """A wrong password from a fresh browser; the status it got."""
    client = app.test_client()
    token = csrf_token(client, "/editor/login")
    return client.post(
        "/editor/login",
        data={"username": username, "password": "a guess", "csrf_token": token},
        **request,
    ).status_code


def build(url: str, **settings) -> Flask:
    app = create_app(app_config(url, **settings))
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def redis_env(monkeypatch) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    connection.ping()
    # As production sets it: in the environment, from which RATELIMIT_STORAGE_URI follows.
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("REDIS_CHANNEL", f"test-limits-{uuid.uuid4().hex[:10]}")
    yield connection
    connection.close()


def test_with_redis_url_two_apps_share_the_counts_in_redis(redis_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = build(url, **LIMITED)
    assert first.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
    name, address = f"editor-{uuid.uuid4().hex[:12]}", unique_address()
    client = {"environ_base": {"REMOTE_ADDR": address}}
    assert [failed_sign_in(first, name, **client) for _ in range(3)] == [401] * 3
    # A second app binds the limiter to storage of its own making: only counts kept outside
    # the process (Redis) are still there. An in-memory store would start again from zero.
    second = build(url, **LIMITED)
    assert failed_sign_in(second, name, **client) == 429
    assert failed_sign_in(first, name, **client) == 429
    assert failed_sign_in(second, name, environ_base={"REMOTE_ADDR": unique_address()}) == 401
    assert redis_env.keys(f"*{address}*"), "the address's count is not in Redis"
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


def test_without_redis_url_the_counts_stay_in_the_process(monkeypatch, tmp_path):
    """The other side of the test above: proof that it tells the two stores apart."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'alone.sqlite'}"
    first = build(url, **LIMITED)
    assert first.config["RATELIMIT_STORAGE_URI"] == "memory://"
    name, address = f"editor-{uuid.uuid4().hex[:12]}", unique_address()
    client = {"environ_base": {"REMOTE_ADDR": address}}
    assert [failed_sign_in(first, name, **client) for _ in range(4)] == [401] * 3 + [429]
    second = build(url, **LIMITED)
    assert failed_sign_in(second, name, **client) == 401
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def behind_proxy(tmp_path) -> Iterator[Flask]:
    app = build(f"sqlite:///{tmp_path / 'proxied.sqlite'}", TRUSTED_PROXIES=1, **LIMITED)
    yield app
    with app.app_context():
        db.engine.dispose()


PROXY = "10.0.0.1"


def via_proxy(forwarded_for: str) -> dict:
    """A request as one trusted proxy passes it on: from the proxy, naming the client last."""
    return {"environ_base": {"REMOTE_ADDR": PROXY}, "headers": {"X-Forwarded-For": forwarded_for}}


def test_behind_a_proxy_each_client_is_limited_separately(behind_proxy):
    name = f"editor-{uuid.uuid4().hex[:12]}"
    one, two = unique_address(), unique_address()
    statuses = [failed_sign_in(behind_proxy, name, **via_proxy(one)) for _ in range(4)]
    assert statuses == [401] * 3 + [429]
    # The other client behind the same proxy is not held up by the first one's failures.
    assert failed_sign_in(behind_proxy, name, **via_proxy(two)) == 401
    # Nor is the proxy itself what is counted: a request from it with no header is its own.
    assert failed_sign_in(behind_proxy, name, environ_base={"REMOTE_ADDR": PROXY}) == 401


def test_a_forged_forwarded_entry_does_not_escape_the_limit(behind_proxy):
    """A client may send X-Forwarded-For itself; the one proxy appends the real address,
    and only the last entry (TRUSTED_PROXIES = 1) is believed."""
    name = f"editor-{uuid.uuid4().hex[:12]}"
    client = unique_address()
    for _ in range(3):
        assert failed_sign_in(behind_proxy, name, **via_proxy(client)) == 401
    for n in range(3):
        forged = f"{unique_address()}, {client}"  # whatever the client wrote, then the proxy
        assert failed_sign_in(behind_proxy, name, **via_proxy(forged)) == 429, n
