"""Readers' pages: the list of stories, each story, one update's permalink, the feed."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from . import services
from .models import Article, iso

bp = Blueprint("reader", __name__)
bp.add_app_template_filter(iso, "iso")  # the API's time format, in templates too


@bp.get("/")
def index() -> str:
    return render_template("reader/index.html", articles=Article.listing())


@bp.get("/healthz")
def healthz() -> Response:
    """The app answering through the same WSGI stack as the pages, and nothing more."""
    return Response("ok", mimetype="text/plain")


@bp.get("/articles/<slug>")
def article(slug: str) -> str:
    story = services.get_article(slug)
    return render_template("reader/article.html", article=story, updates=story.page_updates())


@bp.get("/articles/<slug>/updates/<int:update_id>")
def permalink(slug: str, update_id: int) -> str:
    story = services.get_article(slug)
    update = services.get_update(story, update_id)
    return render_template("reader/permalink.html", article=story, update=update)


@bp.get("/articles/<slug>/feed.atom")
def feed(slug: str) -> Response:
    story = services.get_article(slug)
    body = render_template(
        "reader/feed.xml", article=story, updates=story.current_updates(limit=50)
    )
    return Response(body, mimetype="application/atom+xml")
