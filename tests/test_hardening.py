"""The hostile review's findings 3 and 6: bounded reads, XML-safe text, UTF-8 queries,
security headers everywhere, and refusals that do not echo a flood back."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import csrf_token

API = "/api/articles/election-night"


# --- finding 3: the changes API is bounded by bytes as well as by count -----------------


@pytest.mark.both_databases
@pytest.mark.config(MAX_CHANGES_BYTES=100_000)
def test_changes_are_paged_by_size_and_more_stays_honest(client, bearer, story):
    body = "Long report. " * 1500  # about 20,000 characters, rendered twice that
    for n in range(12):
        response = client.post(f"{API}/updates", json={"body": f"{n} {body}"}, headers=bearer)
        assert response.status_code == 201

    seen, since, pages = [], 0, 0
    while True:
        response = client.get(f"{API}/changes?since={since}")
        page = response.get_json()
        pages += 1
        assert len(response.data) < 100_000 + 1_000  # the limit, plus the envelope
        assert page["changes"], page  # never an empty page while there is more
        seen += [change["seq"] for change in page["changes"]]
        since = page["changes"][-1]["seq"]
        assert page["more"] is (since < 12)
        if not page["more"]:
            break
    assert seen == list(range(1, 13))
    assert pages > 2


@pytest.mark.config(MAX_CHANGES_BYTES=10)
def test_one_change_larger_than_the_limit_still_comes(client, bearer, story):
    client.post(f"{API}/updates", json={"body": "first"}, headers=bearer)
    client.post(f"{API}/updates", json={"body": "second"}, headers=bearer)
    page = client.get(f"{API}/changes?since=0").get_json()
    assert ([c["seq"] for c in page["changes"]], page["more"]) == ([1], True)
    page = client.get(f"{API}/changes?since=1").get_json()
    assert ([c["seq"] for c in page["changes"]], page["more"]) == ([2], False)


@pytest.mark.config(MAX_CATCH_UP=3)
def test_changes_are_still_bounded_by_count(client, bearer, story):
    for n in range(4):
        client.post(f"{API}/updates", json={"body": f"post {n}"}, headers=bearer)
    page = client.get(f"{API}/changes?since=0").get_json()
    assert ([c["seq"] for c in page["changes"]], page["more"]) == ([1, 2, 3], True)
    page = client.get(f"{API}/changes?since=3").get_json()
    assert ([c["seq"] for c in page["changes"]], page["more"]) == ([4], False)
    assert client.get(f"{API}/changes?since=4").get_json() == {
        "seq": 4,
        "changes": [],
        "more": False,
    }


# --- finding 6 ----------------------------------------------------------------------------


@pytest.mark.both_databases
@pytest.mark.parametrize("character", ["\ufffe", "\uffff", "\U0010ffff", "\ufdd0"])
def test_xml_invalid_characters_are_refused(client, bearer, story, character):
    fields = [{"body": f"a{character}b"}, {"body": "ok", "headline": f"h{character}"}]
    for data in fields:
        response = client.post(f"{API}/updates", json=data, headers=bearer)
        assert response.status_code == 422
        assert "noncharacters" in response.get_json()["error"]
    retitled = client.patch(API, json={"title": f"t{character}"}, headers=bearer)
    assert retitled.status_code == 422
    assert client.get(API).get_json()["seq"] == 0


def test_the_feed_stays_xml_with_unusual_but_valid_text(client, bearer, story):
    text = "emoji 😀, accents é, replacement \ufffd, tab\tand newline\n"
    assert client.post(f"{API}/updates", json={"body": text}, headers=bearer).status_code == 201
    feed = client.get("/articles/election-night/feed.atom")
    ET.fromstring(feed.data)  # raises if the feed is not well-formed XML


@pytest.mark.parametrize("path", [f"{API}/changes", f"{API}/updates"], ids=["changes", "updates"])
@pytest.mark.parametrize("name", ["since", "before", "limit"])
def test_a_raw_byte_that_is_not_utf8_in_the_query_is_400(client, story, path, name):
    # A WSGI server hands the raw query to the application as latin-1 text.
    response = client.get(path, environ_overrides={"QUERY_STRING": f"{name}=\xff"})
    assert response.status_code == 400
    assert "UTF-8" in response.get_json()["error"]


HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


@pytest.mark.parametrize(
    "url",
    [
        "/socket.io/?EIO=4&transport=polling",  # Engine.IO's handshake
        "/socket.io/?EIO=3&transport=polling",  # Engine.IO's own refusal
        "/socket.io/?EIO=4&transport=polling&sid=unknown",
        "/no-such-page",
        "/api/no-such-thing",
    ],
)
def test_security_headers_on_every_response(client, url):
    response = client.get(url)
    for header in HEADERS:
        assert header in response.headers, (url, response.status_code, header)
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.config(SESSION_COOKIE_SECURE=True)
def test_secure_cookies_and_hsts_behind_tls(client, auth):
    response = auth.login()
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    socket_io = client.get("/socket.io/?EIO=4&transport=polling")
    assert "Strict-Transport-Security" in socket_io.headers


def test_session_cookie_secure_is_read_from_the_environment(monkeypatch, tmp_path):
    from liveblog import create_app

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_a_long_slug_is_not_echoed_back(client, socket_client):
    slug = "x" * 10_000
    for response in (client.get(f"/api/articles/{slug}"), client.get(f"/articles/{slug}")):
        assert response.status_code == 404
        assert len(response.data) < 5_000
    ack = socket_client.emit("subscribe", {"article": slug}, callback=True)
    assert ack["ok"] is False and len(json.dumps(ack)) < 300


def test_a_long_field_is_refused_without_quoting_it(client, bearer, story):
    response = client.post(f"{API}/updates", json={"body": "x" * 30_000}, headers=bearer)
    assert response.status_code in (413, 422)
    assert len(response.data) < 1_000


def test_refused_form_posts_keep_their_headers(client, editor):
    token = csrf_token(client, "/editor/login")
    response = client.post("/editor/login", data={"username": "a", "password": "b"})
    assert response.status_code == 400 and token
    for header in HEADERS:
        assert header in response.headers
