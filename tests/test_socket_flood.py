"""One connection sending without pause must not hold up the process's other clients.

Against a real gevent server: a WebSocket that floods `subscribe`s, one that floods frames
that are not messages, and a long-polling POST carrying many packets are each closed, while
a reader on another connection still gets its update and /healthz still answers. Then the
gate itself, on a real engine.io server: the rate, the burst and the bound on waiting
handlers, each closing the connection that passes it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import engineio
import pytest
import requests
from wsproto.events import TextMessage

from liveblog.connections import EventGate
from tests.liveserver import Api, live_server_on_sqlite, wait_for
from tests.rawreader import RawReader

FLOOD = 5000  # far past any allowance, far below what once stalled a process (58,600)


@pytest.fixture
def server(tmp_path):
    with live_server_on_sqlite(tmp_path, METRICS_ENABLED="1") as (live, token):
        yield live, Api(live.url, token)


def send_all(raw: RawReader, frame: bytes, count: int) -> None:
    """Write `count` copies of a frame; the server may hang up part way, which ends it."""
    with contextlib.suppress(OSError):
        raw.sock.sendall(frame * count)


def flood_and_check(server, api: Api, text: str) -> None:
    slug = api.new_story()
    reader = RawReader(server.url)
    flooder = RawReader(server.url)
    try:
        assert reader.subscribe(slug, since=0)["ok"]
        frame = flooder.ws.send(TextMessage(data=text))
        sender = threading.Thread(target=send_all, args=(flooder, frame, FLOOD))
        sender.start()
        flooder.sock.settimeout(1.0)
        assert flooder.drain(30.0), "the server kept the flooding connection open"
        sender.join(30)
        # Everyone else is served: the process answers, and the reader gets what is posted.
        assert requests.get(server.url + "/healthz", timeout=30).status_code == 200
        posted = api.post(slug, "Posted after the flood.")
        reader.sock.settimeout(1.0)
        change = reader.wait_for(lambda packet: packet.startswith('42["change"'), timeout=30)
        assert json.loads(change[2:])[1]["update"]["id"] == posted["id"]
    finally:
        reader.close()
        flooder.close()


@pytest.mark.slow
def test_a_websocket_flooding_subscribes_is_closed(server):
    live, api = server
    flood_and_check(live, api, "42" + json.dumps(["subscribe", {"article": "nothing-here"}]))
    assert "closed Socket.IO connection" in live.log()


@pytest.mark.slow
def test_a_websocket_flooding_frames_that_are_not_events_is_closed(server):
    """Upgrade packets (each answered with a noop) and junk run no handler: still counted."""
    live, api = server
    flood_and_check(live, api, "5")
    assert "sent frames too fast" in live.log()


@pytest.mark.slow
def test_a_polling_post_of_many_packets_closes_its_session(server):
    live, _api = server
    base = live.url + "/socket.io/?EIO=4&transport=polling"
    opened = requests.get(base, timeout=10)
    sid = json.loads(opened.text[1:])["sid"]
    session = f"{base}&sid={sid}"
    assert requests.post(session, data="40", timeout=10).text == "OK"
    assert requests.get(session, timeout=10).text.startswith("40")  # namespace connected
    subscribe = "42" + json.dumps(["subscribe", {"article": "nothing-here"}])
    for _ in range(10):  # engine.io decodes at most 16 packets from one POST
        requests.post(session, data="\x1e".join([subscribe] * 16), timeout=30)
    # The session is gone: its next poll is refused, as for a session that never was.
    wait_for(
        lambda: requests.get(session, timeout=10).status_code == 400,
        timeout=30,
        what="the flooding session to be closed",
    )
    assert requests.get(live.url + "/healthz", timeout=30).status_code == 200


@pytest.mark.slow
def test_refused_handshakes_are_not_counted_as_connections(tmp_path):
    env = {"METRICS_ENABLED": "1", "MAX_CONNECTIONS_PER_ADDRESS": "1"}
    with live_server_on_sqlite(tmp_path, **env) as (live, _token):
        base = live.url + "/socket.io/?EIO=4&transport=polling"
        first = requests.get(base, timeout=10)
        assert first.status_code == 200
        for _ in range(3):
            assert requests.get(base, timeout=10).status_code == 401
        sid = json.loads(first.text[1:])["sid"]
        requests.post(f"{base}&sid={sid}", data="1", timeout=10)  # engine.io close

        def gauge() -> float:
            for line in requests.get(live.url + "/metrics", timeout=10).text.splitlines():
                if line.startswith("liveblog_connections "):
                    return float(line.split()[1])
            raise AssertionError("no liveblog_connections in /metrics")

        wait_for(lambda: gauge() == 0, timeout=30, what="the connection gauge back at 0")


# --- the gate on its own ----------------------------------------------------------------


class Gated:
    """A real (threading) engine.io server whose message handler waits until released."""

    def __init__(self, rate: float, burst: int, max_pending: int) -> None:
        self.server = engineio.Server(async_mode="threading")
        self.release = threading.Event()
        self.handled: list[str] = []
        self.server.on("message", self._message)
        self.server.on("disconnect", lambda sid, reason=None: None)
        self.gate = EventGate(rate, burst, max_pending)
        self.gate.wrap(self.server)

    def _message(self, sid: str, data: str) -> None:
        self.handled.append(data)
        self.release.wait(10)

    def send(self, data: str, sid: str = "one") -> None:
        self.server.handlers["message"](sid, data)


def test_the_gate_closes_a_connection_past_its_burst():
    gated = Gated(rate=0.001, burst=5, max_pending=100)
    gated.release.set()
    for _ in range(8):
        gated.send("0")  # namespace connects: handled where they arrive
    assert gated.handled == ["0"] * 5
    assert gated.gate.closed == 1
    gated.send("0", sid="two")  # another connection has an allowance of its own
    assert len(gated.handled) == 6


def test_the_gate_bounds_the_handlers_waiting_per_connection():
    gated = Gated(rate=1000, burst=1000, max_pending=3)
    for _ in range(3):
        gated.send('2["subscribe",{}]')
    wait_for(lambda: len(gated.handled) == 3, what="three handlers running")
    assert gated.gate.closed == 0
    gated.send('2["subscribe",{}]')  # a fourth while three wait: the connection is closed
    assert gated.gate.closed == 1
    gated.send('2["subscribe",{}]')  # and what it sends afterwards is dropped unhandled
    gated.release.set()
    wait_for(lambda: gated.gate.budgets["one"].pending == 0, what="the handlers to finish")
    assert len(gated.handled) == 3


def test_the_gate_refills_at_its_rate():
    gated = Gated(rate=50, burst=2, max_pending=100)
    gated.release.set()
    gated.send("0")
    gated.send("0")  # the burst is spent
    time.sleep(0.1)  # at 50 a second, at least one more (sleep never returns early)
    gated.send("0")
    assert gated.gate.closed == 0
    assert len(gated.handled) == 3
    gated.send("0")
    gated.send("0")
    assert gated.gate.closed == 1
