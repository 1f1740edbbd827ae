"""Signing in and out, and API tokens: what ends must stay ended (hostile review, finding 4;
sign-in limits and timing, finding 6)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from liveblog import editor as editor_views
from liveblog import models, tokens
from liveblog.extensions import db
from liveblog.models import ApiToken, Editor, utcnow
from tests.conftest import PASSWORD, csrf_token, sign_in

COMPOSE = "/editor/articles/election-night"


def post_update(client, body: str):
    token = csrf_token(client, COMPOSE)
    return client.post(f"{COMPOSE}/updates", data={"body": body, "csrf_token": token})


# --- sessions -------------------------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_signs_in(app, client, auth, story):
    auth.login()
    copied = client.get_cookie("session").value
    assert post_update(client, "while signed in").status_code == 302

    logout_token = csrf_token(client, "/editor/")
    assert client.post("/editor/logout", data={"csrf_token": logout_token}).status_code == 302

    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/editor/").status_code == 302  # to the sign-in page
    token = csrf_token(thief, "/editor/login")  # the replayed session's CSRF token still reads
    refused = thief.post(f"{COMPOSE}/updates", data={"body": "replayed", "csrf_token": token})
    assert refused.status_code == 401
    assert client.get("/api/articles/election-night").get_json()["seq"] == 1


def test_signing_in_again_after_logout_works(client, auth, story):
    auth.login()
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    assert auth.login().status_code == 302
    assert client.get("/editor/").status_code == 200


def test_sessions_from_before_versions_are_not_signed_in(app, client, editor):
    with client.session_transaction() as session:
        session["_user_id"] = str(editor.id)  # the old form of the id, without a version
        session["_fresh"] = True
    assert client.get("/editor/").status_code == 302


# --- sign-in limits and timing ----------------------------------------------------------


@pytest.mark.config(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
def test_successful_sign_ins_are_not_counted(app, editor):
    for _ in range(6):  # a newsroom signing in from one address
        client = app.test_client()
        assert sign_in(client, "alice", PASSWORD).status_code == 302


@pytest.mark.config(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
def test_failures_are_limited_per_address(app, editor):
    client = app.test_client()
    for name in ("x", "y", "z"):
        assert sign_in(client, name, "wrong password").status_code == 401
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    # Another address is not held up by this one's failures.
    assert sign_in(app.test_client(), "alice", PASSWORD, "198.51.100.9").status_code == 302


@pytest.mark.config(
    RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="3/hour"
)
def test_failures_are_limited_per_account(app, editor):
    for n in range(3):  # guesses at one account from many addresses
        client = app.test_client()
        assert sign_in(client, "alice", "wrong", f"198.51.100.{n}").status_code == 401
    assert sign_in(app.test_client(), "Alice ", "wrong", "198.51.100.50").status_code == 429
    assert sign_in(app.test_client(), "bob", "wrong", "198.51.100.51").status_code == 401


def test_unknown_names_cost_a_password_hash_too(app, client, editor, monkeypatch):
    checked: list[str] = []
    real = models.check_password_hash

    def counting(pwhash: str, password: str) -> bool:
        checked.append(password)
        return real(pwhash, password)

    monkeypatch.setattr(models, "check_password_hash", counting)
    monkeypatch.setattr(editor_views, "check_password_hash", counting)
    assert sign_in(client, "alice", "wrong password").status_code == 401
    assert sign_in(client, "nobody-by-this-name", "wrong password").status_code == 401
    assert checked == ["wrong password", "wrong password"]


# --- tokens -----------------------------------------------------------------------------


def test_tokens_listed_without_secrets_and_revoked_at_once(app, client, runner, editor, story):
    made = [runner.invoke(args=["editor", "token", "alice"]).stdout.strip() for _ in range(2)]
    bearer = {"Authorization": f"Bearer {made[0]}"}
    url = "/api/articles/election-night/updates"
    assert client.post(url, json={"body": "with the token"}, headers=bearer).status_code == 201

    listing = runner.invoke(args=["editor", "tokens", "alice"])
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.strip().splitlines()
    assert lines[0] == "id\tcreated\tlast used\texpires"
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert rows[0][2].endswith("Z") and rows[1][2] == "never"  # only the first was used
    assert all(secret not in listing.stdout for secret in made)

    revoked = runner.invoke(args=["editor", "revoke", "1"])
    assert revoked.exit_code == 0, revoked.output
    assert client.post(url, json={"body": "after revoking"}, headers=bearer).status_code == 401
    still = {"Authorization": f"Bearer {made[1]}"}
    assert client.post(url, json={"body": "the other one"}, headers=still).status_code == 201
    again = runner.invoke(args=["editor", "revoke", "1"])
    assert again.exit_code != 0 and "no token has the id 1" in again.output


def test_an_expired_token_is_refused(app, client, runner, editor, story):
    secret = runner.invoke(args=["editor", "token", "alice", "--expires-in-days", "1"]).stdout
    bearer = {"Authorization": f"Bearer {secret.strip()}"}
    url = "/api/articles/election-night/updates"
    assert client.post(url, json={"body": "in time"}, headers=bearer).status_code == 201
    with app.app_context():
        db.session.execute(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.post(url, json={"body": "too late"}, headers=bearer).status_code == 401


def test_editors_manage_their_own_tokens_on_the_web(app, client, auth, story):
    with app.app_context():
        other = tokens.issue(db.session.scalar(sa.select(Editor).where(Editor.username == "alice")))
        bob = Editor(username="bob")
        bob.set_password("bob's password")
        db.session.add(bob)
        db.session.commit()
        bobs_token = tokens.issue(bob)
    assert client.get("/editor/tokens/").status_code == 302  # signed out: to sign in
    auth.login()
    page = client.get("/editor/tokens/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'id="token-1"' in page.text and 'id="token-2"' not in page.text  # bob's is his
    assert other not in page.text

    made = client.post(
        "/editor/tokens/",
        data={"csrf_token": csrf_token(client, "/editor/tokens/"), "expires_in_days": "30"},
    )
    assert made.status_code == 201
    secret = re.search(r'<code id="new-token">([^<]+)</code>', made.text).group(1)
    bearer = {"Authorization": f"Bearer {secret}"}
    url = "/api/articles/election-night/updates"
    assert client.post(url, json={"body": "new token"}, headers=bearer).status_code == 201
    assert secret not in client.get("/editor/tokens/").text  # shown once only

    csrf = csrf_token(client, "/editor/tokens/")
    assert client.post("/editor/tokens/2/revoke", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/editor/tokens/3/revoke", data={}).status_code == 400  # no CSRF token
    assert client.post("/editor/tokens/3/revoke", data={"csrf_token": csrf}).status_code == 200
    assert client.post(url, json={"body": "revoked"}, headers=bearer).status_code == 401
    bob_bearer = {"Authorization": f"Bearer {bobs_token}"}
    assert client.post(url, json={"body": "bob's"}, headers=bob_bearer).status_code == 201
