"""Signing in under attack (hostile review, round two): failures by others never lock an
editor out of a browser they signed in with before, guessing stays bounded, each sign-in and
sign-out starts a fresh session, and previews are rate limited."""

from __future__ import annotations

import time
import uuid
from http.cookies import SimpleCookie

import pytest
import redis
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from liveblog import services, signin
from tests.conftest import PASSWORD, csrf_token, sign_in

COMPOSE = "/editor/articles/election-night"
LIMITED = {"RATELIMIT_ENABLED": True}
REDIS = "redis://127.0.0.1:6379"


def sign_out(client: FlaskClient) -> None:
    response = client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    assert response.status_code == 302


def device_cookied(app, username: str = "alice", address: str = "203.0.113.77") -> FlaskClient:
    """A browser that signed in to the account once, and signed out again."""
    client = app.test_client()
    assert sign_in(client, username, PASSWORD, address).status_code == 302
    assert client.get_cookie(signin.DEVICE_COOKIE, path="/editor/login") is not None
    sign_out(client)
    return client


def attack(app, username: str, count: int, prefix: str = "192.0.2") -> list[int]:
    """Wrong passwords for the account, each from a browser and address of its own."""
    return [
        sign_in(app.test_client(), username, "a guess", f"{prefix}.{n}").status_code
        for n in range(1, count + 1)
    ]


# --- device cookies: others' failures never lock the editor out -------------------------


@pytest.mark.config(**LIMITED)
def test_the_right_password_works_from_a_known_browser_during_an_attack(app, editor):
    known = device_cookied(app)
    statuses = attack(app, "alice", 25)
    assert statuses == [401] * 20 + [429] * 5  # LOGIN_ACCOUNT_RATE_LIMIT, "20 per 10 minutes"

    stranger = sign_in(app.test_client(), "alice", PASSWORD, "198.51.100.7")
    assert stranger.status_code == 429
    assert "tried for this account from elsewhere" in stranger.text
    assert 'name="username"' in stranger.text  # the form again, not a bare error page
    assert sign_in(known, "alice", PASSWORD, "198.51.100.8").status_code == 302
    assert known.get("/editor/").status_code == 200


@pytest.mark.config(**LIMITED, LOGIN_RATE_LIMIT="3 per minute")
def test_a_known_browser_behind_a_busy_address_still_signs_in(app, editor):
    """An office NAT shared with someone guessing: its editors' browsers are not held up."""
    known = device_cookied(app, address="203.0.113.9")
    for name in ("x", "y", "z"):
        assert sign_in(app.test_client(), name, "wrong", "203.0.113.9").status_code == 401
    refused = sign_in(app.test_client(), "alice", PASSWORD, "203.0.113.9")
    assert refused.status_code == 429 and "failed sign-ins from your network" in refused.text
    assert sign_in(known, "alice", PASSWORD, "203.0.113.9").status_code == 302


@pytest.mark.config(**LIMITED, LOGIN_DEVICE_RATE_LIMIT="3 per 10 minutes")
def test_guesses_from_a_known_browser_are_bounded_per_cookie(app, editor):
    known = device_cookied(app)
    statuses = [sign_in(known, "alice", "a guess", f"198.51.100.{n}").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]  # a new address does not help it
    refused = sign_in(known, "alice", PASSWORD)
    assert refused.status_code == 429 and "from this browser" in refused.text
    # Its failures were its own: the account and the address are not held up by them.
    assert sign_in(app.test_client(), "alice", PASSWORD).status_code == 302


@pytest.mark.config(**LIMITED, LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")
def test_a_cookie_counts_only_for_its_own_account(app, editor):
    with app.app_context():
        services.create_editor("bob", PASSWORD)
    bobs = device_cookied(app, "bob")
    assert attack(app, "alice", 4) == [401, 401, 401, 429]
    assert sign_in(bobs, "alice", PASSWORD).status_code == 429  # bob's browser, alice's account
    assert sign_in(bobs, "bob", PASSWORD).status_code == 302


class LongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 366 * 24 * 3600


@pytest.mark.config(**LIMITED, LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")
@pytest.mark.parametrize("forge", ["garbage", "another key", "expired", "not a pair"])
def test_a_forged_or_stale_cookie_is_not_trusted(app, editor, forge):
    assert attack(app, "alice", 4) == [401, 401, 401, 429]
    key, signer, payload = app.secret_key, TimestampSigner, ["alice", "nonce"]
    if forge == "another key":
        key = "another key"
    elif forge == "expired":
        signer = LongAgo
    elif forge == "not a pair":
        payload = "alice"
    value = URLSafeTimedSerializer(key, salt=signin.SALT, signer=signer).dumps(payload)
    if forge == "garbage":
        value = "alice.nonce.signature"
    client = app.test_client()
    client.set_cookie(signin.DEVICE_COOKIE, value, path="/editor/login")
    assert sign_in(client, "alice", PASSWORD).status_code == 429


@pytest.mark.config(**LIMITED, LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")
def test_a_genuine_cookie_is_trusted(app, editor):
    """The other side of the test above: the same cookie, properly made, lets alice in."""
    assert attack(app, "alice", 4) == [401, 401, 401, 429]
    value = URLSafeTimedSerializer(app.secret_key, salt=signin.SALT).dumps(["alice", "nonce"])
    client = app.test_client()
    client.set_cookie(signin.DEVICE_COOKIE, value, path="/editor/login")
    assert sign_in(client, "Alice ", PASSWORD).status_code == 401  # no such name, but counted
    assert sign_in(client, "alice", PASSWORD).status_code == 302


@pytest.mark.config(SESSION_COOKIE_SECURE=True)
def test_the_device_cookie_is_signed_http_only_lax_and_secure_behind_tls(app, editor):
    response = sign_in(app.test_client(), "alice", PASSWORD)
    header = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(signin.DEVICE_COOKIE)
    )
    morsel = SimpleCookie(header)[signin.DEVICE_COOKIE]
    assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Lax"
    assert morsel["path"] == "/editor/login" and int(morsel["max-age"]) == 365 * 24 * 3600
    without_tls = {"SESSION_COOKIE_SECURE": False}
    app.config.update(without_tls)
    plain = sign_in(app.test_client(), "alice", PASSWORD).headers.getlist("Set-Cookie")
    assert not any("Secure" in h for h in plain if h.startswith(signin.DEVICE_COOKIE))


@pytest.mark.config(
    RATELIMIT_ENABLED=True,
    RATELIMIT_STORAGE_URI=REDIS,
    RATELIMIT_KEY_PREFIX=f"liveblog-test-{uuid.uuid4().hex}",
    LOGIN_DEVICE_RATE_LIMIT="5 per 10 minutes",
)
def test_device_cookies_with_the_counts_in_redis(app):
    # A name of its own: the limiter keeps the first key prefix it is given in a process.
    name = f"editor-{uuid.uuid4().hex[:12]}"
    with app.app_context():
        services.create_editor(name, PASSWORD)
    known = device_cookied(app, name)
    assert attack(app, name, 25, prefix="192.0.2") == [401] * 20 + [429] * 5
    assert sign_in(app.test_client(), name, PASSWORD, "198.51.100.70").status_code == 429
    assert sign_in(known, name, PASSWORD, "198.51.100.71").status_code == 302
    sign_out(known)
    guesses = [sign_in(known, name, "a guess", "198.51.100.72").status_code for _ in range(7)]
    assert guesses == [401] * 5 + [429] * 2
    assert sign_in(known, name, PASSWORD, "198.51.100.73").status_code == 429
    # The counts are in Redis, where every server process sees them.
    assert redis.Redis.from_url(REDIS).keys(f"*login-account:{name}*")


# --- a fresh session at sign-in and sign-out ---------------------------------------------


def test_a_csrf_token_from_before_sign_in_is_refused_after_it(client, auth):
    before = csrf_token(client, "/editor/login")
    assert auth.login().status_code == 302
    stale = client.post("/editor/articles", data={"title": "Planted", "csrf_token": before})
    assert stale.status_code == 400
    fresh = csrf_token(client, "/editor/")
    assert fresh != before
    made = client.post("/editor/articles", data={"title": "Mine", "csrf_token": fresh})
    assert made.status_code == 302


def test_a_csrf_token_from_before_sign_out_is_refused_after_it(client, auth):
    auth.login()
    before = csrf_token(client, "/editor/")
    assert client.post("/editor/logout", data={"csrf_token": before}).status_code == 302
    stale = client.post(
        "/editor/login", data={"username": "alice", "password": PASSWORD, "csrf_token": before}
    )
    assert stale.status_code == 400
    assert auth.login().status_code == 302  # and signing in again works
    assert client.get("/editor/").status_code == 200


def test_sign_in_drops_whatever_the_session_held_before(client, auth):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    auth.login()
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"].endswith(":0")


# --- previews ----------------------------------------------------------------------------


@pytest.mark.config(**LIMITED, PREVIEW_RATE_LIMIT="2 per minute")
def test_previews_are_limited_per_editor(app, client, auth, story):
    auth.login()
    token = csrf_token(client, COMPOSE)

    def preview(who: FlaskClient, csrf: str):
        headers = {"X-CSRFToken": csrf, "Accept": "application/json"}
        return who.post("/editor/preview", data={"body": "**hi**"}, headers=headers)

    assert [preview(client, token).status_code for _ in range(2)] == [200, 200]
    refused = preview(client, token)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert refused.get_json() == {
        "error": "Too many previews in a short time; the preview resumes in a moment."
    }
    with app.app_context():
        services.create_editor("bob", PASSWORD)
    bob = app.test_client()
    assert sign_in(bob, "bob", PASSWORD).status_code == 302  # the same address
    assert preview(bob, csrf_token(bob, COMPOSE)).status_code == 200
