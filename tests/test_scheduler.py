"""Scheduled updates publish themselves at their time: once, after a restart, and with several
processes racing for them. The scheduler's clock is a parameter, so time moves when told."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from liveblog import create_app, scheduler, services
from liveblog.extensions import db
from liveblog.models import Article, Change, Editor, Update, iso
from tests.conftest import app_config
from tests.liveserver import Api, LiveServer, prepare_database, servers, wait_for

# A noon a month ahead: schedules are checked against the real clock, and may be at most
# MAX_SCHEDULE_AHEAD_DAYS ahead of it.
START = (datetime.now(UTC) + timedelta(days=30)).replace(hour=12, minute=0, second=0, microsecond=0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def schedule(app, story, editor, body: str, at: datetime) -> int:
    with app.app_context():
        article = db.session.get(Article, story.id)
        alice = db.session.get(Editor, editor.id)
        # Posted "before" START: the service checks the time is ahead of the real now.
        update = services.post_update(article, alice, body, publish_at=at)
        return update.id


def created_changes(app, story) -> list[Change]:
    with app.app_context():
        found = list(
            db.session.scalars(
                db.select(Change).where(Change.article_id == story.id).order_by(Change.seq)
            )
        )
        db.session.expunge_all()
        return found


@pytest.mark.both_databases
def test_an_update_publishes_at_its_time_once(app, editor, story):
    update_id = schedule(app, story, editor, "At noon", START + timedelta(minutes=5))
    clock = Clock(START)
    runner = scheduler.Scheduler(app, clock)
    assert runner.run_once() == []
    clock.now = START + timedelta(minutes=4, seconds=59)
    assert runner.run_once() == []
    clock.now = START + timedelta(minutes=5)
    assert runner.run_once() == [update_id]
    assert runner.run_once() == [], "published once"
    (change,) = created_changes(app, story)
    assert change.type == "created" and change.seq == 1
    assert change.payload["update"]["published_at"] == iso(START + timedelta(minutes=5))
    with app.app_context():
        update = db.session.get(Update, update_id)
        assert update.status == "published" and update.publish_at is None


@pytest.mark.both_databases
def test_an_ended_story_keeps_its_due_updates_waiting(app, editor, story):
    update_id = schedule(app, story, editor, "Held", START + timedelta(minutes=1))
    with app.app_context():
        services.edit_article(db.session.get(Article, story.id), {"status": "ended"})
    runner = scheduler.Scheduler(app, Clock(START + timedelta(hours=1)))
    assert runner.run_once() == []
    with app.app_context():
        assert db.session.get(Update, update_id).status == "scheduled"
        services.edit_article(db.session.get(Article, story.id), {"status": "live"})
    assert runner.run_once() == [update_id]


def test_deleted_or_already_published_updates_are_left_alone(app, editor, story):
    early = schedule(app, story, editor, "Published early", START + timedelta(minutes=1))
    gone = schedule(app, story, editor, "Deleted", START + timedelta(minutes=1))
    with app.app_context():
        article = db.session.get(Article, story.id)
        alice = db.session.get(Editor, editor.id)
        services.publish_update(article, early, alice)
        services.delete_update(article, gone, alice)
    assert scheduler.Scheduler(app, Clock(START + timedelta(hours=1))).run_once() == []
    assert [change.type for change in created_changes(app, story)] == ["created"]


# On PostgreSQL, the database for several processes.
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)
def test_two_schedulers_racing_publish_each_update_once(app, editor, story):
    """Two apps, each with its own connection pool, claim the same due updates at once."""
    ids = [schedule(app, story, editor, f"Due {n}", START) for n in range(10)]
    other = create_app(app_config(app.config["SQLALCHEMY_DATABASE_URI"]))
    runners = [scheduler.Scheduler(each, Clock(START)) for each in (app, other)]
    results: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def run(n: int) -> None:
        barrier.wait()
        results[n] = runners[n].run_once()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results[0] + results[1]) == ids, "each published by exactly one of them"
    changes = created_changes(app, story)
    assert [change.seq for change in changes] == list(range(1, 11))
    assert sorted(change.update_id for change in changes) == ids
    with other.app_context():
        db.engine.dispose()


def test_the_loop_starts_with_the_first_request_unless_testing(tmp_path):
    url = f"sqlite:///{tmp_path / 'loop.sqlite'}"
    testing = create_app(app_config(url))
    with testing.app_context():
        # With no tables, the loop started below would log a traceback from its thread
        # while later tests run: Python 3.11 may then fail their own parsing (a SystemError).
        db.create_all()
    testing.test_client().get("/healthz")
    assert not scheduler.get(testing).started
    serving = create_app(app_config(url, TESTING=False))
    assert not scheduler.get(serving).started, "commands never start it"
    serving.test_client().get("/healthz")
    assert scheduler.get(serving).started
    scheduler.get(serving).stop()


# --- real server processes --------------------------------------------------------------


def due_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.mark.slow
def test_a_scheduled_update_survives_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.sqlite'}"
    token = prepare_database(url)
    with LiveServer(url, tmp_path / "first.log") as first:
        api = Api(first.url, token)
        slug = api.new_story()
        update = api.post(slug, "After the restart", publish_at=due_in(4))
    with LiveServer(url, tmp_path / "second.log") as second:
        api = Api(second.url, token)
        requests.get(f"{second.url}/healthz", timeout=10)  # a serving process is up
        changes = wait_for(lambda: api.changes(slug)["changes"], timeout=15)
        assert [(c["type"], c["update"]["id"]) for c in changes] == [("created", update["id"])]
        published = datetime.fromisoformat(changes[0]["update"]["published_at"])
        assert published >= datetime.fromisoformat(update["publish_at"]), "never early"


@pytest.mark.slow
def test_two_processes_publish_each_scheduled_update_once(postgres_url, tmp_path):
    token = prepare_database(postgres_url)
    with servers(postgres_url, tmp_path, 2) as pair:
        apis = [Api(server.url, token) for server in pair]
        slug = apis[0].new_story()
        ids = [apis[n % 2].post(slug, f"Due {n}", publish_at=due_in(3))["id"] for n in range(6)]
        for server in pair:
            requests.get(f"{server.url}/healthz", timeout=10)
        wait_for(lambda: len(apis[1].changes(slug)["changes"]) >= 6, timeout=15)
        time.sleep(2)  # two more scheduler rounds in each process: none may publish again
        changes = apis[0].changes(slug)["changes"]
        assert [c["seq"] for c in changes] == list(range(1, 7))
        assert sorted(c["update"]["id"] for c in changes) == ids
        assert {c["type"] for c in changes} == {"created"}
