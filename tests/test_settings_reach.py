"""Settings from the README's table that reach the part they drive, each read back there.

Each of these was once listed as not covered (tests/README.md): the behaviour behind it was
tested with its default, but nothing failed if the setting itself stopped being read.
"""

from __future__ import annotations

import logging
import runpy
import uuid
from pathlib import Path

import pytest

from liveblog import create_app, pagecache, scheduler
from liveblog.connections import GATE_EXTENSION
from liveblog.extensions import db
from tests.conftest import app_config, local_redis

ROOT = Path(__file__).resolve().parent.parent
REDIS = "redis://127.0.0.1:6379/0"


def fresh_app(tmp_path, **settings):
    app = create_app(app_config(f"sqlite:///{tmp_path / 'settings.sqlite'}", **settings))
    with app.app_context():
        db.create_all()
    return app


@pytest.mark.config(LOGIN_DEVICE_DAYS=2)
def test_login_device_days_is_the_device_cookies_lifetime(client, auth):
    assert auth.login().status_code == 302
    cookie = client.get_cookie("device", path="/editor/login")
    assert cookie is not None and cookie.max_age == 2 * 24 * 3600


def test_scheduler_enabled_0_leaves_the_loop_unstarted(tmp_path):
    off = fresh_app(tmp_path, TESTING=False, SCHEDULER_ENABLED=False)
    off.test_client().get("/healthz")
    assert scheduler.get(off).started is False


def test_a_serving_process_starts_its_scheduler_with_the_first_request(tmp_path):
    """The control for the test above: the same app with the setting on does start it."""
    on = fresh_app(tmp_path, TESTING=False, SCHEDULER_ENABLED=True, SCHEDULER_INTERVAL=0.05)
    loop = scheduler.get(on)
    try:
        on.test_client().get("/healthz")
        assert loop.started is True
    finally:
        loop.stop()


def test_scheduler_interval_and_listen_backlog_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCHEDULER_INTERVAL", "0.25")
    monkeypatch.setenv("LISTEN_BACKLOG", "77")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'env.sqlite'}"})
    assert app.config["SCHEDULER_INTERVAL"] == 0.25
    assert app.config["LISTEN_BACKLOG"] == 77  # what `python app.py` listens with


def test_make_serve_takes_listen_backlog_and_log_level(monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://news.example")
    monkeypatch.setenv("LISTEN_BACKLOG", "77")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    settings = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert settings["backlog"] == 77
    assert settings["loglevel"] == "warning"


def test_log_level_quiets_the_access_log(tmp_path, caplog):
    app = fresh_app(tmp_path, LOG_LEVEL="WARNING")
    assert logging.getLogger("liveblog.access").level == logging.WARNING
    with caplog.at_level(logging.DEBUG):
        # Buffered: the access line is written when the answer is closed, not when it starts.
        assert app.test_client().get("/robots.txt", buffered=True).status_code == 200
    assert not [r for r in caplog.records if r.name == "liveblog.access"]
    loud = fresh_app(tmp_path, LOG_LEVEL="INFO")
    with caplog.at_level(logging.DEBUG):
        loud.test_client().get("/robots.txt", buffered=True)
    assert [r for r in caplog.records if r.name == "liveblog.access"]


def test_socket_event_settings_are_what_the_gate_is_given(tmp_path):
    app = fresh_app(
        tmp_path, SOCKET_EVENTS_BURST=7, SOCKET_EVENTS_PER_SECOND=3, SOCKET_EVENTS_PENDING=2
    )
    gate = app.extensions[GATE_EXTENSION]
    assert (gate.burst, gate.rate, gate.max_pending) == (7, 3, 2)


@pytest.mark.config(PAGE_CACHE_TTL=77, PUBLIC_URL="https://news.example")
def test_page_cache_ttl_is_how_long_redis_keeps_a_page(app, client, story):
    connection = local_redis(REDIS)
    channel = f"test-ttl-{uuid.uuid4().hex[:10]}"
    app.config.update(REDIS_URL=REDIS, REDIS_CHANNEL=channel)
    pagecache.init_app(app)  # the page cache alone on Redis (see test_page_bounds.py)
    try:
        assert client.get(f"/articles/{story.slug}").status_code == 200
        keys = list(connection.scan_iter(match=f"{channel}:page:*"))
        assert len(keys) == 1
        assert 0 < connection.ttl(keys[0]) <= 77
    finally:
        for key in connection.scan_iter(match=f"{channel}:*"):
            connection.delete(key)
