"""The newsroom through the JSON API: drafts, scheduling, publishing, revisions, ended stories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from liveblog.extensions import socketio
from tests.changes_check import received

URL = "/api/articles/election-night"


def seq(client) -> int:
    return client.get(URL).get_json()["seq"]


def post(client, bearer, **fields):
    return client.post(f"{URL}/updates", json=fields, headers=bearer)


def in_minutes(minutes: int, offset_hours: int = 4) -> str:
    """A time from now, written with a UTC offset as an editor's browser writes it."""
    zone = timezone(timedelta(hours=offset_hours))
    return (datetime.now(UTC) + timedelta(minutes=minutes)).astimezone(zone).isoformat()


@pytest.mark.both_databases
def test_a_draft_is_unseen_until_published(client, bearer, story):
    draft = post(client, bearer, body="Not yet", draft=True)
    assert draft.status_code == 201
    update = draft.get_json()
    assert update["status"] == "draft" and update["seq"] is None
    assert seq(client) == 0, "a draft makes no change"
    assert client.get(f"{URL}/updates").get_json()["updates"] == []
    drafts = client.get(f"{URL}/drafts", headers=bearer).get_json()["updates"]
    assert [d["id"] for d in drafts] == [update["id"]]
    assert client.get(f"{URL}/drafts").status_code == 401

    published = client.patch(
        f"{URL}/updates/{update['id']}", json={"status": "published"}, headers=bearer
    )
    assert published.status_code == 200
    body = published.get_json()
    assert body["status"] == "published" and body["seq"] == 1
    assert body["published_at"] >= update["published_at"]
    (change,) = client.get(f"{URL}/changes").get_json()["changes"]
    assert change["type"] == "created" and change["update"]["id"] == update["id"]

    again = client.patch(
        f"{URL}/updates/{update['id']}", json={"status": "published"}, headers=bearer
    )
    assert again.status_code == 409 and "already published" in again.get_json()["error"]
    assert seq(client) == 1


@pytest.mark.both_databases
def test_scheduling_takes_a_future_time_with_its_offset(client, bearer, story):
    answer = post(client, bearer, body="Later", publish_at=in_minutes(30))
    assert answer.status_code == 201
    update = answer.get_json()
    assert update["status"] == "scheduled"
    due = datetime.fromisoformat(update["publish_at"])
    assert timedelta(minutes=29) < due - datetime.now(UTC) < timedelta(minutes=31)
    assert seq(client) == 0
    moved = client.patch(
        f"{URL}/updates/{update['id']}", json={"publish_at": in_minutes(60, 0)}, headers=bearer
    )
    assert moved.status_code == 200 and moved.get_json()["publish_at"] != update["publish_at"]
    assert client.get(f"{URL}/updates").get_json()["updates"] == []


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (in_minutes(-5), "in the past"),
        ("tomorrow at noon", "ISO-8601"),
        ("2030-01-01T10:00", "offset"),
        (12, "ISO-8601"),
        # Past the calendar's end once in UTC, and before its start.
        ("9999-12-31T23:00:00-05:00", "out of range"),
        ("0001-01-01T00:30:00+01:00", "out of range"),
        (in_minutes(367 * 24 * 60), "at most 366 days from now"),
    ],
)
def test_bad_schedule_times_save_nothing(client, bearer, story, when, message):
    answer = post(client, bearer, body="Later", publish_at=when)
    assert answer.status_code == 422
    assert message in answer.get_json()["error"]
    assert client.get(f"{URL}/drafts", headers=bearer).get_json()["updates"] == []


@pytest.mark.both_databases
@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-05:00", in_minutes(367 * 24 * 60)])
def test_rescheduling_out_of_range_changes_nothing(client, bearer, story, when):
    update = post(client, bearer, body="Later", publish_at=in_minutes(30)).get_json()
    answer = client.patch(
        f"{URL}/updates/{update['id']}", json={"publish_at": when}, headers=bearer
    )
    assert answer.status_code == 422
    assert "at most 366 days from now" in answer.get_json()["error"]
    (kept,) = client.get(f"{URL}/drafts", headers=bearer).get_json()["updates"]
    assert kept["publish_at"] == update["publish_at"]


@pytest.mark.config(MAX_SCHEDULE_AHEAD_DAYS=7)
def test_the_schedule_limit_is_a_setting(client, bearer, story):
    answer = post(client, bearer, body="Later", publish_at=in_minutes(8 * 24 * 60))
    assert answer.status_code == 422
    assert "at most 7 days from now" in answer.get_json()["error"]
    assert (
        post(client, bearer, body="Sooner", publish_at=in_minutes(6 * 24 * 60)).status_code == 201
    )


def test_a_draft_cannot_also_be_scheduled(client, bearer, story):
    answer = post(client, bearer, body="x", draft=True, publish_at=in_minutes(5))
    assert answer.status_code == 422
    assert client.get(f"{URL}/drafts", headers=bearer).get_json()["updates"] == []


@pytest.mark.both_databases
def test_every_edit_keeps_the_text_before_it(client, bearer, story):
    update = post(client, bearer, body="Frist", headline="Polls").get_json()
    first = client.patch(f"{URL}/updates/{update['id']}", json={"body": "First"}, headers=bearer)
    assert first.status_code == 200
    client.patch(f"{URL}/updates/{update['id']}", json={"pinned": True}, headers=bearer)
    client.patch(f"{URL}/updates/{update['id']}", json={"headline": "Polls close"}, headers=bearer)
    answer = client.get(f"{URL}/updates/{update['id']}/revisions", headers=bearer)
    revisions = answer.get_json()["revisions"]
    assert [(r["headline"], r["body"]) for r in revisions] == [
        ("Polls", "Frist"),
        ("Polls", "First"),
    ], "one per text edit, oldest first; pinning is not a text edit"
    assert revisions[0]["editor"] == "alice"
    assert revisions[0]["saved_at"] == update["published_at"]
    assert revisions[1]["saved_at"] == first.get_json()["edited_at"]
    assert client.get(f"{URL}/updates/{update['id']}/revisions").status_code == 401


@pytest.mark.both_databases
def test_an_ended_story_refuses_writes_to_its_updates(client, bearer, story):
    update = post(client, bearer, body="Before the end").get_json()
    draft = post(client, bearer, body="A draft", draft=True).get_json()
    assert client.patch(URL, json={"status": "ended"}, headers=bearer).status_code == 200
    before = seq(client)
    attempts = [
        post(client, bearer, body="After the end"),
        post(client, bearer, body="Draft after the end", draft=True),
        client.patch(f"{URL}/updates/{update['id']}", json={"body": "x"}, headers=bearer),
        client.patch(f"{URL}/updates/{draft['id']}", json={"status": "published"}, headers=bearer),
        client.delete(f"{URL}/updates/{update['id']}", headers=bearer),
    ]
    for answer in attempts:
        assert answer.status_code == 409
        assert "has ended" in answer.get_json()["error"]
    assert seq(client) == before
    assert client.get(f"{URL}/updates").get_json()["updates"][0]["body"] == "Before the end"
    assert client.patch(URL, json={"status": "live"}, headers=bearer).status_code == 200
    assert post(client, bearer, body="Back").status_code == 201


def test_bad_newsroom_writes_write_nothing(client, bearer, story):
    other = client.post("/api/articles", json={"title": "Other"}, headers=bearer).get_json()
    theirs = client.post(
        f"/api/articles/{other['slug']}/updates", json={"body": "theirs"}, headers=bearer
    ).get_json()
    mine = post(client, bearer, body="mine").get_json()
    client.delete(f"{URL}/updates/{mine['id']}", headers=bearer)
    before = seq(client)

    def patch(update_id, **fields):
        return client.patch(f"{URL}/updates/{update_id}", json=fields, headers=bearer)

    cases = [
        (patch(theirs["id"], pinned=True), 404),  # another story's update
        (patch(mine["id"], body="x"), 404),  # a deleted one
        (patch(theirs["id"], status="draft"), 422),
        (post(client, bearer, body="x", image=999), 422),
        (post(client, bearer, body="x", image="1"), 422),
        (post(client, bearer, body="x", draft="yes"), 422),
    ]  # fmt: skip
    for answer, status in cases:
        assert answer.status_code == status, answer.get_json()
        assert answer.get_json()["error"]
    assert seq(client) == before


@pytest.mark.both_databases
def test_drafts_make_no_change_until_published(app, client, bearer, story):
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"article": "election-night", "since": 0}, callback=True)["ok"]
    draft = post(client, bearer, body="Quiet", draft=True).get_json()
    post(client, bearer, body="Later", publish_at=in_minutes(10))
    client.patch(f"{URL}/updates/{draft['id']}", json={"body": "Still quiet"}, headers=bearer)
    assert received(sio) == []
    client.patch(f"{URL}/updates/{draft['id']}", json={"status": "published"}, headers=bearer)
    got = received(sio)
    assert [(c["type"], c["seq"], c["update"]["body"]) for c in got] == [
        ("created", 1, "Still quiet")
    ]
    sio.disconnect()
