"""Markdown to sanitized HTML, done once when a story or update is saved."""

from __future__ import annotations

from functools import cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# What Markdown can produce and a live blog needs; nothing that runs, loads or restyles.
ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


@cache
def _markdown() -> MarkdownIt:
    # js-default: CommonMark plus tables and strikethrough, with raw HTML turned off.
    # Images from other sites are off: they would let any site watch who reads the story.
    # `![alt](url)` then reads as a link to the picture, keeping its alt text.
    return MarkdownIt("js-default", {"html": False, "linkify": False}).disable("image")


def render_markdown(source: str) -> str:
    """Render and sanitize; markdown-it escapes raw HTML and nh3 removes anything unsafe left."""
    return sanitize(_markdown().render(source))


def sanitize(html: str) -> str:
    """Only what a live blog needs survives: the allowed tags, attributes and URL schemes."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow ugc",
    ).strip()


# The most plain text any page shows of one update or story (the JSON-LD articleBody). It is
# kept beside the HTML at write time, so a page view never strips a whole update's markup.
EXCERPT_CHARS = 5000


def excerpt(html: str) -> str:
    """Sanitized HTML as plain text, at most EXCERPT_CHARS long, cut at a word."""
    # Markup here only strips the tags; the plain text it gives is escaped wherever it is used.
    return shorten(" ".join(Markup(html).striptags().split()), EXCERPT_CHARS)  # nosec B704


def shorten(text: str, limit: int) -> str:
    """Plain text cut to `limit` characters at a word, with an ellipsis if anything was cut."""
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
