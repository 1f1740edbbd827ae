"""What production needs beyond `make run`: host names the site answers to, story pages that
a shared cache may keep only when their links cannot be chosen by a client, and a readiness
probe that is cheap to ask. (`make serve` refusing to start without either setting is
tested with the rest of the deployment, in test_deploy.py.)"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.stories import links_on

URL = "/articles/election-night"


# --- host names -------------------------------------------------------------------------


@pytest.mark.config(ALLOWED_HOSTS=["news.example"])
def test_a_host_not_allowed_gets_400_everywhere(client, story):
    evil = {"Host": "evil.example"}
    page = client.get(URL, headers=evil)
    assert page.status_code == 400
    assert page.text == "This site does not answer to the host name 'evil.example'."
    assert b"evil.example/articles" not in page.data
    api = client.get("/api/articles", headers=evil)
    assert api.status_code == 400
    assert "does not answer to the host name" in api.get_json()["error"]
    # Socket.IO's requests never reach Flask's routing, and are refused all the same.
    polling = client.get("/socket.io/?EIO=4&transport=polling", headers=evil)
    assert polling.status_code == 400 and b'"sid"' not in polling.data


@pytest.mark.config(ALLOWED_HOSTS=["news.example", "live.example:8080"])
def test_allowed_hosts_are_served(client, story):
    for host in ("news.example", "live.example:8080"):
        page = client.get(URL, headers={"Host": host})
        assert page.status_code == 200, host
        assert links_on(page.text) == {f"http://{host}{URL}"}
    polling = client.get("/socket.io/?EIO=4&transport=polling", headers={"Host": "news.example"})
    assert polling.status_code == 200 and b'"sid"' in polling.data


def test_without_allowed_hosts_any_host_is_served(client, story):
    """`make run`, in development: no list, nothing refused."""
    assert client.get(URL, headers={"Host": "anything.example"}).status_code == 200


# --- what a shared cache may keep ---------------------------------------------------------


def test_a_development_server_keeps_readers_pages_shareable(client, story):
    """Neither PUBLIC_URL nor ALLOWED_HOSTS: `make run`, whose readers' pages the contract
    still promises shareable; `make serve` refuses to start so (test_deploy)."""
    control = client.get(URL).headers["Cache-Control"]
    assert "public" in control and "s-maxage=5" in control


@pytest.mark.config(ALLOWED_HOSTS=["news.example"])
def test_only_pages_for_an_allowed_host_are_made_at_all(client, story):
    control = client.get(URL, headers={"Host": "news.example"}).headers["Cache-Control"]
    assert "public" in control and "s-maxage=5" in control
    # A forged name gets no page to cache: the refusal is plain text, with no link in it.
    refused = client.get(URL, headers={"Host": "evil.example"})
    assert refused.status_code == 400 and "<link" not in refused.text


@pytest.mark.config(PUBLIC_URL="https://news.example")
def test_pages_linked_from_public_url_are_shared_whatever_the_host(client, story):
    page = client.get(URL, headers={"Host": "evil.example"})
    assert "public" in page.headers["Cache-Control"]
    assert links_on(page.text) == {f"https://news.example{URL}"}


# --- readiness ------------------------------------------------------------------------


class CountingProxy(socketserver.ThreadingTCPServer):
    """Redis behind a relay that counts the connections made to it."""

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.connections = 0
        super().__init__(("127.0.0.1", 0), Relay)


class Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1
        with socket.create_connection(self.server.upstream, timeout=10) as upstream:
            back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
            back.start()
            pipe(self.request, upstream)
            back.join(10)


def pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:  # the other side went away first
        pass


@pytest.fixture
def counted_redis() -> Iterator[CountingProxy]:
    proxy = CountingProxy(("127.0.0.1", 6379))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_readiness_probes_share_one_redis_connection(app, counted_redis):
    # Set after the app is made, so that only the probe uses this Redis.
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{counted_redis.server_address[1]}/6"
    client = app.test_client()
    for _ in range(5):
        ready = client.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ready")
    assert counted_redis.connections == 1
