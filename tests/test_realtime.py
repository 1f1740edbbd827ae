"""Socket.IO handlers through Flask-SocketIO's test client: subscribe, catch-up, live changes.

What the test client cannot show (origins, real transports, several processes) is tested
against a real server in test_live_server.py.
"""

from __future__ import annotations

import threading

import pytest

from liveblog import realtime
from liveblog.extensions import socketio
from liveblog.relay import relay
from tests.changes_check import received as changes
from tests.liveserver import wait_for

URL = "/api/articles/election-night"


def subscribe(sio, **payload):
    return sio.emit("subscribe", {"article": "election-night", **payload}, callback=True)


def test_subscriber_receives_each_change_live(client, bearer, story, socket_client):
    assert subscribe(socket_client, since=0) == {"ok": True, "seq": 0}
    update = client.post(f"{URL}/updates", json={"body": "Live"}, headers=bearer).get_json()
    client.patch(f"{URL}/updates/{update['id']}", json={"body": "Live!"}, headers=bearer)
    client.delete(f"{URL}/updates/{update['id']}", headers=bearer)
    received = changes(socket_client)
    assert [(c["seq"], c["type"]) for c in received] == [
        (1, "created"),
        (2, "edited"),
        (3, "deleted"),
    ]
    assert received[0] == {
        "article": "election-night",
        "seq": 1,
        "type": "created",
        "update": update,
        "html": received[0]["html"],
    }
    assert f'id="update-{update["id"]}"' in received[0]["html"]
    assert received[1]["update"]["html"] == "<p>Live!</p>"


def test_catch_up_sends_exactly_the_missed_changes_in_order(app, client, bearer, story):
    ids = [
        client.post(f"{URL}/updates", json={"body": f"n{i}"}, headers=bearer).get_json()["id"]
        for i in range(3)
    ]
    client.patch(f"{URL}/updates/{ids[0]}", json={"headline": "First"}, headers=bearer)
    client.delete(f"{URL}/updates/{ids[1]}", headers=bearer)  # the story is now at seq 5
    sio = socketio.test_client(app, flask_test_client=client)
    ack = subscribe(sio, since=2)
    assert ack == {"ok": True, "seq": 5}
    assert [(c["seq"], c["type"]) for c in changes(sio)] == [
        (3, "created"),
        (4, "edited"),
        (5, "deleted"),
    ]
    sio.disconnect()


def test_subscribe_without_since_gets_only_live_changes(client, bearer, story, socket_client):
    client.post(f"{URL}/updates", json={"body": "before"}, headers=bearer)
    assert subscribe(socket_client) == {"ok": True, "seq": 1}
    assert changes(socket_client) == []
    client.post(f"{URL}/updates", json={"body": "after"}, headers=bearer)
    assert [c["seq"] for c in changes(socket_client)] == [2]


def test_stories_are_isolated(client, bearer, story, socket_client):
    client.post("/api/articles", json={"title": "Other"}, headers=bearer)
    subscribe(socket_client, since=0)
    client.post("/api/articles/other/updates", json={"body": "elsewhere"}, headers=bearer)
    client.post(f"{URL}/updates", json={"body": "here"}, headers=bearer)
    assert [(c["article"], c["update"]["body"]) for c in changes(socket_client)] == [
        ("election-night", "here")
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "send an object"),
        ("election-night", "send an object"),
        ([1, 2], "send an object"),
        ({}, "slug"),
        ({"article": 5}, "slug"),
        ({"article": "nope"}, "no story"),
        ({"article": "election-night", "since": "3"}, "whole number"),
        ({"article": "election-night", "since": -1}, "whole number"),
        ({"article": "election-night", "since": 1.5}, "whole number"),
        ({"article": "election-night", "since": True}, "whole number"),
    ],
)
def test_bad_subscriptions_are_refused_with_a_reason(story, socket_client, payload, message):
    ack = socket_client.emit("subscribe", payload, callback=True)
    assert ack["ok"] is False and message in ack["error"]
    assert socket_client.is_connected()
    assert subscribe(socket_client, since=0)["ok"] is True  # the connection still works


def test_since_ahead_of_the_story_asks_for_a_reload(story, socket_client):
    assert subscribe(socket_client, since=7) == {
        "ok": False,
        "error": "since 7 is ahead of the story (at 0)",
        "reload": True,
    }


@pytest.mark.config(MAX_CATCH_UP=2)
def test_too_far_behind_asks_for_a_reload(client, bearer, story, socket_client):
    for i in range(3):
        client.post(f"{URL}/updates", json={"body": f"n{i}"}, headers=bearer)
    ack = subscribe(socket_client, since=0)
    assert ack["ok"] is False and ack["reload"] is True
    assert changes(socket_client) == []


@pytest.mark.config(MAX_CATCH_UP_BYTES=40_000)
def test_a_catch_up_past_its_byte_cap_asks_for_a_reload(client, bearer, story, socket_client):
    """Few changes, but large ones: the cap on bytes holds where the cap on count does not."""
    for i in range(12):
        body = f"Update {i}. " + "A long paragraph of a large update. " * 60
        client.post(f"{URL}/updates", json={"body": body}, headers=bearer)
    ack = subscribe(socket_client, since=0)
    assert ack["ok"] is False and ack["reload"] is True
    assert "bytes" in ack["error"]
    assert 0 < len(changes(socket_client)) < 12  # it stopped at the cap, not at the end
    # A reader only a few changes behind is caught up as before.
    late = subscribe(socket_client, since=9)
    assert late == {"ok": True, "seq": 12}
    assert [change["seq"] for change in changes(socket_client)] == [10, 11, 12]


def test_reader_count_is_sent_coalesced(app, client, story, monkeypatch):
    monkeypatch.setattr(realtime, "READERS_INTERVAL", 0.2)
    readers = [socketio.test_client(app, flask_test_client=client) for _ in range(3)]
    for sio in readers:
        subscribe(sio)
    with app.app_context():
        assert realtime.reader_count("election-night") == 3
    counts = wait_for(
        lambda: [e["args"][0] for e in readers[0].get_received() if e["name"] == "readers"],
        timeout=5,
        what="the reader count",
    )
    assert counts == [{"article": "election-night", "count": 3}]  # one message for three joins
    readers[2].disconnect()
    with app.app_context():
        assert realtime.reader_count("election-night") == 2
    for sio in readers[:2]:
        sio.disconnect()
    with app.app_context():
        assert realtime.reader_count("election-night") == 0


def apply_changes(state: dict[int, dict], received: list[dict]) -> dict[int, dict]:
    """What a reader does with CHANGE events: the client half of the verify_action check."""
    state = dict(state)
    for change in received:
        if change["type"] == "deleted":
            state.pop(change["update"]["id"], None)
        else:
            state[change["update"]["id"]] = change["update"]
    return state


def fetch_state(client) -> dict[int, dict]:
    updates = client.get(f"{URL}/updates?limit=200").get_json()["updates"]
    return {update["id"]: update for update in updates}


ACTIONS = {
    "create": lambda c, h, ids: c.post(
        f"{URL}/updates", json={"body": "new", "headline": "H"}, headers=h
    ),
    "edit body": lambda c, h, ids: c.patch(
        f"{URL}/updates/{ids[0]}", json={"body": "changed"}, headers=h
    ),
    "edit flags": lambda c, h, ids: c.patch(
        f"{URL}/updates/{ids[0]}", json={"key_event": True, "headline": None}, headers=h
    ),
    "pin": lambda c, h, ids: c.patch(f"{URL}/updates/{ids[1]}", json={"pinned": True}, headers=h),
    "delete": lambda c, h, ids: c.delete(f"{URL}/updates/{ids[1]}", headers=h),
    "create pinned": lambda c, h, ids: c.post(
        f"{URL}/updates", json={"body": "p", "pinned": True}, headers=h
    ),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_verify_action(action, app, client, bearer, story):
    """Old state + the events an action produced == the state fetched afresh afterwards."""
    ids = [
        client.post(f"{URL}/updates", json={"body": f"n{i}"}, headers=bearer).get_json()["id"]
        for i in range(2)
    ]
    client.patch(f"{URL}/updates/{ids[0]}", json={"pinned": True}, headers=bearer)
    before = fetch_state(client)
    sio = socketio.test_client(app, flask_test_client=client)
    ack = subscribe(sio, since=client.get(URL).get_json()["seq"])
    assert ACTIONS[action](client, bearer, ids).status_code in (200, 201, 204)
    received = changes(sio)
    assert received, "the action produced no change event"
    assert [c["seq"] for c in received] == list(
        range(ack["seq"] + 1, ack["seq"] + 1 + len(received))
    )
    assert apply_changes(before, received) == fetch_state(client)
    sio.disconnect()


def test_a_failing_handler_answers_with_a_refusal(story, socket_client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(realtime.Article, "by_slug", broken)
    ack = subscribe(socket_client, since=0)
    assert ack["ok"] is False and "could not handle" in ack["error"]
    assert socket_client.is_connected()


def test_a_subscription_can_follow_without_being_counted(app, story, socket_client):
    """The editors' compose page follows the story live but is not a reader."""
    assert subscribe(socket_client, since=0, count=False)["ok"] is True
    with app.app_context():
        assert realtime.reader_count("election-night") == 0


def test_relay_delivers_in_seq_order_when_broadcasts_race(
    app, client, bearer, story, socket_client, monkeypatch
):
    """Two commits whose broadcasts arrive swapped still reach readers as 1, 2, once each."""
    subscribe(socket_client, since=0)
    held: list[dict] = []
    monkeypatch.setattr(relay, "publish", held.append)  # the broadcasts are late...
    for body in ("first", "second"):
        client.post(f"{URL}/updates", json={"body": body}, headers=bearer)
    assert changes(socket_client) == []
    second, first = held[1], held[0]
    with app.app_context():
        relay.deliver(second)  # ...and the later one arrives first
        relay.deliver(first)
    received = changes(socket_client)
    assert [(c["seq"], c["update"]["body"]) for c in received] == [(1, "first"), (2, "second")]
    assert received[0] == first  # the missing one was read from the change log, unchanged


def test_a_reader_joining_behind_the_room_catches_everyone_up_once(
    app, client, bearer, story, monkeypatch
):
    """A late broadcast cannot slip between a new reader's catch-up and its live stream."""
    early = socketio.test_client(app, flask_test_client=client)
    subscribe(early, since=0)
    held: list[dict] = []
    monkeypatch.setattr(relay, "publish", held.append)  # two commits whose broadcasts lag
    for body in ("one", "two"):
        client.post(f"{URL}/updates", json={"body": body}, headers=bearer)
    late = socketio.test_client(app, flask_test_client=client)
    # The room is still at 0 (its broadcasts are late): the reader joins it there, without
    # reading the log, and gets 1 and 2 with the room.
    assert subscribe(late, since=0) == {"ok": True, "seq": 0}
    with app.app_context():
        for change in held:  # the lagging broadcasts finally arrive: already delivered, dropped
            relay.deliver(change)
    assert [c["seq"] for c in changes(late)] == [1, 2]
    assert [c["seq"] for c in changes(early)] == [1, 2]
    early.disconnect()
    late.disconnect()


def test_a_connection_is_not_replayed_twice_nor_follows_too_many(
    client, bearer, story, socket_client, monkeypatch
):
    monkeypatch.setattr(realtime, "MAX_SUBSCRIPTIONS", 2)
    client.post(f"{URL}/updates", json={"body": "x"}, headers=bearer)
    assert subscribe(socket_client, since=0) == {"ok": True, "seq": 1}
    assert len(changes(socket_client)) == 1
    # Again on the same connection: it is live already, so nothing is replayed.
    assert subscribe(socket_client, since=0) == {"ok": True, "seq": 1}
    assert changes(socket_client) == []
    client.post("/api/articles", json={"title": "Second"}, headers=bearer)
    client.post("/api/articles", json={"title": "Third"}, headers=bearer)
    second = socket_client.emit("subscribe", {"article": "second", "count": False}, callback=True)
    assert second["ok"] is True  # uncounted subscriptions still count towards the limit
    third = socket_client.emit("subscribe", {"article": "third"}, callback=True)
    assert third["ok"] is False and "at most 2" in third["error"]


def test_catch_up_comes_before_what_the_room_is_missing(app, client, bearer, story, monkeypatch):
    """A reader from seq 0 joins a room that has had 1 but not yet 2: it gets 1, then 2."""
    early = socketio.test_client(app, flask_test_client=client)
    subscribe(early, since=0)
    client.post(f"{URL}/updates", json={"body": "one"}, headers=bearer)  # delivered live
    held: list[dict] = []
    monkeypatch.setattr(relay, "publish", held.append)
    client.post(f"{URL}/updates", json={"body": "two"}, headers=bearer)  # broadcast lags
    late = socketio.test_client(app, flask_test_client=client)
    assert subscribe(late, since=0) == {"ok": True, "seq": 2}
    with app.app_context():
        relay.deliver(held[0])
    assert [c["seq"] for c in changes(late)] == [1, 2]
    assert [c["seq"] for c in changes(early)] == [1, 2]
    early.disconnect()
    late.disconnect()


def test_the_editors_request_does_not_wait_for_the_broadcast(
    app, client, bearer, story, socket_client, monkeypatch
):
    """The POST answers before its change is sent to readers: the audience is not its cost."""
    from liveblog.relay import RelayState

    assert subscribe(socket_client, since=0)["ok"] is True
    released, sent = threading.Event(), threading.Event()
    emit = RelayState._emit_to_room

    def held_emit(self, change):
        released.wait(10)  # in the request, this would hold the POST for the whole wait
        emit(self, change)
        sent.set()

    monkeypatch.setattr(RelayState, "_emit_to_room", held_emit)
    response = client.post(f"{URL}/updates", json={"body": "Live"}, headers=bearer)
    assert response.status_code == 201
    assert not sent.is_set()  # answered while the broadcast was still waiting
    released.set()
    assert [c["seq"] for c in changes(socket_client)] == [1]


def test_socket_state_belongs_to_its_app(app, story, socket_client, tmp_path):
    """Each app keeps what its connections follow; another app (a test's) starts empty."""
    from liveblog import create_app
    from tests.conftest import app_config

    assert subscribe(socket_client, since=0)["ok"] is True
    assert list(app.extensions[realtime.EXTENSION].following.values()) == [{"election-night"}]
    other = create_app(app_config(f"sqlite:///{tmp_path / 'other.sqlite'}"))
    assert other.extensions[realtime.EXTENSION].following == {}
    assert other.extensions["liveblog.relay"].stories == {}
    with other.app_context():
        assert realtime.reader_count("election-night") == 0
