"""The scheduler's claim: a scheduled update is published at its time, never before, never twice.

`services.publish_due` is what every server process runs each round; these call it with the
clock set by hand, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from liveblog import services
from liveblog.extensions import db
from liveblog.models import Article, Change, Editor, Update

pytestmark = pytest.mark.both_databases

# Noon a month ahead: posting checks a schedule against the real clock.
DUE = (datetime.now(UTC) + timedelta(days=30)).replace(hour=12, minute=0, second=0, microsecond=0)
MINUTE = timedelta(minutes=1)


def schedule(app, editor, body: str, at: datetime, **fields) -> int:
    with app.app_context():
        story = Article.by_slug("election-night")
        author = db.session.get(Editor, editor.id)
        return services.post_update(story, author, body, publish_at=at, **fields).id


def publish_due(app, now: datetime, **how) -> list[int]:
    with app.app_context():
        try:
            return services.publish_due(now, **how)
        finally:
            db.session.remove()


def state(app, update_id: int) -> tuple:
    with app.app_context():
        update = db.session.get(Update, update_id)
        return update.status, aware(update.publish_at), aware(update.published_at)


def aware(moment: datetime | None) -> datetime | None:
    return moment and moment.replace(tzinfo=UTC)


def created_changes(app) -> list[tuple[int, int]]:
    """(seq, update id) of each `created` change recorded, in order."""
    with app.app_context():
        rows = db.session.scalars(sa.select(Change).order_by(Change.seq)).all()
        return [(row.seq, row.payload["update"]["id"]) for row in rows if row.type == "created"]


def test_an_update_is_published_at_its_time_and_not_a_moment_before(app, editor, story):
    update_id = schedule(app, editor, "Exit poll", DUE)
    assert publish_due(app, DUE - timedelta(seconds=1)) == []
    assert state(app, update_id)[0] == "scheduled"
    assert publish_due(app, DUE) == [update_id]
    assert state(app, update_id) == ("published", None, DUE)
    assert created_changes(app) == [(1, update_id)]
    with app.app_context():
        assert Article.by_slug("election-night").seq == 1


def test_an_update_is_published_once(app, editor, story):
    update_id = schedule(app, editor, "Exit poll", DUE)
    assert publish_due(app, DUE + MINUTE) == [update_id]
    assert publish_due(app, DUE + MINUTE) == []
    assert publish_due(app, DUE + 2 * MINUTE) == []
    assert created_changes(app) == [(1, update_id)]


def test_the_claim_itself_refuses_what_is_not_due_or_already_published(app, editor, story):
    """Between a process's look and its claim, the update may have been rescheduled or
    published by another process: the claim checks again, in the database."""
    update_id = schedule(app, editor, "Exit poll", DUE)
    with app.app_context():
        assert services._claim(story.id, update_id, DUE - MINUTE) is False
        assert services._claim(story.id, update_id, DUE) is True
        assert services._claim(story.id, update_id, DUE + MINUTE) is False
    assert created_changes(app) == [(1, update_id)]


def test_the_claim_refuses_an_ended_story_a_deleted_update_and_a_held_one(app, editor, story):
    ended = schedule(app, editor, "Ended", DUE)
    deleted = schedule(app, editor, "Deleted", DUE)
    held = schedule(app, editor, "Held", DUE)
    with app.app_context():
        story_row = Article.by_slug("election-night")
        author = db.session.get(Editor, editor.id)
        services.delete_update(story_row, deleted, author)
        # disabled (its scheduled updates held as drafts that keep their time), then enabled
        root = services.create_editor("root", "correct horse battery", admin=True)
        services.disable_editor(author, root)
        services.enable_editor(db.session.get(Editor, editor.id))
        assert services._claim(story.id, held, DUE + MINUTE) is False
        assert services._claim(story.id, deleted, DUE + MINUTE) is False
    with app.app_context():
        services.edit_article(Article.by_slug("election-night"), {"status": "ended"})
        assert services._claim(story.id, ended, DUE + MINUTE) is False
    assert state(app, held)[0] == "draft"
    assert state(app, ended)[0] == "draft"
    assert created_changes(app) == []


def test_the_change_carries_the_update_as_published(app, editor, story):
    """Even where this session had the update loaded before the claim."""
    update_id = schedule(app, editor, "Exit poll", DUE)
    with app.app_context():
        assert db.session.get(Update, update_id).status == "scheduled"
        assert services._claim(story.id, update_id, DUE) is True
        change = db.session.scalars(sa.select(Change)).one()
        assert (change.payload["update"]["status"], change.payload["update"]["publish_at"]) == (
            "published",
            None,
        )
        assert change.payload["update"]["seq"] == change.seq == 1


def test_due_updates_are_published_in_order_up_to_the_limit(app, editor, story):
    later = schedule(app, editor, "Second", DUE + MINUTE)
    first = schedule(app, editor, "First", DUE)
    tie = schedule(app, editor, "Tie", DUE + MINUTE)
    assert publish_due(app, DUE + 5 * MINUTE, limit=2) == [first, later]
    assert publish_due(app, DUE + 5 * MINUTE, limit=2) == [tie]
    assert created_changes(app) == [(1, first), (2, later), (3, tie)]


def test_an_ended_story_keeps_its_due_updates_until_it_is_live(app, editor, story):
    update_id = schedule(app, editor, "Exit poll", DUE)
    with app.app_context():
        services.edit_article(Article.by_slug("election-night"), {"status": "ended"})
    assert publish_due(app, DUE + MINUTE) == []
    assert state(app, update_id)[0] == "scheduled"
    with app.app_context():
        services.edit_article(Article.by_slug("election-night"), {"status": "live"})
    assert publish_due(app, DUE + MINUTE) == [update_id]


def test_a_deleted_scheduled_update_is_never_published(app, editor, story):
    update_id = schedule(app, editor, "Exit poll", DUE)
    kept = schedule(app, editor, "Turnout", DUE)
    with app.app_context():
        services.delete_update(
            Article.by_slug("election-night"), update_id, db.session.get(Editor, editor.id)
        )
    assert publish_due(app, DUE + MINUTE) == [kept]
    assert state(app, update_id)[0] == "scheduled"


def test_a_pinned_update_takes_the_pin_when_it_is_published(app, editor, story):
    with app.app_context():
        story_row = Article.by_slug("election-night")
        author = db.session.get(Editor, editor.id)
        old = services.post_update(story_row, author, "Pinned now", pinned=True).id
    update_id = schedule(app, editor, "Pinned later", DUE, pinned=True)
    assert publish_due(app, DUE + MINUTE) == [update_id]
    with app.app_context():
        # the claim takes its seq first; the unpinning of the other follows it
        log = [
            (row.seq, row.type, row.update_id)
            for row in db.session.scalars(sa.select(Change).order_by(Change.seq))
        ]
        assert log == [(1, "created", old), (2, "created", update_id), (3, "edited", old)]
        assert db.session.get(Update, old).pinned is False
        assert db.session.get(Update, update_id).pinned is True


def test_a_disabled_authors_due_update_is_held_and_others_published(app, editor, story):
    with app.app_context():
        other = SimpleNamespace(id=services.create_editor("bob", "correct horse battery").id)
    mine = schedule(app, editor, "Exit poll", DUE)
    theirs = schedule(app, other, "Turnout", DUE)
    with app.app_context():
        db.session.execute(sa.update(Editor).where(Editor.id == editor.id).values(disabled_at=DUE))
        db.session.commit()
    assert publish_due(app, DUE + MINUTE) == [theirs]
    assert state(app, mine)[:2] == ("draft", DUE)


def test_what_cannot_be_published_takes_no_place_in_a_round(app, editor, story):
    """A round takes at most `limit` updates: held, deleted or ended-story ones due earlier
    must not fill it while a publishable one waits."""
    with app.app_context():
        other = services.create_editor("bob", "correct horse battery")
        ended = services.create_article("Yesterday", slug="yesterday")
        in_ended = services.post_update(ended, other, "Late", publish_at=DUE - 3 * MINUTE).id
        services.edit_article(ended, {"status": "ended"})
    held = schedule(app, editor, "Held", DUE - 2 * MINUTE)
    deleted = schedule(app, editor, "Deleted", DUE - MINUTE)
    with app.app_context():
        author = db.session.get(Editor, editor.id)
        services.delete_update(Article.by_slug("election-night"), deleted, author)
        root = services.create_editor("root", "correct horse battery", admin=True)
        services.disable_editor(author, root)
        services.enable_editor(db.session.get(Editor, editor.id))
    ready = schedule(app, editor, "Ready", DUE)
    assert publish_due(app, DUE + MINUTE, limit=1) == [ready]
    assert [state(app, one)[0] for one in (in_ended, held, deleted)] == [
        "scheduled",
        "draft",
        "scheduled",
    ]


def test_a_disabled_authors_update_is_held_only_when_due(app, editor, story):
    update_id = schedule(app, editor, "Exit poll", DUE + timedelta(hours=1))
    with app.app_context():
        db.session.execute(sa.update(Editor).where(Editor.id == editor.id).values(disabled_at=DUE))
        db.session.commit()
    assert publish_due(app, DUE) == []
    assert state(app, update_id)[0] == "scheduled"
    assert publish_due(app, DUE + timedelta(hours=2)) == []
    assert state(app, update_id)[0] == "draft"


def test_a_round_publishes_at_most_a_hundred(app, editor, story):
    with app.app_context():
        story_row = Article.by_slug("election-night")
        author = db.session.get(Editor, editor.id)
        for n in range(101):
            services.post_update(story_row, author, f"Update {n}", publish_at=DUE)
    assert len(publish_due(app, DUE)) == 100
    assert len(publish_due(app, DUE)) == 1
