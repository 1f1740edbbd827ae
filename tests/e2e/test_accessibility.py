"""axe-core (from the npm registry, fetched by `make install-test`) finds nothing on any page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conftest import skip_unless_ci

from .helpers import Pages, Site, sign_in, wait_live

AXE = Path(__file__).parent / "vendor" / "axe.min.js"

RUN_AXE = """
async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
  }));
}
"""


def violations(page: Page) -> list[dict]:
    if not AXE.exists():
        skip_unless_ci(f"{AXE} is missing: make install-test fetches it")
    # Evaluated over the DevTools protocol, which the page's CSP does not govern.
    page.evaluate(AXE.read_text())
    return page.evaluate(RUN_AXE)


@pytest.fixture
def busy_site(site: Site) -> Site:
    """A story with every kind of update on it, and an older page to load."""
    api, slug = site.api, site.slug
    api.post(slug, "Pinned first.", headline="Read this first", pinned=True, key_event=True)
    for n in range(22):
        api.post(slug, f"Update **{n}** with [a link](https://example.org/{n}).")
    api.post(slug, "A *key* event.", headline="Polls close", key_event=True)
    edited = api.post(slug, "Soon edited.")
    api.edit(slug, edited["id"], body="Edited.")
    return site


READER_PAGES = ["/", "/articles/election-night", "/articles/election-night?order=oldest",
                "/articles/election-night?with=3", "/articles/election-night/updates/2",
                "/articles/election-night/embed", "/editor/login", "/articles/none"]  # fmt: skip


@pytest.mark.parametrize("path", READER_PAGES)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_reader_pages_have_no_axe_violations(busy_site: Site, pages: Pages, path, scheme):
    page = pages.new(color_scheme=scheme)
    page.goto(busy_site.url + path)
    if "articles/election-night" in path and "updates" not in path:
        wait_live(page)
    assert violations(page) == []


def test_a_live_page_after_changes_has_no_axe_violations(busy_site: Site, pages: Pages):
    page = pages.new()
    page.goto(busy_site.story_url)
    wait_live(page)
    page.evaluate("() => window.scrollTo(0, 2000)")
    busy_site.api.post(busy_site.slug, "While scrolled.", key_event=True)
    page.wait_for_selector("#new-updates:not([hidden])")
    page.locator("#load-older").click()
    page.wait_for_function("() => !document.getElementById('load-older')")
    # the pinned one, the newest 20, the one that arrived, and the 4 of the older page
    assert page.locator("#updates > .update").count() == 26
    assert violations(page) == []


def test_axe_does_find_what_is_wrong(busy_site: Site, pages: Pages):
    """The check itself works: a control with no name on the page is reported."""
    page = pages.new()
    page.goto(busy_site.story_url)
    page.evaluate(
        "() => document.querySelector('.update').append(document.createElement('button'))"
    )
    assert "button-name" in {found["id"] for found in violations(page)}


def test_editor_pages_have_no_axe_violations(busy_site: Site, pages: Pages):
    page = pages.new()
    sign_in(page, busy_site.url)
    assert violations(page) == []
    page.goto(f"{busy_site.url}/editor/articles/{busy_site.slug}")
    wait_live(page)
    assert violations(page) == []
