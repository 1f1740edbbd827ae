"""Rate limits are read from the app's settings when a request comes, each under its own key.

A limit read at import, or from the wrong setting, passes every test that keeps the
default; here each one is changed on a running app and must take effect at once.
"""

from __future__ import annotations

import pytest

from liveblog import signin
from liveblog.extensions import limiter
from tests.conftest import PASSWORD, csrf_token

pytestmark = pytest.mark.config(RATELIMIT_ENABLED=True)
API = "/api/articles/election-night/updates"


@pytest.fixture(autouse=True)
def fresh_counts(app):
    """Flask-Limiter's in-memory counts outlive an app: each test starts from none."""
    with app.app_context():
        limiter.reset()


def test_the_write_limit_is_read_at_request_time(app, client, bearer, story):
    app.config["WRITE_RATE_LIMIT"] = "2 per minute"
    answers = [client.post(API, json={"body": f"Update {n}"}, headers=bearer) for n in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]


def wrong_password(client, username: str = "alice", **how):
    token = csrf_token(client, "/editor/login")
    return client.post(
        "/editor/login",
        data={"username": username, "password": "wrong", "csrf_token": token},
        **how,
    )


def test_the_address_limit_is_read_at_request_time(app, client, editor):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    assert [wrong_password(client).status_code for _ in range(2)] == [401, 401]
    refused = wrong_password(client, "bob")  # another account, the same address
    assert refused.status_code == 429
    assert signin.BUSY_ADDRESS in refused.get_data(as_text=True)
    assert "<form" in refused.get_data(as_text=True)  # the form again, not a bare error


def test_the_account_limit_is_read_at_request_time(app, client, editor):
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "2 per minute"
    for address in ("192.0.2.1", "192.0.2.2"):
        assert wrong_password(client, environ_base={"REMOTE_ADDR": address}).status_code == 401
    # the same account from a third address, its name written another way
    refused = wrong_password(client, " ALICE ", environ_base={"REMOTE_ADDR": "192.0.2.3"})
    assert refused.status_code == 429
    assert signin.ATTACKED in refused.get_data(as_text=True)
    other = wrong_password(client, "bob", environ_base={"REMOTE_ADDR": "192.0.2.4"})
    assert other.status_code == 401


def test_only_failures_count(app, client, editor):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    for _ in range(3):
        token = csrf_token(client, "/editor/login")
        signed_in = client.post(
            "/editor/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        )
        assert signed_in.status_code == 302
        client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})


def test_the_device_limit_is_read_at_request_time(app, client, editor):
    token = csrf_token(client, "/editor/login")
    client.post(
        "/editor/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    assert client.get_cookie(signin.DEVICE_COOKIE, path="/editor/login") is not None
    app.config["LOGIN_DEVICE_RATE_LIMIT"] = "2 per minute"
    app.config["LOGIN_RATE_LIMIT"] = "1 per minute"  # a known browser is exempt from this
    assert [wrong_password(client).status_code for _ in range(2)] == [401, 401]
    refused = wrong_password(client)
    assert refused.status_code == 429
    assert signin.BUSY_DEVICE in refused.get_data(as_text=True)


def test_an_account_is_named_without_case_or_spaces():
    assert signin.account("  Alice ") == "alice"
    assert signin.account("A" * 500) == "a" * len(signin.account("A" * 500))
    assert len(signin.account("A" * 500)) < 500
