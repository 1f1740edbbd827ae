"""A disabled editor's scheduled updates are held, never published by the scheduler under the
newsroom's name: another editor publishes or deletes them, and the admin sees them waiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from liveblog import scheduler, services, tokens
from liveblog.extensions import db
from liveblog.models import Article, Change, Editor, Update, iso
from tests.conftest import sign_in_admin

COMPOSE = "/editor/articles/election-night"
API = "/api/articles/election-night"
# Noon a month ahead: the service checks schedules against the real clock; the scheduler
# runs on a clock of its own, moved past that time.
DUE = (datetime.now(UTC) + timedelta(days=30)).replace(hour=12, minute=0, second=0, microsecond=0)
LATER = DUE + timedelta(hours=1)


def schedule(app, editor_id: int, body: str, at: datetime) -> int:
    with app.app_context():
        story = Article.by_slug("election-night")
        return services.post_update(
            story, db.session.get(Editor, editor_id), body, publish_at=at
        ).id


def row(app, update_id: int) -> tuple[str, datetime | None]:
    with app.app_context():
        update = db.session.get(Update, update_id)
        return update.status, update.publish_at


def change_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Change))


def run_scheduler(app, now: datetime) -> list[int]:
    runner = scheduler.get(app)
    runner.clock = lambda: now
    return runner.run_once()


@pytest.fixture
def root(app, client, editor, story) -> str:
    """The admin root, signed in on `client`; a CSRF token of the session."""
    return sign_in_admin(app, client)


@pytest.mark.both_databases
def test_disabling_holds_scheduled_updates_for_another_editor(app, client, editor, root):
    first = schedule(app, editor.id, "Exit poll at noon", DUE)
    second = schedule(app, editor.id, "Turnout at one", LATER)
    disable = client.post(f"/editor/editors/{editor.id}/disable", data={"csrf_token": root})
    assert disable.status_code == 302
    assert row(app, first) == ("draft", DUE), "a draft that keeps the time it was meant for"
    assert row(app, second) == ("draft", LATER)
    notice = client.get("/editor/editors").get_data(as_text=True)
    assert "2 scheduled updates are held as drafts" in notice

    # The scheduler's time comes and goes: nothing is published.
    assert run_scheduler(app, LATER + timedelta(minutes=5)) == []
    assert change_count(app) == 0
    assert client.get(f"{API}/updates").get_json()["updates"] == []

    # The admin sees what waits, with the way to it.
    editors = client.get("/editor/editors").get_data(as_text=True)
    held = re.search(rf'<tr id="editor-{editor.id}">.*?</tr>', editors, re.S).group(0)
    assert "2 held in" in held and f'href="{COMPOSE}#unpublished"' in held
    page = client.get(COMPOSE).get_data(as_text=True)
    assert page.count("Held: author disabled") == 2
    assert "held when alice's account was disabled" in page
    assert f'datetime="{iso(DUE)}"' in page, "the intended time is shown"

    # Another editor publishes one and deletes the other, as with any draft.
    published = client.post(f"{COMPOSE}/updates/{first}/publish", data={"csrf_token": root})
    assert published.status_code == 302
    (update,) = client.get(f"{API}/updates").get_json()["updates"]
    assert (update["id"], update["status"], update["author"]) == (first, "published", "alice")
    deleted = client.post(f"{COMPOSE}/updates/{second}/delete", data={"csrf_token": root})
    assert deleted.status_code == 302
    assert change_count(app) == 1
    assert "held in" not in client.get("/editor/editors").get_data(as_text=True)


@pytest.mark.both_databases
def test_enabling_again_does_not_reschedule(app, client, editor, root):
    update_id = schedule(app, editor.id, "Exit poll at noon", DUE)
    client.post(f"/editor/editors/{editor.id}/disable", data={"csrf_token": root})
    enable = client.post(f"/editor/editors/{editor.id}/enable", data={"csrf_token": root})
    assert enable.status_code == 302
    assert run_scheduler(app, DUE + timedelta(minutes=1)) == []
    assert row(app, update_id) == ("draft", DUE)
    assert "Held: author disabled" in client.get(COMPOSE).get_data(as_text=True)
    assert "1 held in" in client.get("/editor/editors").get_data(as_text=True)


@pytest.mark.both_databases
def test_the_scheduler_holds_what_a_disabled_author_left_scheduled(app, editor, story):
    """Rows scheduled before holding existed, or by a post that raced the disabling, are
    still scheduled when their author is already disabled: the scheduler holds them."""
    update_id = schedule(app, editor.id, "Exit poll at noon", DUE)
    with app.app_context():
        db.session.execute(sa.update(Editor).where(Editor.id == editor.id).values(disabled_at=DUE))
        db.session.commit()
    assert run_scheduler(app, DUE + timedelta(minutes=1)) == []
    assert row(app, update_id) == ("draft", DUE)
    assert change_count(app) == 0
    assert run_scheduler(app, DUE + timedelta(hours=2)) == [], "and keeps holding it"


@pytest.mark.both_databases
def test_the_claim_checks_the_author_itself(app, editor, story):
    """Disabled between the scheduler's look and its claim: the claim publishes nothing."""
    update_id = schedule(app, editor.id, "Exit poll at noon", DUE)
    with app.app_context():
        db.session.execute(sa.update(Editor).where(Editor.id == editor.id).values(disabled_at=DUE))
        db.session.commit()
        assert services._claim(story.id, update_id, DUE + timedelta(minutes=1)) is False
    assert row(app, update_id) == ("scheduled", DUE)
    assert change_count(app) == 0


def test_a_held_update_is_not_rescheduled_for_its_disabled_author(app, client, editor, root):
    update_id = schedule(app, editor.id, "Exit poll at noon", DUE)
    client.post(f"/editor/editors/{editor.id}/disable", data={"csrf_token": root})
    with app.app_context():
        root_token = tokens.issue(db.session.scalar(sa.select(Editor).filter_by(username="root")))
    answer = client.patch(
        f"{API}/updates/{update_id}",
        json={"publish_at": LATER.isoformat()},
        headers={"Authorization": f"Bearer {root_token}"},
    )
    assert answer.status_code == 409
    assert "disabled" in answer.get_json()["error"]
    assert row(app, update_id) == ("draft", DUE)
