"""The connection cap's counts and release, and the event gate's rate, burst and backlog.

Both sit in front of engine.io's handlers; here a small stand-in for the engine.io server
records what reaches those handlers, and the clock is moved by hand.
"""

from __future__ import annotations

import pytest

from liveblog import connections
from liveblog.connections import AddressCap, Allowance, EventGate, client_address


class Socket:
    def __init__(self) -> None:
        self.closed_with: dict | None = None
        self.hung_up = False

    def liveblog_hang_up(self) -> None:
        self.hung_up = True

    def close(self, **how) -> None:
        self.closed_with = how


class Engine:
    """What the cap and the gate use of python-engineio's Server."""

    def __init__(self, accept=None) -> None:
        self.calls: list[tuple] = []
        self.tasks: list[tuple] = []
        self.sockets: dict[str, Socket] = {}
        self.accept = accept
        self.handlers = {
            "connect": self._connect,
            "disconnect": lambda sid, *args: self.calls.append(("disconnect", sid, *args)),
            "message": lambda sid, data: self.calls.append(("message", sid, data)),
        }

    def _connect(self, sid, environ, *args):
        self.calls.append(("connect", sid))
        self.connected_with = (environ, args)
        if isinstance(self.accept, Exception):
            raise self.accept
        return self.accept

    def on(self, name, handler) -> None:
        self.handlers[name] = handler

    def start_background_task(self, target, *args):
        self.tasks.append((target, args))

    def run_tasks(self) -> None:
        tasks, self.tasks = self.tasks, []
        for target, args in tasks:
            target(*args)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(connections.time, "monotonic", lambda: now[0])
    return now


def peer(address: str = "10.0.0.1", forwarded: str | None = None) -> dict:
    environ = {"REMOTE_ADDR": address}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return environ


def test_the_address_is_the_peers_unless_proxies_are_trusted():
    assert client_address(peer(forwarded="6.6.6.6"), 0) == "10.0.0.1"
    assert client_address({}, 0) == "unknown"
    assert client_address({"REMOTE_ADDR": ""}, 1) == "unknown"
    assert client_address(peer(forwarded=" 1.1.1.1 , 2.2.2.2 "), 1) == "2.2.2.2"
    assert client_address(peer(forwarded="1.1.1.1, 2.2.2.2"), 2) == "1.1.1.1"
    # fewer hops than configured, or an empty one: nothing trustworthy was added
    assert client_address(peer(forwarded="1.1.1.1, 2.2.2.2"), 3) == "10.0.0.1"
    assert client_address(peer(forwarded="1.1.1.1, "), 1) == "10.0.0.1"
    assert client_address(peer(), 1) == "10.0.0.1"


def test_the_cap_counts_each_address_and_releases_what_closes():
    cap = AddressCap(limit=2, trusted_proxies=0)
    assert cap.admit("a", peer()) is True
    assert cap.admit("b", peer()) is True
    assert cap.admit("c", peer()) is False
    assert cap.admit("d", peer("10.0.0.2")) is True
    assert (cap.open, cap.refused) == ({"10.0.0.1": 2, "10.0.0.2": 1}, 1)
    cap.release("a")
    assert cap.open == {"10.0.0.1": 1, "10.0.0.2": 1}
    cap.release("c")  # refused, so never counted: nothing to release
    cap.release("a")  # released once already
    assert cap.open == {"10.0.0.1": 1, "10.0.0.2": 1}
    assert cap.admit("e", peer()) is True
    assert cap.admit("f", peer()) is False
    for sid in ("b", "d", "e"):
        cap.release(sid)
    assert (cap.open, cap.address_of, cap.refused) == ({}, {}, 2)


def test_the_cap_counts_the_forwarded_address_behind_proxies():
    cap = AddressCap(limit=1, trusted_proxies=1)
    assert cap.admit("a", peer("10.0.0.9", "1.1.1.1")) is True
    assert cap.admit("b", peer("10.0.0.9", "2.2.2.2")) is True
    assert cap.admit("c", peer("10.0.0.9", "1.1.1.1")) is False


@pytest.mark.parametrize(
    ("accept", "kept"), [(None, True), (True, True), (False, False), ("no", False)]
)
def test_a_connection_the_server_refuses_is_released(accept, kept):
    engine = Engine(accept=accept)
    cap = AddressCap(limit=1, trusted_proxies=0)
    cap.wrap(engine)
    assert engine.handlers["connect"]("a", peer()) is accept
    assert cap.open == ({"10.0.0.1": 1} if kept else {})


def test_a_connect_handler_that_fails_releases_its_place():
    engine = Engine(accept=RuntimeError("database down"))
    cap = AddressCap(limit=1, trusted_proxies=0)
    cap.wrap(engine)
    with pytest.raises(RuntimeError):
        engine.handlers["connect"]("a", peer())
    assert cap.open == {}


def test_past_the_cap_the_server_never_sees_the_connection():
    engine = Engine()
    cap = AddressCap(limit=1, trusted_proxies=0)
    cap.wrap(engine)
    assert engine.handlers["connect"]("a", peer(), "auth") is None
    assert engine.connected_with == (peer(), ("auth",))  # passed on as it came
    assert engine.handlers["connect"]("b", peer()) is False
    assert engine.calls == [("connect", "a")]
    engine.handlers["disconnect"]("a", "client disconnect")
    assert engine.calls[-1] == ("disconnect", "a", "client disconnect")
    assert cap.open == {}
    assert engine.handlers["connect"]("c", peer()) is None


def test_the_allowance_is_a_burst_then_a_rate(clock):
    allowance = Allowance(rate=2, burst=3)
    assert [allowance.take() for _ in range(4)] == [True, True, True, False]
    clock[0] += 0.25  # half a token
    assert allowance.take() is False
    clock[0] += 0.25  # the other half
    assert allowance.take() is True
    assert allowance.take() is False
    clock[0] += 3600  # a long quiet spell earns the burst, no more
    assert [allowance.take() for _ in range(4)] == [True, True, True, False]


def gate(clock, rate=10.0, burst=5, max_pending=2) -> tuple[EventGate, Engine]:
    engine = Engine()
    engine.sockets["s"] = Socket()
    events = EventGate(rate=rate, burst=burst, max_pending=max_pending)
    events.wrap(engine)
    return events, engine


def test_packets_that_are_not_events_are_handled_where_they_arrive(clock):
    _, engine = gate(clock)
    for packet in ("0", "3[1]", "4", b"2binary", None):
        assert engine.handlers["message"]("s", packet) is None
    assert engine.calls == [
        ("message", "s", packet) for packet in ("0", "3[1]", "4", b"2binary", None)
    ]
    assert engine.tasks == []


def test_events_each_get_a_task_of_their_own(clock):
    events, engine = gate(clock)
    engine.handlers["message"]("s", '2["subscribe"]')
    engine.handlers["message"]("s", "5-binary")
    assert engine.calls == []  # not yet: they run as tasks
    engine.run_tasks()
    assert engine.calls == [("message", "s", '2["subscribe"]'), ("message", "s", "5-binary")]
    # both finished: room for two more
    engine.handlers["message"]("s", '2["a"]')
    engine.handlers["message"]("s", '2["b"]')
    assert len(engine.tasks) == 2 and events.closed == 0


def test_too_many_events_waiting_closes_the_connection(clock, caplog):
    events, engine = gate(clock, max_pending=2)
    for _ in range(3):
        engine.handlers["message"]("s", '2["subscribe"]')
    socket = engine.sockets["s"]
    assert (events.closed, socket.hung_up, socket.closed_with) == (
        1,
        True,
        {"wait": False, "abort": True},
    )
    assert caplog.messages == ["closed Socket.IO connection s: it had too many events waiting"]
    engine.run_tasks()  # what it had sent and not yet been read is never handled
    engine.handlers["message"]("s", "4")
    assert engine.calls == []
    assert events.closed == 1


def test_sending_faster_than_the_rate_closes_the_connection(clock, caplog):
    events, engine = gate(clock, rate=1, burst=2, max_pending=10)
    engine.handlers["message"]("s", "0")
    engine.handlers["message"]("s", "0")
    assert events.closed == 0
    clock[0] += 1
    engine.handlers["message"]("s", "0")
    assert events.closed == 0
    engine.handlers["message"]("s", "0")
    assert events.closed == 1
    assert engine.sockets["s"].closed_with == {"wait": False, "abort": True}
    assert len(engine.calls) == 3
    assert [record.getMessage() for record in caplog.records] == [
        "closed Socket.IO connection s: it sent messages too fast"
    ]


class PollingSocket:
    """A long-polling connection: nothing to hang up, only an engine.io socket to close."""

    closed_with = None

    def close(self, **how) -> None:
        self.closed_with = how


def test_every_closing_is_counted_and_a_polling_one_closed_too(clock, caplog):
    events, engine = gate(clock, rate=1, burst=1)
    engine.sockets["p"] = PollingSocket()
    for sid in ("s", "s", "p", "p"):
        engine.handlers["message"](sid, "0")
    assert events.closed == 2
    assert engine.sockets["p"].closed_with == {"wait": False, "abort": True}
    assert "closed Socket.IO connection p: it sent messages too fast" in caplog.text


def test_each_connection_has_its_own_budget(clock):
    events, engine = gate(clock, rate=1, burst=1)
    engine.handlers["message"]("s", "0")
    engine.handlers["message"]("t", "0")  # no socket left to close: counted all the same
    engine.handlers["message"]("t", "0")
    assert events.closed == 1
    assert engine.sockets["s"].closed_with is None


def test_a_closed_connection_is_forgotten_and_its_waiting_events_dropped(clock):
    events, engine = gate(clock)
    engine.handlers["message"]("s", '2["subscribe"]')
    engine.handlers["disconnect"]("s", "transport close")
    assert engine.calls == [("disconnect", "s", "transport close")]
    assert events.budgets == {}
    engine.run_tasks()
    assert engine.calls == [("disconnect", "s", "transport close")]
    engine.handlers["disconnect"]("unknown")  # never sent anything: still passed on
    assert engine.calls[-1] == ("disconnect", "unknown")


def test_a_packet_that_cannot_be_handled_is_logged_and_frees_its_place(clock, monkeypatch):
    logged = []
    monkeypatch.setattr(connections, "log_malformed", lambda *args: logged.append(args))
    engine = Engine()

    def broken(sid, data):
        raise ValueError("bad packet")

    engine.handlers["message"] = broken
    events = EventGate(rate=10, burst=5, max_pending=1)
    events.wrap(engine)
    engine.handlers["message"]("s", '2["x"]')
    engine.run_tasks()
    assert [(args[0], args[1], args[2], str(args[3])) for args in logged] == [
        (engine, "s", '2["x"]', "bad packet")
    ]
    engine.handlers["message"]("s", '2["y"]')  # its place was freed, and only its place
    assert events.closed == 0
    engine.handlers["message"]("s", '2["z"]')
    assert events.closed == 1


def test_the_settings_reach_the_gate_and_the_cap(app):
    events = app.extensions[connections.GATE_EXTENSION]
    assert (events.rate, events.burst, events.max_pending) == (
        app.config["SOCKET_EVENTS_PER_SECOND"],
        app.config["SOCKET_EVENTS_BURST"],
        app.config["SOCKET_EVENTS_PENDING"],
    )
    cap = app.extensions[connections.EXTENSION]
    assert (cap.limit, cap.trusted_proxies) == (
        app.config["MAX_CONNECTIONS_PER_ADDRESS"],
        app.config["TRUSTED_PROXIES"],
    )


@pytest.mark.config(MAX_CONNECTIONS_PER_ADDRESS=0)
def test_zero_connections_per_address_means_no_cap(app):
    assert connections.EXTENSION not in app.extensions
    assert connections.GATE_EXTENSION in app.extensions


@pytest.mark.config(MAX_CONNECTIONS_PER_ADDRESS=1)
def test_a_cap_of_one_is_a_cap(app):
    assert app.extensions[connections.EXTENSION].limit == 1
