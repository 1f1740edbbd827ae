"""Readers that stop reading cost the server a bounded amount, against real server processes.

The test client cannot show this: it has no socket to stop reading. These readers connect
over a bare WebSocket with a small receive buffer (tests.rawreader) and then stop reading,
as a hostile client or a phone that lost its network does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.liveserver import Api, LiveServer, live_server_on_sqlite, reader
from tests.rawreader import RawReader, rss_kib

pytestmark = pytest.mark.slow  # real server processes

CAP = 256 * 1024  # MAX_QUEUED_BYTES for these servers: a quarter of the default


def big_body(n: int) -> str:
    """An update near the largest an editor may post (MAX_BODY_CHARS, 20,000)."""
    return f"Update {n}. " + "A long paragraph of a large update. " * 540


@pytest.fixture
def capped_server(tmp_path) -> Iterator[tuple[LiveServer, Api]]:
    # Catch-ups of 8 MB, past the default byte cap on catch-ups, to show they are streamed.
    with live_server_on_sqlite(
        tmp_path, MAX_QUEUED_BYTES=str(CAP), MAX_CATCH_UP_BYTES=str(16 << 20)
    ) as (server, token):
        yield server, Api(server.url, token)


def test_a_reader_that_stops_reading_is_dropped_and_the_others_get_everything(capped_server):
    server, api = capped_server
    slug = api.new_story()
    posts = 80  # about 40 KB each on the wire: 3 MB per reader, twelve times the cap
    with ExitStack() as stack, reader(server.url) as live:
        assert live.subscribe(slug, since=0)["ok"] is True
        stalled = []
        for _ in range(3):
            raw = RawReader(server.url)
            stack.callback(raw.close)
            assert raw.subscribe(slug, since=0)["ok"] is True
            stalled.append(raw)
        for n in range(posts):
            api.post(slug, big_body(n))
            if n % 10 == 0:
                for raw in stalled:
                    raw.pong()  # stalled, but answering pings as a hostile client does
        assert [c["seq"] for c in live.wait_changes(posts, timeout=60)] == list(range(1, posts + 1))
        # Each stalled reader was dropped when it fell a cap behind: reading now, it finds
        # what was in flight, then the end of the connection, not all the updates.
        for raw in stalled:
            assert raw.drain(timeout=10) is True
            assert len(raw.changes()) < posts
    assert "Traceback" not in server.log()


def test_catch_up_is_sent_as_fast_as_the_reader_reads(capped_server):
    """A reader far behind gets its catch-up whole, in order, however slowly it reads,
    while readers that ask for one and never read hold no more than the cap each."""
    server, api = capped_server
    slug = api.new_story()
    posts = 200  # 8 MB: more than the kernel buffers a connection (4 MiB at most) can hide
    for n in range(posts):
        api.post(slug, big_body(n))
    before = rss_kib(server.process.pid)
    with ExitStack() as stack:
        for _ in range(4):
            raw = RawReader(server.url)
            stack.callback(raw.close)
            raw.subscribe(slug, since=0, wait=False)  # asks for 8 MB and never reads
        slow = RawReader(server.url)
        stack.callback(slow.close)
        slow.send("420" + json.dumps(["subscribe", {"article": slug, "since": 0}]))
        ack = slow.wait_for(lambda text: text.startswith("430"), timeout=60)
        assert json.loads(ack[3:])[0] == {"ok": True, "seq": posts}
        assert [c["seq"] for c in slow.changes()] == list(range(1, posts + 1))
        held = rss_kib(server.process.pid) - before
    # Built whole and queued, the four catch-ups held about 4 x 8 MB; streamed, about a cap
    # each (and what the allocator keeps of the pages that came and went).
    print(f"held {held} KiB")
    assert held < 16 * 1024, f"{held} KiB held"
