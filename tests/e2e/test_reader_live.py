"""The live story page in Chromium: what a reader sees as updates arrive, page by page."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import Page, expect

from liveblog import create_app, services
from liveblog.extensions import db
from liveblog.models import Article, Editor
from tests.liveserver import wait_for

from .helpers import Pages, Site, wait_for_seq, wait_live

# Chromium anchors scrolling by itself; with this the page must hold still on its own, as
# it must in browsers without scroll anchoring.
# (Set through the CSSOM: the page's CSP refuses inline style sheets.)
NO_ANCHORING = """
() => {
  for (const el of [document.documentElement, document.body]) {
    el.style.setProperty('overflow-anchor', 'none', 'important');
  }
  return getComputedStyle(document.documentElement).overflowAnchor;
}
"""


def seed(site: Site, count: int, **fields) -> list[int]:
    """`count` updates written straight through the services (faster than the API); ids."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": site.server.database_url, "SECRET_KEY": "x"})
    with app.app_context():
        story = Article.by_slug(site.slug)
        editor = db.session.scalar(db.select(Editor))
        ids = [
            services.post_update(story, editor, body=f"Seeded update {n}.", **fields).id
            for n in range(count)
        ]
        db.session.remove()
        db.engine.dispose()
    return ids


def open_reader(pages: Pages, url: str, **options) -> Page:
    page = pages.new(**options)
    page.goto(url)
    assert page.evaluate(NO_ANCHORING) == "none"
    wait_live(page)
    return page


def top_of(page: Page, selector: str) -> float:
    return page.evaluate("s => document.querySelector(s).getBoundingClientRect().top", selector)


def stream_ids(page: Page) -> list[int]:
    return page.evaluate(
        "() => [...document.querySelectorAll('#updates > .update')].map(e => +e.id.slice(7))"
    )


def test_scrolled_down_nothing_moves_and_a_button_counts_new_updates(site: Site, pages: Pages):
    ids = seed(site, 12)
    reader = open_reader(pages, site.story_url)
    watched = f"#update-{ids[6]}"
    reader.evaluate("s => document.querySelector(s).scrollIntoView()", watched)
    before = top_of(reader, watched)
    title = reader.title()

    seq = reader.evaluate("window.liveblog.seq")
    site.api.post(site.slug, "First of two while scrolled.", headline="Breaking")
    site.api.post(site.slug, "Second of two.")
    wait_for_seq(reader, seq + 2)

    assert abs(top_of(reader, watched) - before) < 1, "the update being read moved"
    button = reader.locator("#new-updates")
    expect(button).to_be_visible()
    expect(button).to_have_text("2 new updates")
    assert reader.title() == f"(2) {title}"
    expect(reader.locator("#announcer")).to_have_text("2 new updates")
    assert reader.locator("#announcer").get_attribute("aria-live") == "polite"

    button.click()
    expect(button).to_be_hidden()
    assert reader.title() == title
    assert top_of(reader, "#updates") >= -1  # the newest update is in view
    expect(reader.locator("#updates > .update").first).to_contain_text("Second of two.")


VISIBLE_TOPS_JS = """
() => Object.fromEntries([...document.querySelectorAll('#updates > .update')]
  .map((el) => [el.id, el.getBoundingClientRect()])
  .filter(([, box]) => box.bottom > 0 && box.top < window.innerHeight)
  .map(([id, box]) => [id, Math.round(box.top)]))
"""


def test_just_past_the_top_nothing_on_screen_moves_either(site: Site, pages: Pages):
    """The pinned update still in view below the stream's top: new updates would go in
    right under it, in sight; they wait instead, and the whole screen holds still."""
    seed(site, 1, pinned=True, headline="Pinned")
    seed(site, 8)
    reader = open_reader(pages, site.story_url)
    reader.evaluate("() => document.getElementById('updates').scrollIntoView()")
    reader.evaluate("() => window.scrollBy(0, 5)")
    before = reader.evaluate(VISIBLE_TOPS_JS)
    assert len(before) >= 2
    seq = reader.evaluate("window.liveblog.seq")
    update = site.api.post(site.slug, "Arrives under the pinned one.")
    wait_for_seq(reader, seq + 1)
    assert reader.evaluate(VISIBLE_TOPS_JS) == before
    expect(reader.locator(f"#update-{update['id']}")).to_be_hidden()
    reader.locator("#new-updates").click()
    expect(reader.locator(f"#update-{update['id']}")).to_be_visible()


def test_at_the_top_new_updates_slide_in(site: Site, pages: Pages):
    seed(site, 3)
    reader = open_reader(pages, site.story_url)
    seq = reader.evaluate("window.liveblog.seq")
    update = site.api.post(site.slug, "Sliding in.")
    wait_for_seq(reader, seq + 1)
    first = reader.locator("#updates > .update").first
    expect(first).to_have_id(f"update-{update['id']}")
    expect(first).to_have_class(re.compile(r"\barrived\b"))
    animations = first.evaluate("el => el.getAnimations().map(a => a.animationName)")
    assert "slide-in" in animations
    expect(reader.locator("#new-updates")).to_be_hidden()
    expect(reader.locator("#announcer")).to_have_text("New update: Sliding in.")


def test_oldest_first_is_in_the_url_and_kept_live(site: Site, pages: Pages):
    ids = seed(site, 3)
    reader = open_reader(pages, f"{site.story_url}?order=oldest")
    assert stream_ids(reader) == ids
    expect(reader.locator('.order a[aria-current="page"]')).to_have_text("Oldest first")
    seq = reader.evaluate("window.liveblog.seq")
    update = site.api.post(site.slug, "Comes last, oldest first.")
    wait_for_seq(reader, seq + 1)
    assert stream_ids(reader) == [*ids, update["id"]]
    reader.get_by_role("link", name="Newest first").click()
    wait_live(reader)
    assert stream_ids(reader) == [update["id"], *reversed(ids)]


def test_key_events_box_goes_live(site: Site, pages: Pages):
    old = seed(site, 1, key_event=True, headline="Polls open")[0]
    seed(site, 25)
    reader = open_reader(pages, site.story_url)
    links = reader.locator("#key-events li a")
    expect(links).to_have_count(1)
    assert links.first.get_attribute("href").endswith(f"?with={old}#update-{old}")

    seq = reader.evaluate("window.liveblog.seq")
    new = site.api.post(site.slug, "Counting starts.", headline="Polls close", key_event=True)
    wait_for_seq(reader, seq + 1)
    expect(links).to_have_count(2)
    expect(links.first).to_have_attribute("href", f"#update-{new['id']}")
    expect(links.first).to_contain_text("Polls close")
    expect(reader.locator("#key-events .count")).to_have_text("2")

    site.api.edit(site.slug, new["id"], key_event=False)
    wait_for_seq(reader, seq + 2)
    expect(links).to_have_count(1)
    # The old one's link opens a page that holds it, scrolled to it.
    reader.locator("#key-events summary").click()  # a box of one line on narrower screens
    links.first.click()
    reader.wait_for_url(re.compile(rf"\?with={old}#update-{old}$"))
    expect(reader.locator(f"#update-{old}")).to_be_in_viewport()


def test_load_older_in_place(site: Site, pages: Pages):
    ids = seed(site, 45)
    reader = open_reader(pages, site.story_url)
    assert stream_ids(reader) == list(reversed(ids[-20:]))
    older = reader.locator("#load-older")
    older.click()
    expect(reader.locator("#updates > .update")).to_have_count(40)
    assert reader.url == site.story_url  # in place, not a new page
    assert stream_ids(reader) == list(reversed(ids[-40:]))
    older.click()
    expect(reader.locator("#updates > .update")).to_have_count(45)
    expect(older).to_have_count(0)
    # Still live after paging.
    seq = reader.evaluate("window.liveblog.seq")
    update = site.api.post(site.slug, "After paging.")
    wait_for_seq(reader, seq + 1)
    assert stream_ids(reader)[0] == update["id"] and len(stream_ids(reader)) == 46


def test_load_older_works_without_javascript(site: Site, pages: Pages):
    ids = seed(site, 25)
    page = pages.new(java_script_enabled=False)
    page.goto(site.story_url)
    page.locator("#load-older").click()
    page.wait_for_url(re.compile(r"\?before="))
    assert stream_ids(page) == list(reversed(ids[:5]))


def test_with_opens_an_update_500_deep(site: Site, pages: Pages):
    ids = seed(site, 520)
    deep = ids[-501]
    reader = open_reader(pages, f"{site.story_url}?with={deep}")
    target = reader.locator(f"#update-{deep}")
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\btarget\b"))
    assert len(stream_ids(reader)) == 20
    # New updates do not land in the middle of an old page: they are counted instead.
    seq = reader.evaluate("window.liveblog.seq")
    site.api.post(site.slug, "Meanwhile, at the top.")
    wait_for_seq(reader, seq + 1)
    assert len(stream_ids(reader)) == 20
    expect(reader.locator("#new-updates")).to_have_text("1 new update")


def reader_with(pages: Pages, url: str, init_script: str) -> Page:
    """A reader whose page runs `init_script` before any of its own scripts."""
    page = pages.new()
    page.add_init_script(init_script)
    page.goto(url)
    wait_live(page)
    return page


def test_share_copies_the_updates_link_without_a_share_sheet(site: Site, pages: Pages):
    update = site.api.post(site.slug, "Worth sharing.")
    # As in most desktop browsers: no share sheet, whatever this Chromium has.
    no_sheet = "Object.defineProperty(navigator, 'share', {value: undefined});"
    reader = reader_with(pages, site.story_url, no_sheet)
    reader.context.grant_permissions(["clipboard-read", "clipboard-write"])
    button = reader.locator(f"#update-{update['id']} button.share")
    button.click()
    expect(button).to_have_text("Link copied")
    copied = reader.evaluate("() => navigator.clipboard.readText()")
    assert copied == f"{site.url}/articles/{site.slug}/updates/{update['id']}"


def test_share_opens_the_share_sheet_where_there_is_one(site: Site, pages: Pages):
    update = site.api.post(site.slug, "Worth sharing.", headline="A headline to share")
    # A share sheet that records what it was asked to share.
    sheet = """
      window.shared = [];
      Object.defineProperty(navigator, 'share', {value: async (data) => { shared.push(data); }});
    """
    reader = reader_with(pages, site.story_url, sheet)
    button = reader.locator(f"#update-{update['id']} button.share")
    button.click()
    reader.wait_for_function("() => window.shared.length > 0", timeout=10000)
    assert reader.evaluate("window.shared") == [
        {
            "title": "A headline to share",
            "url": f"{site.url}/articles/{site.slug}/updates/{update['id']}",
        }
    ]
    expect(button).to_have_text("Share")  # nothing copied


def test_reconnecting_bar_stays_in_sight_and_hides_the_reader_count(site: Site, pages: Pages):
    seed(site, 30)
    reader = open_reader(pages, site.story_url)
    expect(reader.locator("#readers")).to_have_text(re.compile("reading now"))
    reader.evaluate("() => window.scrollTo(0, document.body.scrollHeight / 2)")
    site.server.stop()
    bar = reader.locator("#live-bar")
    expect(bar).to_have_attribute("data-reconnecting", "true", timeout=10000)
    expect(reader.locator("#connection")).to_have_text("Reconnecting…")
    expect(reader.locator("#readers")).to_be_hidden()
    expect(reader.locator("#last-updated")).to_have_text(re.compile(r"^Last updated \d"))
    expect(bar).to_be_in_viewport()  # sticky: in sight though the reader scrolled past it
    assert bar.evaluate("el => getComputedStyle(el).position") == "sticky"

    site.server.start()
    wait_live(reader)
    expect(bar).not_to_have_attribute("data-reconnecting", "true", timeout=15000)
    expect(reader.locator("#last-updated")).to_be_hidden()


def test_ended_story_goes_live_without_the_pulsing_dot(site: Site, pages: Pages):
    reader = open_reader(pages, site.story_url)
    pulse = (
        "() => getComputedStyle(document.getElementById('connection'), '::before').animationName"
    )
    assert reader.evaluate(pulse) == "pulse"
    seq = reader.evaluate("window.liveblog.seq")
    site.api.request("PATCH", f"/articles/{site.slug}", 200, json={"status": "ended"})
    wait_for_seq(reader, seq + 1)
    status = reader.locator("#story-status")
    expect(status).to_have_attribute("data-status", "ended")
    expect(status).to_contain_text("Coverage ended")
    assert reader.evaluate(pulse) == "none"


def test_no_pulse_for_readers_who_ask_for_less_motion(site: Site, pages: Pages):
    reader = open_reader(pages, site.story_url, reduced_motion="reduce")
    pulse = (
        "() => getComputedStyle(document.getElementById('connection'), '::before').animationName"
    )
    assert reader.evaluate(pulse) == "none"


def test_a_phones_first_screen_shows_the_status_and_the_first_update(site: Site, pages: Pages):
    seed(site, 5, key_event=True, headline="A key event")
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    reader = open_reader(pages, site.story_url, **phone)
    expect(reader.locator("#story-status")).to_be_in_viewport()
    expect(reader.locator("#updates > .update").first).to_be_in_viewport(ratio=0.3)
    # The update's time names its zone on a phone.
    expect(reader.locator("#updates > .update").first.locator("time").first).to_contain_text(
        re.compile(r"UTC|GMT")
    )


def test_key_events_are_a_rail_beside_the_stream_on_wide_screens(site: Site, pages: Pages):
    seed(site, 2, key_event=True, headline="Key")
    reader = open_reader(pages, site.story_url, viewport={"width": 1400, "height": 900})
    rail = reader.locator("#key-events").bounding_box()
    stream = reader.locator("#updates").bounding_box()
    assert rail["x"] >= stream["x"] + stream["width"]  # beside it, not above it
    expect(reader.locator("#key-events li a").first).to_be_visible()  # open, not folded


def test_relative_times_stay_fresh_beside_the_absolute_time(site: Site, pages: Pages):
    update = site.api.post(site.slug, "Timed.")
    page = pages.new(timezone_id="Europe/Paris")
    page.clock.install()
    page.goto(site.story_url)
    wait_live(page)
    element = page.locator(f"#update-{update['id']}")
    expect(element.locator(".ago")).to_have_text("just now")
    time = element.locator("time").first
    expect(time).to_have_text(re.compile(r"GMT\+1|CET"))  # the reader's zone, named
    assert re.search(r"\d{4}", time.get_attribute("title"))  # the full date on hover
    page.clock.fast_forward("05:00")
    expect(element.locator(".ago")).to_have_text(re.compile(r"^5 min\.? ago$"))


@contextmanager
def partner_site(frame_src: str) -> Iterator[str]:
    """Another site (its own origin, on this machine) whose page frames `frame_src`."""
    body = (
        '<!doctype html><html lang="en"><title>Partner</title><iframe id="live" title="Live"'
        f' src="{frame_src}" width="600" height="600"></iframe></html>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # localhost, not 127.0.0.1: another origin, and another site, from the story's
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_embed_is_live_inside_another_sites_frame(site: Site, pages: Pages):
    page = pages.new()
    with partner_site(f"{site.story_url}/embed") as partner:
        page.goto(partner)
        frame = page.frame_locator("#live")
        expect(frame.locator('#connection[data-state="live"]')).to_be_attached()
        update = site.api.post(site.slug, "Seen on a partner site.")
        expect(frame.locator(f"#update-{update['id']}")).to_contain_text("Seen on a partner site.")
    # The story page itself may not be framed by another site.
    with partner_site(site.story_url) as partner:
        page.goto(partner)
        framed = page.locator("#live").element_handle().content_frame()
        # Chromium puts its own error page in the frame once it has refused the story.
        wait_for(lambda: framed.url.startswith("chrome-error:"), timeout=10, what=framed.url)
        expect(page.frame_locator("#live").locator("#updates")).to_have_count(0)
