"""Properties of the Markdown renderer, over inputs hypothesis makes up: whatever an editor
(or a stolen token) sends, what readers get never runs anything."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveblog.rendering import ALLOWED_TAGS, render_markdown, sanitize

# Pieces of the attacks a sanitizer must survive, for hypothesis to combine with Markdown
# syntax and arbitrary text.
FRAGMENTS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "&#106;avascript:",
    "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "<a href=\"javascript:x\">",
    "<iframe src=//evil>", "<style>*{}</style>", "\" onmouseover=\"alert(1)", "' onfocus='x",
    "[link](javascript:alert(1))", "[x](<javascript:alert(1)>)", "![i](javascript:alert(1))",
    "<javascript:alert(1)>", "[a]: javascript:alert(1)\n\n[a]", "`<script>`", "```\n<script>\n```",
    "<details open ontoggle=alert(1)>", "<math><mi xlink:href=javascript:x>", "**", "_", "\n\n",
    "> ", "- ", "1. ", "| a | b |\n|---|---|\n| c | d |", "<!--", "-->", "<![CDATA[", "&lt;",
]  # fmt: skip
markdownish = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=12
).map("".join)


class Elements(HTMLParser):
    """Every element in a piece of HTML, as a browser's parser would see it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_inert(html: str) -> None:
    """No script, no event handler, no URL that runs code; only the tags allowed."""
    for tag, attrs in Elements(html).found:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert not name.startswith("on"), (name, html)
            # Browsers ignore whitespace and control characters inside a URL's scheme.
            url = re.sub(r"[\x00-\x20]", "", value or "").lower()
            assert not url.startswith(("javascript:", "vbscript:", "data:")), (url, html)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_rendered_html_never_runs_anything(source):
    assert_inert(render_markdown(source))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_sanitizing_is_idempotent(source):
    once = render_markdown(source)
    assert sanitize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=10), max_size=10).map("".join))
def test_sanitizing_raw_html_is_idempotent_and_safe(raw):
    # The sanitizer on its own, fed HTML directly (as if Markdown let some through).
    once = sanitize(raw)
    assert sanitize(once) == once
    assert_inert(once)
