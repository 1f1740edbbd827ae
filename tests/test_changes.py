"""Every action on a story gives typed CHANGEs of a declared kind, and they rebuild the story.

In the shape of Zulip's verify_action: take the state a reader had, do the action, apply the
CHANGEs it produced to that old state, and compare with the state fetched afresh.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from liveblog import changes, services
from liveblog.extensions import db, socketio
from liveblog.models import DRAFT, Article, Editor, Update
from tests.changes_check import SLUG, URL, received, verify_action

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def watcher(app, client, story):
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"article": SLUG, "since": 0}, callback=True)["ok"]
    yield sio
    sio.disconnect()


@pytest.mark.both_databases
def test_every_action_gives_declared_changes_that_rebuild_the_story(client, bearer, watcher):
    def post(**fields):
        return lambda: client.post(f"{URL}/updates", json=fields, headers=bearer)

    def patch(update_id, **fields):
        return lambda: client.patch(f"{URL}/updates/{update_id}", json=fields, headers=bearer)

    verify_action(client, watcher, post(body="First", headline="One"), ["created"])
    verify_action(client, watcher, post(body="Second", pinned=True), ["created"])
    first, second = 1, 2
    verify_action(client, watcher, patch(first, body="First, *corrected*"), ["edited"])
    verify_action(client, watcher, patch(first, key_event=True), ["edited"])
    # Pinning the first unpins the second: two changes, each of its own seq.
    got = verify_action(client, watcher, patch(first, pinned=True), ["edited", "edited"])
    assert {change["update"]["id"] for change in got} == {first, second}
    verify_action(client, watcher, patch(first, pinned=False), ["edited"])
    verify_action(client, watcher, patch(first, pinned=True), ["edited"])
    delete = lambda: client.delete(f"{URL}/updates/{second}", headers=bearer)  # noqa: E731
    verify_action(client, watcher, delete, ["deleted"])
    # Drafts and scheduled updates are unseen: saving, editing or scheduling one is no change.
    verify_action(client, watcher, post(body="Draft", draft=True), [])
    later = datetime.now(UTC) + timedelta(days=30)
    verify_action(client, watcher, post(body="Later", publish_at=later.isoformat()), [])
    draft, scheduled = 3, 4
    verify_action(client, watcher, patch(draft, body="Draft, revised", pinned=True), [])
    later += timedelta(days=1)
    verify_action(client, watcher, patch(scheduled, publish_at=later.isoformat()), [])
    # Publishing a pinned draft: its `created`, then the old pin's removal.
    got = verify_action(client, watcher, patch(draft, status="published"), ["created", "edited"])
    assert got[0]["update"]["body"] == "Draft, revised" and got[1]["update"]["id"] == first
    verify_action(client, watcher, patch(scheduled, status="published"), ["created"])

    def edit_story(**fields):
        return lambda: client.patch(URL, json=fields, headers=bearer)

    got = verify_action(client, watcher, edit_story(title="Election night, live"), ["story"])
    assert got[0]["story"]["title"] == "Election night, live"
    got = verify_action(client, watcher, edit_story(status="ended"), ["story"])
    assert got[0]["story"]["status"] == "ended" and got[0]["story"]["ended_at"]
    got = verify_action(client, watcher, edit_story(status="live", body="New *intro*"), ["story"])
    assert got[0]["story"]["ended_at"] is None
    assert got[0]["story"]["html"] == "<p>New <em>intro</em></p>"


def test_a_story_edit_that_changes_nothing_makes_no_change(client, bearer, watcher):
    answer = client.patch(URL, json={"title": "Election night", "status": "live"}, headers=bearer)
    assert answer.status_code == 200
    assert answer.get_json()["seq"] == 0
    assert received(watcher) == []


def test_story_changes_are_replayed_on_catch_up(app, client, bearer, story):
    client.patch(URL, json={"status": "ended"}, headers=bearer)
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"article": SLUG, "since": 0}, callback=True) == {
        "ok": True,
        "seq": 1,
    }
    (change,) = received(sio)
    assert change["type"] == "story" and change["story"]["status"] == "ended"
    assert changes.problems(change) == []


def test_problems_finds_what_is_off():
    good = {"article": "a", "seq": 1, "type": "deleted", "update": {"id": 3}}
    assert changes.problems(good) == []
    assert changes.problems({**good, "type": "exploded"}) == ["undeclared change kind 'exploded'"]
    assert changes.problems({**good, "seq": 0})
    assert changes.problems({**good, "update": {"id": "3"}})
    assert changes.problems({**good, "extra": 1}) == ["undeclared field extra"]
    assert changes.problems({**good, "update": {"id": True}}), "a flag is not an id"


def test_reader_script_handles_exactly_the_declared_kinds():
    script = (ROOT / "static/js/reader.js").read_text()
    table = re.search(r"const HANDLERS = \{(.*?)\n  \};", script, re.S)
    assert table, "reader.js has no HANDLERS table"
    handled = set(re.findall(r"^\s+(\w+): ", table.group(1), re.M))
    assert handled == set(changes.KINDS)


@pytest.mark.both_databases
def test_edits_and_deletions_record_the_editor(app, editor, story):
    with app.app_context():
        article = db.session.get(Article, story.id)
        alice = db.session.get(Editor, editor.id)
        bob = services.create_editor("bob", "another long password")
        update = services.post_update(article, alice, "Typo here")
        services.edit_update(article, update.id, bob, {"body": "No typo here"})
        assert db.session.get(Update, update.id).edited_by.username == "bob"
        services.delete_update(article, update.id, alice)
        assert db.session.get(Update, update.id).deleted_by.username == "alice"


@pytest.mark.both_databases
def test_unpublished_updates_reach_no_reader(app, client, editor, story):
    """One rule (Update.visible) keeps drafts off every page, feed and public API."""
    with app.app_context():
        article = db.session.get(Article, story.id)
        alice = db.session.get(Editor, editor.id)
        shown = services.post_update(article, alice, "Out in the open")
        hidden = Update(
            article=article, author=alice, body="Secret draft", html="<p>Secret draft</p>",
            status=DRAFT,
        )  # fmt: skip
        db.session.add(hidden)
        db.session.commit()
        shown_id, hidden_id = shown.id, hidden.id
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).select_from(Update).where(Update.visible())
            )
            == 1
        )
    for url in (f"/articles/{SLUG}", f"/articles/{SLUG}/feed.atom", f"{URL}/updates"):
        body = client.get(url).get_data(as_text=True)
        assert "Out in the open" in body, url
        assert "Secret draft" not in body, url
    assert client.get(f"/articles/{SLUG}/updates/{shown_id}").status_code == 200
    assert client.get(f"/articles/{SLUG}/updates/{hidden_id}").status_code == 404
    changes_log = client.get(f"{URL}/changes?since=0").get_json()["changes"]
    assert [change["update"]["id"] for change in changes_log] == [shown_id]
