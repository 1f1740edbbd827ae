"""Against real server processes (python app.py, gevent) with a real Socket.IO client.

What Flask-SocketIO's test client cannot see is checked here: the WebSocket transport,
origins, several processes sharing a database or a Redis queue, and the order in which
packets really arrive.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import socketio
import websocket

from liveblog import changes
from tests.liveserver import (
    EDITOR,
    TIMEOUT,
    Api,
    LiveServer,
    Reader,
    live_server_on_sqlite,
    prepare_database,
    reader,
    servers,
)

pytestmark = pytest.mark.slow  # real server processes, several per test

# Redis pub/sub channels ignore the db number, so stories get unique slugs (Api.new_story)
# and a run sharing the Redis server cannot feed these readers.
REDIS_URL = "redis://127.0.0.1:6379/5"


def created(slug: str, seq: int, update: dict) -> dict:
    """The CHANGE for a published update, less its rendered element."""
    return {"article": slug, "seq": seq, "type": "created", "update": update}


def post_concurrently(
    apis: list[Api], slug: str, threads: int, per_thread: int
) -> list[requests.Response]:
    """`threads` threads, released together, each posting `per_thread` updates to one story.

    Thread i posts through apis[i % len(apis)], so several servers are written at once.
    """
    start = threading.Barrier(threads)

    def worker(index: int) -> list[requests.Response]:
        api = apis[index % len(apis)]
        responses = []
        with requests.Session() as session:
            start.wait(TIMEOUT)
            for n in range(per_thread):
                response = session.post(
                    f"{api.url}/articles/{slug}/updates",
                    json={"body": f"thread {index} post {n}"},
                    headers=api.headers,
                    timeout=60,
                )
                response.close()
                responses.append(response)
        return responses

    with ThreadPoolExecutor(threads) as pool:
        batches = list(pool.map(worker, range(threads)))
    return [response for batch in batches for response in batch]


def assert_gapless(api: Api, slug: str, total: int, responses: list[requests.Response]) -> None:
    """Every post answered 201, and the story's changes are seqs 1..total, each once."""
    statuses = [response.status_code for response in responses]
    assert statuses == [201] * total, [r.text for r in responses if r.status_code != 201]
    log = api.changes(slug)
    seqs = [change["seq"] for change in log["changes"]]
    assert seqs == list(range(1, total + 1))
    assert log["seq"] == total
    assert {change["type"] for change in log["changes"]} == {"created"}
    posted_ids = sorted(response.json()["id"] for response in responses)
    logged_ids = sorted(change["update"]["id"] for change in log["changes"])
    assert logged_ids == posted_ids
    assert len(set(posted_ids)) == total


def assert_clean_log(*servers: LiveServer) -> None:
    for server in servers:
        log = server.log()
        assert "database is locked" not in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


def assert_update_payload(update: dict[str, Any]) -> None:
    assert changes.shape_problems(update, changes.UPDATE_SHAPE, "update") == []


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[tuple[LiveServer, str]]:
    """One server for the many small cases that each make a story of their own."""
    with live_server_on_sqlite(tmp_path_factory.mktemp("shared")) as (server, token):
        yield server, token


# --- 1. live delivery -------------------------------------------------------------


def test_change_reaches_subscriber_live(live_server):
    server, token = live_server
    api = Api(server.url, token)
    slug = api.new_story()
    with reader(server.url) as sio:
        assert sio.subscribe(slug, since=0) == {"ok": True, "seq": 0}

        update = api.post(slug, "**Polls** have closed", headline="Polls close", key_event=True)
        sio.wait_changes(1)

        assert_update_payload(update)
        assert update["headline"] == "Polls close"
        assert update["key_event"] is True
        assert update["author"] == EDITOR
        assert "<strong>Polls</strong>" in update["html"]
        assert update["published_at"].endswith("Z")
        assert update["edited_at"] is None
        # The broadcast is the very payload the API answered with.
        (change,) = sio.changes()
        assert change == {**created(slug, 1, update), "html": change["html"]}

        for n in range(2, 11):  # each arrives (post-to-receipt latency: bench/latency.py)
            api.post(slug, f"update {n}")
            sio.wait_changes(n)
        assert [change["seq"] for change in sio.changes()] == list(range(1, 11))


# --- 2. catch-up after a disconnect -----------------------------------------------


def test_reconnecting_reader_catches_up_then_goes_live(live_server):
    server, token = live_server
    api = Api(server.url, token)
    slug = api.new_story()
    first = api.post(slug, "Before the break")
    with reader(server.url) as sio:
        ack = sio.subscribe(slug, since=0)
        assert ack == {"ok": True, "seq": 1}
        seen = ack["seq"]

    added = api.post(slug, "While away", headline="Missed")
    edited = api.edit(slug, added["id"], body="While away, *edited*")
    api.delete(slug, first["id"])
    assert edited["edited_at"] is not None
    assert "<em>edited</em>" in edited["html"]

    with reader(server.url) as sio:
        ack = sio.subscribe(slug, since=seen)
        assert ack == {"ok": True, "seq": 4}
        timeline = [(event, payload) for _, event, payload in sio.timeline()]
        # The missed changes come first, oldest first, and then the ack.
        assert [event for event, _ in timeline] == ["change", "change", "change", "ack"]
        missed = [payload for _, payload in timeline[:3]]
        assert [(c["seq"], c["type"]) for c in missed] == [
            (2, "created"),
            (3, "edited"),
            (4, "deleted"),
        ]
        assert all(change["article"] == slug for change in missed)
        assert missed[0]["update"]["id"] == added["id"]
        assert missed[1]["update"] == edited
        assert missed[2]["update"]["id"] == first["id"]
        assert missed == api.changes(slug, since=seen)["changes"]

        live = api.post(slug, "Back live")
        sio.wait_changes(4)
        sio.round_trip()
        assert [change["seq"] for change in sio.changes()] == [2, 3, 4, 5]
        last = sio.changes()[-1]
        assert last == {**created(slug, 5, live), "html": last["html"]}


# --- 3. stories are isolated --------------------------------------------------------


def test_subscriber_gets_only_its_story(live_server):
    server, token = live_server
    api = Api(server.url, token)
    story_a, story_b = api.new_story("A"), api.new_story("B")
    with reader(server.url) as sio:
        assert sio.subscribe(story_a)["ok"] is True
        api.post(story_b, "Only for B")
        api.post(story_a, "Only for A")
        first = sio.wait_changes(1)[0]
        assert (first["article"], first["seq"]) == (story_a, 1)
        api.post(story_b, "B again")
        sio.round_trip()
        assert [change["article"] for change in sio.changes()] == [story_a]


# --- 4. origins ----------------------------------------------------------------------


def websocket_open(server: LiveServer, origin: str) -> tuple[int, str]:
    """The HTTP status of a raw WebSocket handshake and the first message on it ('' if closed)."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(url, origin=origin, timeout=TIMEOUT)
    try:
        return ws.getstatus(), ws.recv()
    finally:
        ws.close()
        ws.shutdown()  # close() skips the socket once the server has sent its close frame


def polling_handshake(server: LiveServer, origin: str) -> requests.Response:
    with requests.get(
        server.url + "/socket.io/?EIO=4&transport=polling",
        headers={"Origin": origin},
        timeout=TIMEOUT,
    ) as response:
        response.content  # noqa: B018  read it all, so the connection is released
        return response


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://127.0.0.1.evil.example", "https://127.0.0.1"],
)
def test_cross_origin_socket_refused(shared_server, origin):
    server, _ = shared_server
    sio = Reader(websocket_extra_options={"origin": origin})
    # python-engineio leaves the refused WebSocket for the garbage collector: collect it here,
    # where its ResourceWarning is expected, rather than in whichever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises((socketio.exceptions.ConnectionError, ValueError)):
            sio.connect(server.url, transports=["websocket"], wait_timeout=TIMEOUT)
        gc.collect()
    assert not sio.connected

    # gevent-websocket answers 101 before the application sees the request; Engine.IO then
    # refuses the origin, so the socket closes without an open packet and no session exists.
    status, first = websocket_open(server, origin)
    assert first == "", (status, first)

    handshake = polling_handshake(server, origin)
    assert handshake.status_code == 400, handshake.text
    assert "Access-Control-Allow-Origin" not in handshake.headers


def test_same_origin_socket_accepted(shared_server):
    server, token = shared_server
    slug = Api(server.url, token).new_story()
    with reader(server.url, origin=server.url) as sio:
        assert sio.connected
        assert sio.subscribe(slug) == {"ok": True, "seq": 0}

    status, first = websocket_open(server, server.url)
    assert (status, first[:8]) == (101, '0{"sid":')

    handshake = polling_handshake(server, server.url)
    assert handshake.status_code == 200, handshake.text
    assert handshake.text.startswith('0{"sid":')
    assert handshake.headers["Access-Control-Allow-Origin"] == server.url


# --- 5-7. concurrent writers: seqs 1..N, no gaps or duplicates ------------------------


def test_concurrent_posts_one_server_sqlite(live_server):
    server, token = live_server
    api = Api(server.url, token)
    slug = api.new_story()
    with reader(server.url) as sio:
        assert sio.subscribe(slug, since=0)["ok"] is True
        responses = post_concurrently([api], slug, threads=8, per_thread=5)
        assert_gapless(api, slug, 40, responses)
        # The live reader got every change once, in seq order (CONTRACT: `change`).
        sio.wait_changes(40)
        sio.round_trip()
        assert [change["seq"] for change in sio.changes()] == list(range(1, 41))
    assert_clean_log(server)


@pytest.mark.parametrize("database", ["one SQLite file", "PostgreSQL"])
def test_concurrent_posts_two_servers_one_database(database, request, tmp_path):
    if database == "PostgreSQL":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    token = prepare_database(url)
    with servers(url, tmp_path, 2) as pair:
        apis = [Api(server.url, token) for server in pair]
        slug = apis[0].new_story()
        responses = post_concurrently(apis, slug, threads=8, per_thread=5)
        assert_gapless(apis[1], slug, 40, responses)
        assert_clean_log(*pair)


# --- 8. several processes joined by Redis ---------------------------------------------


@pytest.fixture
def redis_pair(postgres_url, tmp_path) -> Iterator[tuple[list[LiveServer], str]]:
    """Two servers on one PostgreSQL database, both with REDIS_URL set."""
    token = prepare_database(postgres_url)
    channel = f"liveblog-test-{uuid.uuid4().hex[:8]}"  # Redis channels ignore the db number
    with servers(postgres_url, tmp_path, 2, REDIS_URL=REDIS_URL, REDIS_CHANNEL=channel) as pair:
        yield pair, token


def test_change_crosses_servers_through_redis(redis_pair):
    (one, two), token = redis_pair
    slug = Api(one.url, token).new_story()
    with reader(one.url) as sio:
        assert sio.subscribe(slug, since=0) == {"ok": True, "seq": 0}
        update = Api(two.url, token).post(slug, "Posted through the other process")
        changes = sio.wait_changes(1)
        assert changes == [{**created(slug, 1, update), "html": changes[0]["html"]}]
        assert f'id="update-{update["id"]}"' in changes[0]["html"]
        sio.round_trip()
        assert len(sio.changes()) == 1  # delivered once, not once per process
    assert_clean_log(one, two)


def test_live_changes_arrive_in_seq_order_across_servers(redis_pair):
    """CONTRACT `change`: "in seq order", also when the writers are different processes.

    Out-of-order delivery needs two commits to race, so this tries up to eight rounds of
    concurrent posts and stops at the first reader that sees seqs out of order.
    """
    (one, two), token = redis_pair
    apis = [Api(one.url, token), Api(two.url, token)]
    for _ in range(8):
        slug = apis[0].new_story()
        with reader(one.url) as first, reader(two.url) as second:
            assert first.subscribe(slug, since=0)["ok"] is True
            assert second.subscribe(slug, since=0)["ok"] is True
            responses = post_concurrently(apis, slug, threads=8, per_thread=5)
            assert_gapless(apis[0], slug, 40, responses)
            for sio in (first, second):
                sio.wait_changes(40)
                sio.round_trip()
                assert [change["seq"] for change in sio.changes()] == list(range(1, 41))


def test_reader_count_spans_servers_with_redis(redis_pair):
    """CONTRACT `readers`: how many are watching now, not how many on one process."""
    (one, two), token = redis_pair
    slug = Api(one.url, token).new_story()
    with reader(one.url) as first, reader(two.url) as second:
        assert first.subscribe(slug)["ok"] is True
        assert second.subscribe(slug)["ok"] is True
        expected = {"article": slug, "count": 2}
        for sio in (first, second):
            sio.wait_until(lambda sio=sio: expected in sio.events("readers"), timeout=3.5)


# --- 9. reader counts -------------------------------------------------------------------


def test_readers_count_sent_to_watchers(live_server):
    server, token = live_server
    slug = Api(server.url, token).new_story()
    with reader(server.url) as first:
        with reader(server.url) as second:
            assert first.subscribe(slug)["ok"] is True
            assert second.subscribe(slug)["ok"] is True
            expected = {"article": slug, "count": 2}
            first.wait_until(lambda: expected in first.events("readers"), timeout=3.5)
        # The one left is told it is alone now.
        first.wait_until(lambda: first.events("readers")[-1]["count"] == 1, timeout=3.5)
        assert first.events("readers")[-1] == {"article": slug, "count": 1}


# --- 10. bad socket input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "not an object",
        ["story"],
        42,
        {},
        {"article": ""},
        {"article": "no-such-story"},
        {"article": "SLUG", "since": "0"},
        {"article": "SLUG", "since": -1},
        {"article": "SLUG", "since": True},
        {"article": "SLUG", "since": 1.0},
        {"article": "SLUG", "since": 99},  # ahead of the story
    ],
    ids=repr,
)
def test_bad_subscribe_refused_and_server_survives(shared_server, payload):
    server, token = shared_server
    api = Api(server.url, token)
    slug = api.new_story()
    if isinstance(payload, dict) and payload.get("article") == "SLUG":
        payload = {**payload, "article": slug}
    with reader(server.url) as sio:
        ack = sio.send_subscribe(payload)
        assert ack["ok"] is False
        assert isinstance(ack["error"], str) and ack["error"].strip()
        assert "seq" not in ack

        # Still alive, on the same connection: a valid subscribe then works.
        assert sio.subscribe(slug, since=0) == {"ok": True, "seq": 0}
        api.post(slug, "After the bad input")
        assert [change["seq"] for change in sio.wait_changes(1)] == [1]
    assert server.process.poll() is None
    assert_clean_log(server)


@pytest.mark.parametrize("since", [5, "5"], ids=["since-ahead", "since-string"])
def test_refused_subscribe_does_not_follow_the_story(shared_server, since):
    """A reader whose subscribe was refused is not watching: no changes, not counted."""
    server, token = shared_server
    api = Api(server.url, token)
    slug = api.new_story()
    with reader(server.url) as refused, reader(server.url) as watcher:
        assert refused.subscribe(slug, since=since)["ok"] is False
        assert watcher.subscribe(slug)["ok"] is True
        api.post(slug, "Only for the watcher")
        watcher.wait_changes(1)
        refused.round_trip()  # the room's emit reached both sockets before this
        watcher.wait_until(lambda: watcher.events("readers"), timeout=3.5)
        refused.round_trip()
        seen = (refused.changes(), watcher.events("readers")[-1]["count"])
        assert seen == ([], 1), "changes the refused reader got, and the reader count"


def test_readers_who_leave_mid_subscribe_are_not_counted(postgres_url, tmp_path):
    """Sockets that close while their subscribe is still being served leave no ghost reader."""
    token = prepare_database(postgres_url)
    with LiveServer(postgres_url, tmp_path / "server.log") as server:
        api = Api(server.url, token)
        slug = api.new_story()
        for i in range(20):
            api.post(slug, f"update {i}")
        ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        for i in range(60):
            ws = websocket.create_connection(ws_url, timeout=TIMEOUT)
            ws.recv()  # Engine.IO open
            ws.send("40")
            ws.recv()  # Socket.IO connect
            ws.send("420" + json.dumps(["subscribe", {"article": slug, "since": 0}]))
            time.sleep(0.002 * (i % 8))
            ws.close()
        time.sleep(1.5)  # let the server finish with every one of them
        with reader(server.url) as watcher:
            assert watcher.subscribe(slug, since=20)["ok"] is True
            counts = watcher.wait_until(lambda: watcher.events("readers"), timeout=TIMEOUT)
            assert counts[-1] == {"article": slug, "count": 1}
