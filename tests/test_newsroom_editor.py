"""The newsroom from the web: corrections, deletions, pins, drafts, schedules, images,
previews, ended stories, and admins who create and disable editors."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from liveblog.extensions import db, socketio
from liveblog.models import Editor
from tests.changes_check import verify_action
from tests.conftest import PASSWORD, csrf_token, sign_in_admin
from tests.images import image_bytes

COMPOSE = "/editor/articles/election-night"
API = "/api/articles/election-night"


@pytest.fixture
def signed_in(client, auth, story) -> str:
    """alice signed in; the compose page's CSRF token."""
    auth.login()
    return csrf_token(client, COMPOSE)


def story_seq(client) -> int:
    return client.get(API).get_json()["seq"]


def api_updates(client) -> list[dict]:
    return client.get(f"{API}/updates").get_json()["updates"]


def compose_post(client, token: str, **fields):
    return client.post(f"{COMPOSE}/updates", data={"csrf_token": token, **fields})


@pytest.mark.both_databases
def test_each_update_carries_its_own_forms(client, signed_in):
    compose_post(client, signed_in, body="Polls *open*", headline="Now")
    update_id = api_updates(client)[0]["id"]
    page = client.get(COMPOSE).get_data(as_text=True)
    element = re.search(rf'<article [^>]*id="update-{update_id}".*?</article>', page, re.S)
    assert element, "the update is on the compose page"
    html = element.group(0)
    assert f'action="{COMPOSE}/updates/{update_id}"' in html
    assert re.search(r'<textarea [^>]*name="body"[^>]*>Polls \*open\*</textarea>', html)
    assert f'action="{COMPOSE}/updates/{update_id}/delete"' in html
    assert "data-confirm=" in html and ">Pin<" in html


@pytest.mark.both_databases
def test_correct_pin_and_delete_from_the_web(client, signed_in):
    compose_post(client, signed_in, body="Turnout 60%", headline="Turnout")
    update_id = api_updates(client)[0]["id"]
    edit = client.post(
        f"{COMPOSE}/updates/{update_id}",
        data={"csrf_token": signed_in, "body": "Turnout 61%", "headline": "Turnout"},
    )
    assert edit.status_code == 302
    (update,) = api_updates(client)
    assert update["body"] == "Turnout 61%" and update["edited_at"]
    assert update["key_event"] is False
    for name, value, expected in (("pinned", "on", True), ("key_event", "on", True)):
        flag = client.post(
            f"{COMPOSE}/updates/{update_id}/flag",
            data={"csrf_token": signed_in, "name": name, "value": value},
        )
        assert flag.status_code == 302
        assert api_updates(client)[0][name] is expected
    assert "Unpin" in client.get(COMPOSE).get_data(as_text=True)
    revisions = client.get(f"{COMPOSE}/updates/{update_id}/revisions").get_data(as_text=True)
    assert "Turnout 60%" in revisions and "alice" in revisions
    seq = story_seq(client)
    delete = client.post(f"{COMPOSE}/updates/{update_id}/delete", data={"csrf_token": signed_in})
    assert delete.status_code == 302
    assert api_updates(client) == [] and story_seq(client) == seq + 1


@pytest.mark.both_databases
def test_a_draft_then_publish_now(client, signed_in):
    answer = compose_post(client, signed_in, body="Hold this", draft="y")
    assert answer.status_code == 302
    assert story_seq(client) == 0 and api_updates(client) == []
    page = client.get(COMPOSE).get_data(as_text=True)
    assert "Hold this" in page and "Publish now" in page and "Draft saved" in page
    assert "Hold this" not in client.get("/articles/election-night").get_data(as_text=True)
    update_id = int(re.search(r'action="[^"]*/updates/(\d+)/publish"', page).group(1))
    publish = f"{COMPOSE}/updates/{update_id}/publish"
    assert client.post(publish, data={"csrf_token": signed_in}).status_code == 302
    assert [u["body"] for u in api_updates(client)] == ["Hold this"]
    again = client.post(publish, data={"csrf_token": signed_in})
    assert again.status_code == 409
    assert "already published" in again.get_data(as_text=True)
    assert story_seq(client) == 1


def test_scheduling_from_the_form(client, signed_in):
    when = (datetime.now(UTC) + timedelta(hours=2)).astimezone().isoformat(timespec="minutes")
    assert compose_post(client, signed_in, body="Later on", publish_at=when).status_code == 302
    page = client.get(COMPOSE).get_data(as_text=True)
    assert "Scheduled" in page and "Later on" in page
    past = compose_post(client, signed_in, body="Too late", publish_at="2001-01-01T10:00+00:00")
    assert past.status_code == 422
    assert "in the past" in past.get_data(as_text=True)
    assert "Too late" in past.get_data(as_text=True), "the text typed is kept in the form"
    assert story_seq(client) == 0


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("9999-12-31T23:00:00-05:00", "out of range"),
        ((datetime.now(UTC) + timedelta(days=400)).isoformat(), "more than 366 days ahead"),
    ],
)
def test_scheduling_too_far_from_the_form_says_why(client, signed_in, when, message):
    answer = compose_post(client, signed_in, body="Far off", publish_at=when)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in page and "at most 366 days from now" in page
    assert "Far off" in page, "the text typed is kept in the form"
    assert "Far off" not in client.get(COMPOSE).get_data(as_text=True), "nothing saved"


def test_attaching_an_image_from_the_form(app, client, signed_in, tmp_path):
    app.config["MEDIA_FOLDER"] = str(tmp_path / "media")

    def send(**extra):
        fields = {"csrf_token": signed_in, "body": "The scene", **extra}
        boundary, body = encode_multipart(fields)
        content_type = f"multipart/form-data; boundary={boundary}"
        return client.post(f"{COMPOSE}/updates", data=body, content_type=content_type)

    def image(data: bytes, name: str) -> FileStorage:
        return FileStorage(io.BytesIO(data), filename=name)

    no_alt = send(image=image(image_bytes("PNG"), "scene.png"))
    assert no_alt.status_code == 422 and "Describe the image" in no_alt.get_data(as_text=True)
    fake = send(image=image(b"not an image at all", "scene.png"), image_alt="A street")
    assert fake.status_code == 422 and "not a whole JPEG" in fake.get_data(as_text=True)
    assert story_seq(client) == 0 and not (tmp_path / "media").exists()
    good = send(image=image(image_bytes("JPEG"), "scene.jpg"), image_alt="A street")
    assert good.status_code == 302
    (update,) = api_updates(client)
    assert update["image"]["alt"] == "A street" and update["image"]["width"] == 64


def test_preview_renders_with_the_posts_renderer(client, signed_in):
    answer = client.post(
        "/editor/preview",
        data={"body": "**bold** <script>x()</script>"},
        headers={"X-CSRFToken": signed_in},
    )
    assert answer.status_code == 200
    html = answer.get_json()["html"]
    assert "<strong>bold</strong>" in html and "<script>" not in html
    assert client.post("/editor/preview", data={"body": "x"}).status_code == 400


@pytest.mark.both_databases
def test_an_ended_story_says_so_on_the_form(client, signed_in):
    compose_post(client, signed_in, body="Last word")
    update_id = api_updates(client)[0]["id"]
    ended = client.post(f"{COMPOSE}/status", data={"csrf_token": signed_in, "status": "ended"})
    assert ended.status_code == 302
    seq = story_seq(client)
    for answer in (
        compose_post(client, signed_in, body="One more"),
        client.post(f"{COMPOSE}/updates/{update_id}/delete", data={"csrf_token": signed_in}),
        client.post(
            f"{COMPOSE}/updates/{update_id}", data={"csrf_token": signed_in, "body": "Changed"}
        ),
    ):
        assert answer.status_code == 409
        assert "has ended: reopen it" in answer.get_data(as_text=True)
    assert story_seq(client) == seq
    assert 'data-status="ended"' in client.get(COMPOSE).get_data(as_text=True)


def test_writes_need_the_csrf_token(client, signed_in):
    compose_post(client, signed_in, body="x")
    update_id = api_updates(client)[0]["id"]
    for path in ("", "/delete", "/publish", "/flag"):
        answer = client.post(f"{COMPOSE}/updates/{update_id}{path}", data={"body": "y"})
        assert answer.status_code == 400
    assert api_updates(client)[0]["body"] == "x"


# --- editors and admins ---------------------------------------------------------------


@pytest.fixture
def admin(app, client):
    return sign_in_admin(app, client)


def test_only_admins_reach_the_editors_page(client, signed_in):
    assert client.get("/editor/editors").status_code == 403
    answer = client.post(
        "/editor/editors",
        data={"csrf_token": signed_in, "username": "mallory", "password": "long enough pass"},
    )
    assert answer.status_code == 403
    assert client.get(f"{API}").status_code == 200  # nothing else is affected


def test_an_admin_creates_an_editor(app, client, admin):
    answer = client.post(
        "/editor/editors",
        data={"csrf_token": admin, "username": "bob", "password": "bobs long password"},
    )
    assert answer.status_code == 302
    assert "bob" in client.get("/editor/editors").get_data(as_text=True)
    duplicate = client.post(
        "/editor/editors",
        data={"csrf_token": admin, "username": "bob", "password": "another password"},
    )
    assert duplicate.status_code == 409 and "already exists" in duplicate.get_data(as_text=True)
    short = client.post(
        "/editor/editors", data={"csrf_token": admin, "username": "cy", "password": "short"}
    )
    assert short.status_code == 422


@pytest.mark.both_databases
def test_disabling_ends_sessions_tokens_and_sockets_at_once(app, editor, story, token):
    alice_client = app.test_client()
    sign_in = csrf_token(alice_client, "/editor/login")
    alice_client.post(
        "/editor/login", data={"username": "alice", "password": PASSWORD, "csrf_token": sign_in}
    )
    cookie = alice_client.get_cookie("session").value
    assert alice_client.get(COMPOSE).status_code == 200
    sio = socketio.test_client(app, flask_test_client=alice_client)
    assert sio.is_connected()
    bystander = socketio.test_client(app)  # a reader, not signed in

    admin_client = app.test_client()
    page = sign_in_admin(app, admin_client)
    disable = admin_client.post(f"/editor/editors/{editor.id}/disable", data={"csrf_token": page})
    assert disable.status_code == 302

    assert not sio.is_connected(), "the disabled editor's socket is closed"
    assert bystander.is_connected()
    replayed = app.test_client()
    replayed.set_cookie("session", cookie)
    assert replayed.get(COMPOSE).status_code == 302, "the replayed cookie is signed out"
    bearer = {"Authorization": f"Bearer {token}"}
    assert replayed.post(f"{API}/updates", json={"body": "x"}, headers=bearer).status_code == 401
    login = csrf_token(replayed, "/editor/login")
    again = replayed.post(
        "/editor/login", data={"username": "alice", "password": PASSWORD, "csrf_token": login}
    )
    assert again.status_code == 401
    with app.app_context():
        assert db.session.get(Editor, editor.id).disabled_at is not None
    bystander.disconnect()


def test_an_admin_cannot_disable_themselves(app, client, admin):
    with app.app_context():
        root = db.session.scalar(db.select(Editor).where(Editor.username == "root"))
        root_id = root.id
    answer = client.post(f"/editor/editors/{root_id}/disable", data={"csrf_token": admin})
    assert answer.status_code == 409
    assert client.get("/editor/editors").status_code == 200


def test_editor_create_admin_on_the_command_line(app, runner):
    result = runner.invoke(
        args=["editor", "create", "boss", "--admin", "--password-stdin"], input="long password\n"
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        boss = db.session.scalar(db.select(Editor).where(Editor.username == "boss"))
        assert boss.is_admin


@pytest.mark.both_databases
def test_each_form_action_gives_its_declared_changes(app, client, signed_in):
    """The web's actions in verify_action's shape: the CHANGEs rebuild the story exactly."""
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"article": "election-night", "since": 0}, callback=True)["ok"]

    def form(path: str = "", **fields):
        url = f"{COMPOSE}/updates{path}"
        return lambda: client.post(url, data={"csrf_token": signed_in, **fields})

    verify_action(client, sio, form(body="One"), ["created"])
    verify_action(client, sio, form(body="Two"), ["created"])
    verify_action(client, sio, form("/1", body="One, corrected", headline="One"), ["edited"])
    verify_action(client, sio, form("/1/flag", name="pinned", value="on"), ["edited"])
    verify_action(client, sio, form("/2/flag", name="key_event", value="on"), ["edited"])
    verify_action(client, sio, form("/2/flag", name="pinned", value="on"), ["edited", "edited"])
    verify_action(client, sio, form("/1/delete"), ["deleted"])
    verify_action(client, sio, form(body="Three", draft="y"), [])
    verify_action(client, sio, form("/3", body="Three, revised"), [])
    verify_action(client, sio, form("/3/publish"), ["created"])
    verify_action(client, sio, form("/3/publish"), [])  # 409: published already
    ended = lambda: client.post(  # noqa: E731
        f"{COMPOSE}/status", data={"csrf_token": signed_in, "status": "ended"}
    )
    verify_action(client, sio, ended, ["story"])
    verify_action(client, sio, form(body="Refused"), [])
    sio.disconnect()
