"""A story's content made and read as the tests need it: many updates through the write path,
and the addresses a page names for itself."""

from __future__ import annotations

import re

from flask import Flask

from liveblog import services
from liveblog.extensions import db
from liveblog.models import Article, Editor


def post_many(
    app: Flask, count: int, body: str = "Update number {n}.", slug: str = "election-night", **fields
) -> list[int]:
    """`count` updates by the first editor through the write path, oldest first; their ids."""
    with app.app_context():
        story = Article.by_slug(slug)
        editor = db.session.scalar(db.select(Editor))
        return [
            services.post_update(story, editor, body=body.format(n=n), **fields).id
            for n in range(count)
        ]


def links_on(html: str) -> set[str]:
    """The page's own address, as search engines and link previews read it."""
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', html).group(1)
    og_url = re.search(r'<meta property="og:url" content="([^"]+)"', html).group(1)
    return {canonical, og_url}
