"""A scheduled update is never published before its time: not a second early, not a
microsecond early, and exactly at it. The clock is the test's, through the scheduler's
`clock` parameter and through `services.publish_due(now)` itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from liveblog import scheduler, services
from liveblog.extensions import db
from liveblog.models import Article, Change, Editor, Update, iso

# Noon a month ahead: a schedule must lie ahead of the real clock when it is made.
DUE = (datetime.now(UTC) + timedelta(days=30)).replace(hour=12, minute=0, second=0, microsecond=0)
JUST_BEFORE = [timedelta(minutes=-1), timedelta(seconds=-1), timedelta(microseconds=-1)]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def schedule(app, story, editor, at: datetime = DUE) -> int:
    with app.app_context():
        article = db.session.get(Article, story.id)
        alice = db.session.get(Editor, editor.id)
        return services.post_update(article, alice, "On the hour", publish_at=at).id


def state(app, story, update_id: int) -> tuple[str, int, list[int]]:
    """The update's status, the story's seq and the updates its change log announced."""
    with app.app_context():
        announced = db.select(Change.update_id).where(
            Change.article_id == story.id, Change.type == "created"
        )
        return (
            db.session.get(Update, update_id).status,
            db.session.get(Article, story.id).seq,
            list(db.session.scalars(announced.order_by(Change.seq))),
        )


@pytest.mark.both_databases
def test_the_scheduler_publishes_at_the_time_and_not_a_moment_before(app, editor, story):
    update_id = schedule(app, story, editor)
    clock = Clock(DUE)
    runner = scheduler.Scheduler(app, clock)
    for early in JUST_BEFORE:
        clock.now = DUE + early
        assert runner.run_once() == [], f"published {early} before its time"
        assert state(app, story, update_id) == ("scheduled", 0, [])
    clock.now = DUE
    assert runner.run_once() == [update_id]
    assert state(app, story, update_id) == ("published", 1, [update_id])
    with app.app_context():
        assert iso(db.session.get(Update, update_id).published_at) == iso(DUE)
    assert runner.run_once() == []


@pytest.mark.both_databases
def test_publish_due_takes_only_what_is_due_at_the_moment_it_is_given(app, editor, story):
    first = schedule(app, story, editor, DUE)
    second = schedule(app, story, editor, DUE + timedelta(seconds=1))
    with app.app_context():
        for early in JUST_BEFORE:
            assert services.publish_due(DUE + early) == [], f"published {early} early"
        # At the first one's time, the second is still a second away.
        assert services.publish_due(DUE) == [first]
        assert services.publish_due(DUE + timedelta(microseconds=999_999)) == []
        assert services.publish_due(DUE + timedelta(seconds=1)) == [second]
    assert state(app, story, second) == ("published", 2, [first, second])
