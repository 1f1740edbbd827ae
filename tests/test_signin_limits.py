"""The three sign-in limits `signin.limited` puts on a view: per address and per account for
browsers the account was never used on, per device cookie for those it was.

The sign-in view is decorated once, at import; here the decorator is applied afresh to a
stand-in view (wrong password: 401), mounted under the sign-in path so that the device
cookie, scoped to that path, is sent to it.
"""

from __future__ import annotations

import functools
import uuid

import pytest
from flask import request
from flask_limiter import RateLimitExceeded

from liveblog import signin
from liveblog.extensions import csrf, limiter
from tests.conftest import PASSWORD, csrf_token

pytestmark = pytest.mark.config(
    RATELIMIT_ENABLED=True,
    LOGIN_RATE_LIMIT="4 per minute",
    LOGIN_ACCOUNT_RATE_LIMIT="3 per minute",
    LOGIN_DEVICE_RATE_LIMIT="2 per minute",
)
PROBE = "/editor/login/probe"


@pytest.fixture(autouse=True)
def fresh_counts(app):
    """Flask-Limiter's in-memory counts outlive an app: each test starts from none."""
    with app.app_context():
        limiter.reset()


def guess() -> tuple[str, int]:
    right = request.form.get("password") == PASSWORD
    return ("welcome", 200) if right else ("wrong password", 401)


@pytest.fixture
def probe(app):
    # Flask-Limiter keeps a view's limits by its name, for the life of the process: each test
    # decorates a view of a name of its own.
    view = functools.partial(guess)
    view.__module__, view.__name__ = __name__, f"guess_{uuid.uuid4().hex}"
    view.__qualname__ = view.__name__
    csrf.exempt(view)  # the limits, not the form, are under test
    # As the editor blueprint does: a limit that built its own answer gets it sent.
    app.register_error_handler(RateLimitExceeded, lambda error: error.response)
    app.add_url_rule(PROBE, "probe", signin.limited(view), methods=["GET", "POST"])
    return app


def attempt(client, username="alice", password="guess", address="192.0.2.1"):
    return client.post(
        PROBE,
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def known_browser(app, client) -> None:
    """Sign in for real once (which sets the device cookie), then sign out."""
    token = csrf_token(client, "/editor/login")
    client.post(
        "/editor/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "198.51.100.9"},
    )
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})


def test_failures_from_one_address_are_limited(probe, editor):
    client = probe.test_client()
    codes = [attempt(client, f"user{n}").status_code for n in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    refused = attempt(client, "alice", PASSWORD)
    assert refused.status_code == 429, "once spent, every attempt it covers is refused"
    assert signin.BUSY_ADDRESS in refused.get_data(as_text=True)
    assert attempt(client, address="192.0.2.2").status_code == 401  # another address


def test_only_failed_posts_count(probe, editor):
    client = probe.test_client()
    for _ in range(5):
        assert attempt(client, password=PASSWORD).status_code == 200
        assert client.get(PROBE).status_code == 401  # not a POST: never counted
    assert attempt(client).status_code == 401


def test_failures_at_one_account_are_limited_from_any_address(probe, editor):
    client = probe.test_client()
    assert attempt(client, "alice", address="192.0.2.1").status_code == 401
    assert attempt(client, "Alice ", address="192.0.2.2").status_code == 401
    assert attempt(client, "alice", address="192.0.2.3").status_code == 401
    refused = attempt(client, "ALICE", address="192.0.2.4")
    assert refused.status_code == 429
    assert signin.ATTACKED in refused.get_data(as_text=True)
    assert attempt(client, "bob", address="192.0.2.5").status_code == 401


def test_a_known_browser_is_exempt_from_the_others_and_limited_on_its_own(probe, editor):
    attacker = probe.test_client()
    for n in range(4):  # the account's limit spent by others
        attempt(attacker, "alice", address=f"192.0.2.{n + 1}")
    client = probe.test_client()
    known_browser(probe, client)
    assert signin.trusted is not None
    assert attempt(client, password=PASSWORD, address="192.0.2.1").status_code == 200
    assert attempt(client, address="192.0.2.1").status_code == 401
    assert attempt(client, address="192.0.2.1").status_code == 401
    refused = attempt(client, password=PASSWORD, address="192.0.2.1")
    assert refused.status_code == 429
    assert signin.BUSY_DEVICE in refused.get_data(as_text=True)
    # Its cookie names alice: at another account it is a browser like any other.
    assert attempt(client, "bob", address="192.0.2.50").status_code == 401


def test_the_refusal_is_the_sign_in_form_saying_why(probe, editor):
    client = probe.test_client()
    for n in range(4):
        attempt(client, f"user{n}")
    refused = attempt(client, "user9")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert '<form method="post"' in page and 'name="username"' in page
    assert signin.BUSY_ADDRESS in page


def test_a_known_browser_behind_a_busy_address_still_signs_in(probe, editor):
    crowd = probe.test_client()
    for n in range(5):  # the address's limit spent on other accounts
        attempt(crowd, f"user{n}", address="192.0.2.1")
    assert attempt(crowd, "user9", address="192.0.2.1").status_code == 429
    client = probe.test_client()
    known_browser(probe, client)
    assert attempt(client, password=PASSWORD, address="192.0.2.1").status_code == 200


def test_each_known_browser_has_its_own_count(probe, editor):
    first, second = probe.test_client(), probe.test_client()
    known_browser(probe, first)
    known_browser(probe, second)
    for client in (first, second):  # one address: a newsroom behind one router
        assert attempt(client, address="192.0.2.1").status_code == 401
        assert attempt(client, address="192.0.2.1").status_code == 401
    assert attempt(first, address="192.0.2.1").status_code == 429


def test_a_known_browser_stays_known_when_the_secret_key_is_rotated(probe, editor):
    client = probe.test_client()
    known_browser(probe, client)
    probe.config["SECRET_KEY_FALLBACKS"] = [probe.secret_key]
    probe.secret_key = probe.config["SECRET_KEY"] = "a new secret"
    attacker = probe.test_client()
    for n in range(4):  # the account's limit spent by others
        attempt(attacker, "alice", address=f"192.0.2.{n + 1}")
    assert attempt(client, password=PASSWORD, address="192.0.2.60").status_code == 200
