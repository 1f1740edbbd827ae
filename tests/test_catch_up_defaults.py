"""The catch-up limits as shipped (README: "at most 1,000 changes" and MAX_CATCH_UP_BYTES,
2 MiB): a reconnecting reader that missed up to those is sent every change it missed; one
further behind is told to reload, and sent nothing past the limit."""

from __future__ import annotations

import pytest

from liveblog import services
from liveblog.changes import wire_size
from liveblog.extensions import db
from liveblog.models import Article, Change, Editor
from liveblog.relay import relay

pytestmark = pytest.mark.slow  # a thousand and one writes

SLUG = "election-night"


def post(app, editor, bodies: list[str]) -> None:
    with app.app_context():
        article = Article.by_slug(SLUG)
        author = db.session.get(Editor, editor.id)
        for body in bodies:
            services.post_update(article, author, body)


def subscribe(sio, since: int) -> dict:
    return sio.emit("subscribe", {"article": SLUG, "since": since}, callback=True)


def received(sio) -> list[int]:
    with sio.app.app_context():
        relay.drain()
    return [event["args"][0]["seq"] for event in sio.get_received() if event["name"] == "change"]


def test_the_defaults_are_the_documented_ones(app):
    assert app.config["MAX_CATCH_UP"] == 1000
    assert app.config["MAX_CATCH_UP_BYTES"] == 2 * 1024 * 1024


def test_a_thousand_missed_changes_are_sent_and_one_more_reloads(app, editor, story, socket_client):
    post(app, editor, [f"Update {n}." for n in range(1, 1002)])
    ack = subscribe(socket_client, since=0)  # 1,001 behind
    assert ack["ok"] is False and ack["reload"] is True
    assert "1000 changes" in ack["error"]
    assert received(socket_client) == []
    ack = subscribe(socket_client, since=1)  # exactly 1,000 behind
    assert ack == {"ok": True, "seq": 1001}
    assert received(socket_client) == list(range(2, 1002))


def test_two_mebibytes_of_missed_changes_are_sent_and_more_reloads(
    app, editor, story, socket_client
):
    big = "A long paragraph of a large update. " * 500  # about 18,000 characters
    post(app, editor, [f"Update {n}. {big}" for n in range(1, 81)])
    with app.app_context():
        sizes = [
            wire_size(change.payload)
            for change in db.session.scalars(db.select(Change).order_by(Change.seq))
        ]
    cap = 2 * 1024 * 1024
    assert sum(sizes) > cap  # all 80 weigh more than the cap: too far behind
    # The most recent changes that fit under the cap, and one more that does not.
    fits = max(k for k in range(len(sizes) + 1) if sum(sizes[len(sizes) - k :]) <= cap)
    assert 10 < fits < 80
    ack = subscribe(socket_client, since=80 - fits - 1)
    assert ack["ok"] is False and ack["reload"] is True and "bytes" in ack["error"]
    assert len(received(socket_client)) < fits + 1  # stopped at the cap
    ack = subscribe(socket_client, since=80 - fits)
    assert ack == {"ok": True, "seq": 80}
    assert received(socket_client) == list(range(80 - fits + 1, 81))
