"""With REDIS_URL, a story page rendered by one process is served by the others without
rendering it again (README: "processes render a page once between them"), and a change
makes one of them render the new page once for all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from flask import Flask, template_rendered

from liveblog import create_app, services
from liveblog.extensions import db
from liveblog.models import Article, Editor
from tests.conftest import app_config

REDIS_URL = "redis://127.0.0.1:6379/3"
PAGE = "/articles/election-night"
TEMPLATES = {PAGE: "reader/article.html", f"{PAGE}/embed": "reader/embed.html"}

# An app made here with REDIS_URL must not leave later tests on its message queue.
pytestmark = pytest.mark.usefixtures("socketio_left_as_found")


class Renders:
    """How many times each app rendered each story template."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str], int] = {}

    def __call__(self, app: Flask, template, **_context) -> None:
        key = (id(app), template.name)
        self.counts[key] = self.counts.get(key, 0) + 1

    def of(self, app: Flask, path: str) -> int:
        return self.counts.get((id(app), TEMPLATES[path]), 0)


@pytest.fixture
def two_processes(tmp_path) -> Iterator[tuple[Flask, Flask, Renders]]:
    """Two apps as two server processes would be: one database, one Redis, one channel."""
    channel = f"test-shared-pages-{uuid.uuid4().hex[:10]}"
    settings = {"PUBLIC_URL": "https://news.example", "REDIS_URL": REDIS_URL}
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    apps = [create_app(app_config(url, REDIS_CHANNEL=channel, **settings)) for _ in range(2)]
    with apps[0].app_context():
        db.create_all()
        services.create_article("Election night", slug="election-night", body="Intro")
        services.create_editor("alice", "correct horse battery")
    renders = Renders()
    for app in apps:
        template_rendered.connect(renders, app)
    yield apps[0], apps[1], renders
    for app in apps:
        template_rendered.disconnect(renders, app)
        with app.app_context():
            db.engine.dispose()
    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter(match=f"{channel}:*"):
        connection.delete(key)
    connection.close()


def post(app: Flask, body: str) -> None:
    with app.app_context():
        article = Article.by_slug("election-night")
        services.post_update(article, db.session.get(Editor, 1), body)


@pytest.mark.parametrize("path", list(TEMPLATES))
def test_a_page_rendered_by_one_process_is_served_by_the_other(two_processes, path):
    first, second, renders = two_processes
    page = first.test_client().get(path)
    assert page.status_code == 200
    assert (renders.of(first, path), renders.of(second, path)) == (1, 0)

    elsewhere = second.test_client().get(path)
    assert elsewhere.status_code == 200
    assert elsewhere.data == page.data
    assert elsewhere.headers["ETag"] == page.headers["ETag"]
    assert (renders.of(first, path), renders.of(second, path)) == (1, 0), "rendered twice"

    post(first, "Polls have closed.")  # a new seq: a new page, rendered once for both
    fresh = second.test_client().get(path)
    assert b"Polls have closed." in fresh.data
    assert (renders.of(first, path), renders.of(second, path)) == (1, 1)
    assert first.test_client().get(path).data == fresh.data
    assert (renders.of(first, path), renders.of(second, path)) == (1, 1), "rendered twice"
