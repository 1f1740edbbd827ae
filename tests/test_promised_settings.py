"""Settings the README's table names, each shown to govern what it says (the tests of their
behaviour run at the defaults)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from liveblog import services
from liveblog.extensions import db
from liveblog.models import Article, Editor

ATOM = {"a": "http://www.w3.org/2005/Atom"}


def post_many(app, story_id: int, editor_id: int, count: int) -> None:
    with app.app_context():
        article = db.session.get(Article, story_id)
        author = db.session.get(Editor, editor_id)
        for n in range(count):
            services.post_update(article, author, f"Update {n}.")


@pytest.mark.config(API_PAGE_MAX=3)
def test_api_page_max_is_the_most_updates_in_one_answer(app, client, editor, story):
    post_many(app, story.id, editor.id, 5)
    answer = client.get(f"/api/articles/{story.slug}/updates?limit=200").get_json()
    assert len(answer["updates"]) == 3
    assert answer["more"] is True and answer["next"]


@pytest.mark.config(FEED_SIZE=2)
def test_feed_size_is_the_entries_in_one_feed_document(app, client, editor, story):
    post_many(app, story.id, editor.id, 5)
    feed = ET.fromstring(client.get(f"/articles/{story.slug}/feed.atom").data)
    assert len(feed.findall("a:entry", ATOM)) == 2
    assert feed.find("a:link[@rel='next']", ATOM) is not None
