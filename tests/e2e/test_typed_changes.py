"""Typed CHANGEs in a real browser: the story's own changes go live, and a kind the page does
not know is skipped without stalling the changes after it."""

from __future__ import annotations

from playwright.sync_api import expect

from .helpers import Pages, Site, fresh_snapshot, snapshot, wait_for_seq


def test_story_edits_and_its_end_reach_an_open_page(site: Site, pages: Pages):
    reader = pages.reader(site.story_url)
    site.api.request(
        "PATCH", f"/articles/{site.slug}", 200, json={"title": "Election night: results"}
    )
    site.api.request("PATCH", f"/articles/{site.slug}", 200, json={"status": "ended"})
    wait_for_seq(reader, 2)
    expect(reader.locator("#story-title")).to_have_text("Election night: results")
    status = reader.locator("#story-status")
    expect(status).to_have_attribute("data-status", "ended")
    expect(status).to_contain_text("Coverage ended at")
    # An ended story does not pulse "live", whatever the connection does.
    dot = reader.evaluate(
        "getComputedStyle(document.getElementById('connection'), '::before').animationName"
    )
    assert dot == "none"

    fresh = pages.new()
    fresh.goto(site.story_url)
    expect(fresh.locator("#story-status")).to_have_attribute("data-status", "ended")
    expect(fresh.locator("#story-title")).to_have_text("Election night: results")
    assert (
        reader.locator("#story-status").text_content()
        == fresh.locator("#story-status").text_content()
    )


def test_an_unknown_kind_is_skipped_and_counts_as_applied(site: Site, pages: Pages):
    reader = pages.reader(site.story_url)
    # A kind from a newer server, then a real change right behind it.
    reader.evaluate(
        "slug => window.liveblog.receive({article: slug, seq: 1, type: 'poll', poll: {}})",
        site.slug,
    )
    wait_for_seq(reader, 1)
    site.api.request("PATCH", f"/articles/{site.slug}", 200, json={"title": "Bump"})  # seq 1
    site.api.post(site.slug, "After the unknown one")  # seq 2 reaches the page
    wait_for_seq(reader, 2)
    expect(reader.locator("#updates > .update")).to_have_count(1)
    assert snapshot(reader)["updates"][0]["body"] == "<p>After the unknown one</p>"
    assert fresh_snapshot(pages, site.story_url) == snapshot(reader)
