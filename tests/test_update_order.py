"""The server renders a story's updates in the order the live page keeps them in: the cases
of tests/fixtures/stream.json, which static/js/stream.js is held to in Node
(tests/js/stream.test.mjs). An update that arrives live lands where a fresh load puts it."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from liveblog import services
from liveblog.extensions import db
from liveblog.models import Article, Editor, Update

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "stream.json").read_text())


def ids_on(html: str) -> list[int]:
    stream = html.split('id="updates"', 1)[1].split('id="no-updates"', 1)[0]
    return [int(found) for found in re.findall(r'<article [^>]*id="update-(\d+)"', stream)]


@pytest.mark.parametrize("case", FIXTURES["order"], ids=lambda case: case["name"])
def test_the_page_renders_updates_in_the_live_pages_order(app, client, editor, story, case):
    with app.app_context():
        article = db.session.get(Article, story.id)
        author = db.session.get(Editor, editor.id)
        real_id = {}  # the fixture's ids are the order the updates are posted in
        for fixture in sorted(case["updates"], key=lambda update: update["id"]):
            update = services.post_update(article, author, f"Update {fixture['id']}")
            real_id[fixture["id"]] = update.id
        for fixture in case["updates"]:
            row = db.session.get(Update, real_id[fixture["id"]])
            row.published_at = datetime.fromisoformat(fixture["published"])
            row.pinned = fixture["pinned"]
        db.session.commit()
    order = "oldest" if case["oldest_first"] else "newest"
    page = client.get(f"/articles/{story.slug}?order={order}")
    assert page.status_code == 200
    assert ids_on(page.get_data(as_text=True)) == [real_id[n] for n in case["expected"]]
