"""Readers' pages: the list of stories, each story a page at a time, permalinks, feeds.

A story page costs the same at any length: the pinned update and one page of the stream,
read by index, rendered once per story, seq and view (liveblog/pagecache.py), and answered
with an ETag naming the seq, so a shared cache or a returning browser often needs no body.
A render reads the plain-text excerpts kept at write time, never strips an update's HTML,
and each client address may only cause so many of them (PAGE_RENDER_RATE_LIMIT).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    get_flashed_messages,
    render_template,
    request,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse
from markupsafe import escape

from . import pagecache, services
from .api import int_arg, within_bytes
from .extensions import limiter
from .models import Article, Update, iso, utcnow
from .rendering import shorten
from .security import CONTENT_SECURITY_POLICY

bp = Blueprint("reader", __name__)
bp.add_app_template_filter(iso, "iso")  # the API's time format, in templates too
bp.record_once(lambda state: pagecache.init_app(state.app))

ORDERS = ("newest", "oldest")
WITH_CONTEXT = 3  # newer updates shown above an old one opened with ?with=
MAX_KEY_EVENTS = 50
MAX_PINNED = 5


def absolute_url(endpoint: str, **values: Any) -> str:
    """An absolute link: from PUBLIC_URL when it is set, else from the request's own address."""
    base = current_app.config["PUBLIC_URL"]
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


@bp.app_template_global()
def absolute(endpoint: str, **values: Any) -> str:
    return absolute_url(endpoint, **values)


# Excerpts (rendering.excerpt, kept on each update and story) cut shorter for display.
bp.add_app_template_filter(shorten, "shorten")


def page_cursor(story: Article, update_id: int) -> Update:
    """The published update a page or feed continues after; anything else is an unknown id,
    so that paging cannot tell anyone that a draft or scheduled update exists."""
    after = story.cursor(update_id)
    if after is None:
        abort(404, "That story has no such update.")
    return after


@dataclass
class StoryView:
    """Which slice of a story one request asks for, and what it holds."""

    order: str = "newest"
    before: int | None = None  # the update this page continues after, in page order
    target: int | None = None  # ?with=: an update the page must include
    pinned: list[Update] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    more: bool = False  # another page follows this one
    head: bool = True  # the page starts where new updates arrive

    @property
    def key(self) -> str:
        return f"{self.order}:{self.before or ''}:{self.target or ''}"

    @classmethod
    def from_request(cls) -> StoryView:
        order = request.args.get("order", "newest")
        if order not in ORDERS:
            abort(400, "order must be newest or oldest.")
        return cls(order, int_arg("before", None, low=1), int_arg("with", None, low=1))

    def load(self, story: Article, size: int) -> None:
        oldest = self.order == "oldest"
        after = None
        if self.before is not None:
            after = page_cursor(story, self.before)
            self.head = False
        elif self.target is not None:
            after = self._around(story, size)
        if self.head:
            self.pinned = story.stream(pinned=True, limit=MAX_PINNED)
        page = story.stream(after, oldest_first=oldest, limit=size + 1, pinned=False)
        if self.target is not None and not self.head and not oldest:
            page = [after, *page]  # the page opens with the cursor itself
        self.updates, self.more = page[:size], len(page) > size

    def _around(self, story: Article, size: int) -> Update | None:
        """The cursor for a page that holds update `target` (None: the first page does)."""
        target = services.get_update(story, self.target)
        if target.pinned:
            return None
        if self.order == "oldest":  # open at the update itself
            older = story.stream(target, limit=1, pinned=False)
            self.head = not older
            return older[0] if older else None
        if story.count_between(target) < size:
            return None
        self.head = False  # a few newer updates above it, then it and older ones
        newer = story.stream(target, oldest_first=True, limit=WITH_CONTEXT, pinned=False)
        return newer[-1]


def story_context(story: Article, view: StoryView) -> dict[str, Any]:
    """Everything the story templates read beside the updates themselves."""
    on_page = {update.id for update in (*view.pinned, *view.updates)}
    last = view.updates[-1] if view.updates else None
    return {
        "article": story,
        "view": view,
        "updates": [*view.pinned, *view.updates],
        "on_page": on_page,
        "key_events": story.key_events(MAX_KEY_EVENTS),
        "next_url": next_url(story, view, last),
        "json_ld": live_blog_posting(story, view.updates, view.pinned),
        "description": shorten(story.excerpt, 160) or f"Live updates: {story.title}",
    }


def next_url(story: Article, view: StoryView, last: Update | None) -> str | None:
    if not (view.more and last):
        return None
    order = None if view.order == "newest" else view.order
    return url_for("reader.article", slug=story.slug, order=order, before=last.id)


def live_blog_posting(story: Article, updates: list[Update], pinned: list[Update]) -> dict:
    """schema.org LiveBlogPosting for the updates on the page; the template escapes it
    with |tojson, which turns <, > and & into \\u escapes, so no text can end the script."""
    url = absolute_url("reader.article", slug=story.slug)
    posting = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "headline": story.title,
        "description": shorten(story.excerpt, 160),
        "url": url,
        "datePublished": iso(story.created_at),
        "coverageStartTime": iso(story.created_at),
        "liveBlogUpdate": [
            {
                "@type": "BlogPosting",
                "headline": update.headline or shorten(update.excerpt, 110),
                "datePublished": iso(update.published_at),
                "url": f"{url}#update-{update.id}",
                "articleBody": update.excerpt,
                **({"dateModified": iso(update.edited_at)} if update.edited_at else {}),
            }
            for update in (*pinned, *updates)
        ],
    }
    if story.status == "ended" and story.ended_at:
        posting["coverageEndTime"] = iso(story.ended_at)
    return posting


def cacheable(response: Response, etag: str, signed_in: bool) -> Response:
    """Readers' copies may be kept by shared caches for PAGE_MAX_AGE seconds (the page names
    its seq, so the live script catches up whatever a copy lacks); editors' never.

    A page's links may come from its Host, but only a Host that passed ALLOWED_HOSTS (which
    `make serve` requires, or PUBLIC_URL), and caches key pages on that same Host: a page is
    never handed to readers who asked under another name (deploy/nginx.conf keys and
    forwards one value).
    """
    response.set_etag(etag)
    response.vary.add("Cookie")
    age = current_app.config["PAGE_MAX_AGE"]
    if signed_in:
        response.cache_control.private = True
        response.cache_control.no_cache = True
    else:
        response.cache_control.public = True
        response.cache_control.max_age = age
        response.cache_control.s_maxage = age
    return response


def links_are_fixed() -> bool:
    """Whether this request's absolute links are the site's own, whatever the client sent:
    from PUBLIC_URL, or from a Host named exactly, port included, in ALLOWED_HOSTS (Flask's
    check of the Host ignores the port). Only such pages go to Redis, so that no Host a
    client makes up can add a key there."""
    config = current_app.config
    return bool(config["PUBLIC_URL"]) or request.host in config["ALLOWED_HOSTS"]


def digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def site_base() -> str:
    """The address absolute links start with: PUBLIC_URL, or else the request's own."""
    return current_app.config["PUBLIC_URL"] or request.host_url


def shared_key(story: Article, view: StoryView, template: str) -> str | None:
    """Where Redis keeps this page for every process, or None when it is not shared.

    Only head pages (no `before`, no `with`), and only for an address the site names itself
    by (PUBLIC_URL, or a Host listed exactly, port and all, in ALLOWED_HOSTS): so Redis
    holds a few keys per story, and no request header or query can add one.
    """
    if view.before is not None or view.target is not None or not links_are_fixed():
        return None
    return f"{story.slug}:{digest(site_base(), template, view.order)}"


def count_render() -> None:
    """Count a fresh render against the client's address; over PAGE_RENDER_RATE_LIMIT, 429.

    The counts live in the rate limiter's storage (Redis in production), so every process
    counts together.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    limit = current_app.config["PAGE_RENDER_RATE_LIMIT"]
    try:
        allowed = limiter.limiter.hit(parse(limit), "page-render", get_remote_address())
    except Exception:  # storage down: as RATELIMIT_SWALLOW_ERRORS does, serve, don't fail
        current_app.logger.exception("the page render count could not be kept")
        allowed = True
    if not allowed:
        abort(
            429,
            f"Your address has asked for too many story pages that had to be built afresh "
            f"(the limit is {limit}). Wait a minute, or read the story's latest page.",
        )


def story_response(story: Article, view: StoryView, template: str) -> Response:
    """The page for `view` at the story's seq: a 304, a cached body, or a fresh render."""
    signed_in = current_user.is_authenticated
    page = digest(site_base(), template, view.key)
    etag = f"seq-{story.seq}-{page}{'-editor' if signed_in else ''}"
    response = cacheable(Response(mimetype="text/html"), etag, signed_in)
    if request.if_none_match.contains(etag):
        return response.make_conditional(request)
    # Editors' pages carry their name and a CSRF token, and a flash belongs to one reader.
    personal = signed_in or get_flashed_messages()

    def render() -> str:
        if not personal:  # editors are trusted with renders; readers' are counted
            count_render()
        view.load(story, current_app.config["PAGE_SIZE"])
        return render_template(template, **story_context(story, view))

    shared = shared_key(story, view, template)
    key = f"{story.slug}:{page}"
    response.set_data(render() if personal else pagecache.cached(key, story.seq, render, shared))
    return response.make_conditional(request)


@bp.get("/")
def index() -> str:
    return render_template(
        "reader/index.html", articles=Article.listing(), last=Article.last_updates()
    )


@bp.get("/articles/<slug>")
def article(slug: str) -> Response:
    story = services.get_article(slug)
    view = StoryView.from_request()  # checks the arguments before anything is cached
    return story_response(story, view, "reader/article.html")


# The site's own policy, with framing opened to any site: the one difference between them.
EMBED_CSP = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'self'", "frame-ancestors *")


@bp.get("/articles/<slug>/embed")
def embed(slug: str) -> Response:
    """The live story alone, for an iframe on another site: the one page that may be framed."""
    story = services.get_article(slug)
    response = story_response(story, StoryView.from_request(), "reader/embed.html")
    response.headers["Content-Security-Policy"] = EMBED_CSP
    return response


@bp.get("/articles/<slug>/updates/<int:update_id>")
def permalink(slug: str, update_id: int) -> str:
    story = services.get_article(slug)
    update = services.get_update(story, update_id)
    return render_template("reader/permalink.html", article=story, update=update)


@bp.get("/articles/<slug>/feed.atom")
def feed(slug: str) -> Response:
    """The story's updates, newest first, a page at a time (RFC 5005): FEED_SIZE entries and
    MAX_FEED_BYTES of their content at most; `<link rel="next">` names the older ones."""
    story = services.get_article(slug)
    before = int_arg("before", None, low=1)
    after = page_cursor(story, before) if before is not None else None
    size = current_app.config["FEED_SIZE"]
    found = story.stream(after, limit=size + 1)
    updates = within_bytes(
        found[:size],
        current_app.config["MAX_FEED_BYTES"],
        lambda update: len(str(escape(update.html)).encode()),  # as the document carries it
    )
    more = len(updates) < len(found)
    body = render_template(
        "reader/feed.xml",
        article=story,
        updates=updates,
        before=before,
        next_before=updates[-1].id if more else None,
    )
    return Response(body, mimetype="application/atom+xml")


@bp.get("/feed.atom")
def site_feed() -> Response:
    """Every story, each entry dated by its latest update."""
    articles, last = Article.listing(), Article.last_updates()
    dates = [last.get(story.id) or story.created_at for story in articles]
    body = render_template(
        "reader/site_feed.xml", articles=articles, last=last, updated=max(dates, default=utcnow())
    )
    return Response(body, mimetype="application/atom+xml")


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    body = render_template(
        "reader/sitemap.xml", articles=Article.listing(), last=Article.last_updates()
    )
    return Response(body, mimetype="application/xml")


@bp.get("/robots.txt")
def robots() -> Response:
    rules = ["User-agent: *", "Disallow: /editor/", "Disallow: /api/", "Disallow: /*/embed$"]
    rules.append(f"Sitemap: {absolute_url('reader.sitemap')}")
    return Response("\n".join(rules) + "\n", mimetype="text/plain")
