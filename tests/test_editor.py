"""Editor pages: sign-in, CSRF on every form, and posting an update from the compose form."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token

COMPOSE = "/editor/articles/election-night"


def story_seq(client) -> int:
    return client.get("/api/articles/election-night").get_json()["seq"]


def test_editor_pages_redirect_to_login(client, story):
    for url in ("/editor/", COMPOSE):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/editor/login")


def test_post_without_login_is_refused_and_writes_nothing(client, story):
    token = csrf_token(client, "/editor/login")
    response = client.post(f"{COMPOSE}/updates", data={"body": "x", "csrf_token": token})
    assert response.status_code == 401
    assert story_seq(client) == 0


def test_login_and_logout(client, auth):
    response = auth.login()
    assert response.status_code == 302 and response.headers["Location"] == "/editor/"
    assert b"Newsroom" in client.get("/editor/").data
    token = csrf_token(client, "/editor/")
    assert client.post("/editor/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/editor/").status_code == 302


def test_wrong_password_is_refused(client, auth):
    response = auth.login(password="not the password")
    assert response.status_code == 401
    assert b"do not match" in response.data
    assert client.get("/editor/").status_code == 302


def test_login_only_redirects_to_local_pages(client, auth):
    token = csrf_token(client, "/editor/login")
    response = client.post(
        "/editor/login?next=https://evil.example/",
        data={"username": "alice", "password": "correct horse battery", "csrf_token": token},
    )
    assert response.headers["Location"] == "/editor/"


def test_login_without_csrf_token_is_refused(client, editor):
    response = client.post(
        "/editor/login", data={"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 400
    assert b"security token" in response.data
    assert client.get("/editor/").status_code == 302


def test_compose_form_posts_an_update(client, auth, story):
    auth.login()
    page = client.get(COMPOSE)
    assert page.status_code == 200
    token = csrf_token(client, COMPOSE)
    response = client.post(
        f"{COMPOSE}/updates",
        data={
            "headline": "Turnout",
            "body": "Turnout is **high**",
            "key_event": "y",
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert b"Update published." in response.data
    assert b"<strong>high</strong>" in response.data
    update = client.get("/api/articles/election-night/updates").get_json()["updates"][0]
    assert (update["headline"], update["key_event"], update["author"]) == ("Turnout", True, "alice")


def test_the_same_form_sent_twice_publishes_once(client, auth, story):
    auth.login()
    page = client.get(COMPOSE).get_data(as_text=True)
    key = page.split('name="idempotency_key" type="hidden" value="')[1].split('"')[0]
    token = csrf_token(client, COMPOSE)
    form = {"body": "Only once", "idempotency_key": key, "csrf_token": token}
    client.post(f"{COMPOSE}/updates", data=form)
    client.post(f"{COMPOSE}/updates", data=form)
    assert story_seq(client) == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"body": ""}, b"This field is required."),
        ({"body": "   "}, b"This field is required."),
        ({"body": "x" * 20_001}, b"Field cannot be longer than 20000 characters."),
        ({"body": "ok", "headline": "h" * 201}, b"Field cannot be longer than 200 characters."),
    ],
)
def test_bad_compose_input_shows_the_form_again(client, auth, story, form, message):
    auth.login()
    token = csrf_token(client, COMPOSE)
    response = client.post(f"{COMPOSE}/updates", data={**form, "csrf_token": token})
    assert response.status_code == 422
    assert message in response.data
    assert story_seq(client) == 0


def test_compose_post_without_csrf_writes_nothing(client, auth, story):
    auth.login()
    response = client.post(f"{COMPOSE}/updates", data={"body": "sneaky"})
    assert response.status_code == 400
    assert story_seq(client) == 0


def test_compose_for_an_unknown_story_is_404(client, auth):
    auth.login()
    assert client.get("/editor/articles/nope").status_code == 404


def test_start_a_story_and_end_it(client, auth):
    auth.login()
    token = csrf_token(client, "/editor/")
    response = client.post("/editor/articles", data={"title": "Budget day", "csrf_token": token})
    assert (
        response.status_code == 302
        and response.headers["Location"] == "/editor/articles/budget-day"
    )
    token = csrf_token(client, "/editor/articles/budget-day")
    client.post("/editor/articles/budget-day/status", data={"status": "ended", "csrf_token": token})
    assert client.get("/api/articles/budget-day").get_json()["status"] == "ended"
    bad = client.post(
        "/editor/articles/budget-day/status", data={"status": "x", "csrf_token": token}
    )
    assert bad.status_code == 422


def test_start_a_story_without_title_shows_the_form_again(client, auth):
    auth.login()
    token = csrf_token(client, "/editor/")
    response = client.post("/editor/articles", data={"title": "", "csrf_token": token})
    assert response.status_code == 422
    assert client.get("/api/articles").get_json()["articles"] == []


@pytest.mark.config(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2 per minute")
def test_sign_in_attempts_are_rate_limited(client, auth):
    statuses = [auth.login(password="guess").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_compose_page_follows_without_counting_as_a_reader(client, auth, story):
    auth.login()
    assert b'data-count="false"' in client.get(COMPOSE).data
    assert b'data-count="true"' in client.get("/articles/election-night").data


@pytest.mark.parametrize(
    "target",
    ["/\t/evil.example", "/\\evil.example", "//evil.example", "https://evil.example/",
     "/%0a/evil.example".replace("%0a", "\n"), "javascript:alert(1)"],
)  # fmt: skip
def test_login_never_redirects_off_site(client, editor, target):
    from urllib.parse import quote

    token = csrf_token(client, "/editor/login")
    response = client.post(
        f"/editor/login?next={quote(target)}",
        data={"username": "alice", "password": "correct horse battery", "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/editor/"


def test_login_keeps_a_local_next_page(client, editor, story):
    token = csrf_token(client, "/editor/login")
    response = client.post(
        "/editor/login?next=/editor/articles/election-night",
        data={"username": "alice", "password": "correct horse battery", "csrf_token": token},
    )
    assert response.headers["Location"] == "/editor/articles/election-night"
