"""A cap on the Socket.IO connections one address may hold, against a real server process.

The test client opens no connections of its own to count; these are real WebSockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests
import websocket

from liveblog.connections import client_address
from tests.liveserver import LiveServer, live_server_on_sqlite

CAP = 5


def open_socket(url: str, forwarded_for: str | None = None) -> websocket.WebSocket:
    """An engine.io WebSocket connection; raises if the handshake is refused."""
    headers = [f"X-Forwarded-For: {forwarded_for}"] if forwarded_for else None
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        timeout=5,
        header=headers,
    )
    try:
        opened = ws.recv()
    except websocket.WebSocketException:
        opened = ""
    if not opened.startswith("0{"):  # engine.io's open packet: the connection was accepted
        ws.shutdown()  # close() leaves the socket open once the server has closed it
        raise ConnectionError("closed before engine.io opened")
    return ws


def refused(url: str, forwarded_for: str | None = None) -> bool:
    """Whether a new connection from this address is turned away, on either transport.

    gevent-websocket completes the WebSocket handshake before engine.io sees the request,
    so there a refusal is a socket closed before engine.io's open packet; long-polling gets
    its handshake answered 401.
    """
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    polling = requests.get(
        url + "/socket.io/?EIO=4&transport=polling", headers=headers, timeout=5
    ).status_code
    try:
        open_socket(url, forwarded_for).close()
    except (AssertionError, websocket.WebSocketException, ConnectionError):
        assert polling == 401
        return True
    assert polling == 200
    return False


@pytest.fixture
def capped(tmp_path, request) -> Iterator[LiveServer]:
    env = {"MAX_CONNECTIONS_PER_ADDRESS": str(CAP), **getattr(request, "param", {})}
    with live_server_on_sqlite(tmp_path, **env) as (server, _token):
        yield server


@pytest.mark.slow
def test_one_address_gets_the_cap_and_pages_are_still_served(capped):
    with ExitStack() as stack:
        for _ in range(CAP):
            stack.callback(open_socket(capped.url).close)
        assert refused(capped.url)
        assert requests.get(capped.url + "/", timeout=5).status_code == 200
        assert requests.get(capped.url + "/api/articles", timeout=5).status_code == 200
    # Closed connections are given back: the address may connect again.
    for _ in range(50):
        if not refused(capped.url):
            break
    else:
        pytest.fail("connections were not released when they closed")


@pytest.mark.slow
@pytest.mark.parametrize("capped", [{"TRUSTED_PROXIES": "1"}], indirect=True)
def test_addresses_behind_a_proxy_are_counted_apart(capped):
    with ExitStack() as stack:
        for _ in range(CAP):
            stack.callback(open_socket(capped.url, "203.0.113.7").close)
        assert refused(capped.url, "203.0.113.7")
        # Another reader behind the same proxy is a different address.
        stack.callback(open_socket(capped.url, "198.51.100.2").close)


@pytest.mark.slow
@pytest.mark.parametrize("capped", [{"MAX_CONNECTIONS_PER_ADDRESS": "0"}], indirect=True)
def test_zero_turns_the_cap_off(capped):
    with ExitStack() as stack:
        for _ in range(CAP + 3):
            stack.callback(open_socket(capped.url).close)


@pytest.mark.parametrize(
    ("forwarded", "hops", "address"),
    [
        (None, 0, "10.0.0.1"),
        ("203.0.113.7", 0, "10.0.0.1"),  # no proxy trusted: the header is anyone's to forge
        ("203.0.113.7", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # the client's own claim is not trusted
        ("203.0.113.7, 10.0.0.9", 2, "203.0.113.7"),
        ("203.0.113.7", 2, "10.0.0.1"),  # fewer hops than configured: none is trusted
    ],
)
def test_client_address_through_trusted_proxies(forwarded, hops, address):
    environ = {"REMOTE_ADDR": "10.0.0.1"}
    if forwarded:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(environ, hops) == address
