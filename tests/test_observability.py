"""Logs, metrics and health probes: what an operator reads and scrapes."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests
import websocket
from prometheus_client.parser import text_string_to_metric_families

from liveblog import create_app
from liveblog.extensions import db
from tests.conftest import app_config
from tests.liveserver import Api, reader

# --- logs -----------------------------------------------------------------------------


def access_lines(caplog) -> list[str]:
    """The access log's lines as the application's own handler writes them."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "liveblog")
    return [handler.format(r) for r in caplog.records if r.name == "liveblog.access"]


def test_one_json_line_per_request(tmp_path, caplog):
    app = create_app(app_config(f"sqlite:///{tmp_path / 'db.sqlite'}", LOG_FORMAT="json"))
    with app.app_context():
        db.create_all()
    with caplog.at_level(logging.INFO):
        client = app.test_client()
        client.get("/api/articles?x=1", environ_base={"REMOTE_ADDR": "192.0.2.7"}).close()
    lines = access_lines(caplog)
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["message"] == f"GET /api/articles?x=1 200 {record['duration_ms']}ms 192.0.2.7"
    expected = {"level": "INFO", "method": "GET", "status": 200, "remote_addr": "192.0.2.7"}
    assert expected.items() <= record.items()
    assert record["path"] == "/api/articles?x=1" and "time" in record


def test_text_lines_by_default(client, caplog):
    with caplog.at_level(logging.INFO):
        client.get("/healthz").close()  # the line is written when the answer is done
    [line] = access_lines(caplog)
    assert " INFO liveblog.access: GET /healthz 200 " in line
    assert line.endswith("ms None") or line.endswith("ms 127.0.0.1")


def frames(url: str, packets: list[str]) -> None:
    """A raw WebSocket that connects to the default namespace and sends `packets`."""
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=5
    )
    try:
        ws.recv()  # Engine.IO open
        ws.send("40")
        ws.recv()  # Socket.IO connect
        for packet in packets:
            ws.send(packet)
        time.sleep(0.3)  # let the server read them all before the close
    finally:
        ws.close()


@pytest.mark.slow
def test_malformed_packets_logged_once_per_connection(live_server):
    server, token = live_server
    # Three of each: as many as a connection may send at once (SOCKET_EVENTS_BURST, 30)
    # before it is closed for sending too fast, which is not what this test is about.
    garbage = ["42xyz", "4", "42[", "43abc", "4Z", "45-x", "42", "42[null]"] * 3
    frames(server.url, garbage)
    frames(server.url, garbage)
    frames(server.url, ["x-not-engine-io"])  # Engine.IO itself cannot decode it
    polling = server.url + "/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(polling, timeout=5).text[1:])["sid"]
    for body in ["40", *["xx", "42xyz"] * 10]:  # over the polling transport
        requests.post(f"{polling}&sid={sid}", data=body, timeout=5)
    slug = Api(server.url, token).new_story()
    with reader(server.url) as sio:  # and the server serves everyone as before
        assert sio.subscribe(slug) == {"ok": True, "seq": 0}
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    # One line per connection: two WebSockets of bad Socket.IO packets, one WebSocket and one
    # polling session of bad Engine.IO packets (its bad Socket.IO ones then go unlogged).
    assert log.count("malformed Socket.IO packet") == 2, log[-3000:]
    assert log.count("malformed Engine.IO packet") == 2, log[-3000:]
    assert len(log) < 20_000  # 70 bad packets, a few lines


@pytest.mark.slow
def test_socket_connect_and_disconnect_logged(live_server):
    server, _ = live_server
    with reader(server.url) as sio:
        sid = sio.eio.sid
    for _ in range(50):
        if f"socket disconnect {sid}" in server.log():
            break
        time.sleep(0.1)
    log = server.log()
    assert f"socket connect {sid} from 127.0.0.1 (websocket)" in log
    assert f"socket disconnect {sid} (" in log


# --- metrics --------------------------------------------------------------------------


def test_metrics_are_off_by_default(client):
    assert client.get("/metrics").status_code == 404


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {family.name: family.samples for family in families}


def value(samples: list, **labels: str) -> float:
    return sum(s.value for s in samples if labels.items() <= s.labels.items())


@pytest.mark.config(METRICS_ENABLED=True)
def test_metrics_count_readers_subscriptions_and_deliveries(
    app, client, socket_client, story, bearer
):
    before = scrape(client)
    assert socket_client.emit("subscribe", {"article": story.slug}, callback=True)["ok"]
    response = client.post(
        f"/api/articles/{story.slug}/updates", json={"body": "x"}, headers=bearer
    )
    assert response.status_code == 201
    after = scrape(client)
    assert value(after["liveblog_subscriptions"], story=story.slug) == 1
    delivered = after["liveblog_changes_delivered"]
    assert value(delivered) - value(before["liveblog_changes_delivered"]) == 1
    per_reader = after["liveblog_change_deliveries"]
    assert value(per_reader) - value(before["liveblog_change_deliveries"]) == 1
    timed = after["liveblog_post_to_broadcast_seconds"]
    previously = before["liveblog_post_to_broadcast_seconds"]
    assert value(timed, le="+Inf") - value(previously, le="+Inf") == 1
    assert {"liveblog_queued_packets", "liveblog_queued_packets_max"} <= after.keys()
    assert "liveblog_connections" in after


# --- health ---------------------------------------------------------------------------


def test_healthz_and_readyz(client):
    health = client.get("/healthz")
    assert (health.status_code, health.text) == (200, "ok")
    ready = client.get("/readyz")
    assert (ready.status_code, ready.text) == (200, "ready")


def test_readyz_names_the_database_when_it_is_gone(tmp_path):
    missing = tmp_path / "no-such-folder" / "db.sqlite"  # SQLite cannot open it
    app = create_app(app_config(f"sqlite:///{missing}"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "database unavailable" in response.text


def test_readyz_names_redis_when_it_is_gone(tmp_path):
    # Nothing listens on port 1, so the connection is refused at once.
    app = create_app(app_config(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.text == "redis unavailable (ConnectionError)"
