"""The reader page in a real browser: live, consistent with a fresh load, safe, and usable
without JavaScript."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .helpers import (
    Pages,
    Site,
    fresh_snapshot,
    record_sent_events,
    sign_in,
    snapshot,
    wait_for_seq,
    wait_live,
)

# Records the first update element added to the stream, in this document.
WATCH_ARRIVAL_JS = """
() => {
  window.__arrival = null;
  const observer = new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === 1 && node.classList.contains('update')) {
          window.__arrival = { id: node.id };
          observer.disconnect();
          return;
        }
      }
    }
  });
  observer.observe(document.getElementById('updates'), { childList: true });
}
"""


def test_update_published_from_the_form_reaches_an_open_reader_page(site: Site, pages: Pages):
    reader = pages.reader(site.story_url)
    expect(reader.locator("#updates > .update")).to_have_count(0)

    editor = pages.new()
    sign_in(editor, site.url)
    editor.goto(f"{site.url}/editor/articles/{site.slug}")
    editor.locator("#compose-form input[name=headline]").press_sequentially("Polls close")
    editor.locator("#compose-form textarea[name=body]").press_sequentially(
        "Counting **begins** now."
    )

    reader.evaluate(WATCH_ARRIVAL_JS)
    editor.locator("#publish").click()
    # Truthy only in this document: a page that reloaded would lose the observer and time out.
    # (How soon it arrives is measured by bench/latency.py, not asserted here.)
    reader.wait_for_function("() => Boolean(window.__arrival)", timeout=10_000)
    arrival = reader.evaluate("window.__arrival")

    update = reader.locator(f"#{arrival['id']}")
    expect(update.locator(".update-headline")).to_have_text("Polls close")
    expect(update.locator(".update-body")).to_have_text("Counting begins now.")
    assert update.locator(".update-body strong").inner_text() == "begins"
    assert update.get_attribute("data-seq") == "1"

    # The editor lands back on the compose page, at the update it just published.
    editor.wait_for_url(f"{site.url}/editor/articles/{site.slug}#{arrival['id']}")
    expect(editor.locator(".flashes")).to_contain_text("Update published.")
    expect(editor.locator(f"#{arrival['id']} .update-headline")).to_have_text("Polls close")
    expect(editor.locator("#compose-form input[name=headline]")).to_have_value("")


def test_page_kept_live_equals_page_loaded_afresh(site: Site, pages: Pages):
    api, slug = site.api, site.slug
    early = api.post(slug, "Rendered with the page.", headline="Before the page opened")
    reader = pages.reader(site.story_url)
    before = snapshot(reader)

    first = api.post(slug, "First *live* update.", headline="One")
    second = api.post(slug, "Second update, soon edited.")
    third = api.post(slug, "Third update, soon deleted.", key_event=True)
    fourth = api.post(slug, "Fourth update:\n\n- with\n- a list", headline="Four")
    api.edit(slug, second["id"], body="Second update, **edited**.", headline="Two", key_event=True)
    api.delete(slug, third["id"])
    api.edit(slug, fourth["id"], pinned=True)
    api.edit(slug, first["id"], pinned=True)  # unpins the fourth, as a change of its own
    api.edit(slug, early["id"], headline="Before the page opened, edited")
    seq = api.story(slug)["seq"]
    assert seq == 11  # the second pin took two: pin the first, unpin the fourth

    wait_for_seq(reader, seq)
    live = snapshot(reader)
    fresh = fresh_snapshot(pages, site.story_url)
    assert live == fresh
    assert live != before
    assert [u["id"] for u in live["updates"]] == [
        f"update-{first['id']}",  # pinned first, then newest first
        f"update-{fourth['id']}",
        f"update-{second['id']}",
        f"update-{early['id']}",
    ]
    by_id = {u["id"]: u for u in live["updates"]}
    assert by_id[f"update-{first['id']}"]["badges"] == ["Pinned"]
    assert by_id[f"update-{first['id']}"]["classes"] == ["pinned", "update"]
    assert by_id[f"update-{fourth['id']}"]["classes"] == ["update"]
    assert by_id[f"update-{second['id']}"]["badges"] == ["Key event"]
    assert by_id[f"update-{second['id']}"]["edited"] is True


def test_reader_catches_up_after_its_connection_dropped(site: Site, pages: Pages):
    api, slug = site.api, site.slug
    kept = api.post(slug, "This one will be edited.", headline="Kept")
    doomed = api.post(slug, "This one will be deleted.", headline="Doomed")
    reader = pages.reader(site.story_url)
    sent = record_sent_events(reader)
    seq_before = reader.evaluate("window.liveblog.seq")
    assert seq_before == 2

    # Drop the connection under the socket, as a network failure does (no Socket.IO
    # goodbye), holding off the automatic reconnect until the changes have been made.
    reader.evaluate(
        "() => { const io = window.liveblog.socket.io; io.reconnection(false); io.engine.close(); }"
    )
    reader.wait_for_selector('#connection[data-state="offline"]', state="attached")
    added = api.post(slug, "Posted while the reader was away.", headline="Missed")
    api.edit(slug, kept["id"], body="Edited while the reader was away.")
    api.delete(slug, doomed["id"])
    reader.wait_for_timeout(300)
    assert reader.evaluate("window.liveblog.seq") == seq_before  # really cut off
    assert reader.locator(f"#update-{added['id']}").count() == 0

    reader.evaluate(
        "() => { const s = window.liveblog.socket; s.io.reconnection(true); s.connect(); }"
    )
    wait_live(reader)
    wait_for_seq(reader, 5)
    subscribed = [payload for event, payload in sent() if event == "subscribe"]
    assert {"article": slug, "since": seq_before, "count": True} in subscribed

    live = snapshot(reader)
    assert [u["id"] for u in live["updates"]] == [f"update-{added['id']}", f"update-{kept['id']}"]
    assert live["updates"][1]["body"] == "<p>Edited while the reader was away.</p>"
    assert live["updates"][1]["edited"] is True
    assert [u["seq"] for u in live["updates"]] == ["3", "4"]
    assert live == fresh_snapshot(pages, site.story_url)


def test_changes_out_of_order_are_held_and_gaps_are_fetched(site: Site, pages: Pages):
    api, slug = site.api, site.slug
    reader = pages.reader(site.story_url)
    reader.evaluate("window.liveblog.socket.off('change')")  # the test delivers the changes
    fetched: list[str] = []
    reader.on("request", lambda r: fetched.append(r.url) if "/changes" in r.url else None)

    def ids() -> list[str]:
        return reader.eval_on_selector_all("#updates > .update", "els => els.map(el => el.id)")

    def receive(change: dict) -> None:
        reader.evaluate("change => window.liveblog.receive(change)", change)

    # S+2 before S+1: nothing is shown until S+1 arrives, then both, in order.
    start = reader.evaluate("window.liveblog.seq")
    one, two = api.post(slug, "One."), api.post(slug, "Two.")
    first, second = api.changes(slug, since=start)["changes"]
    assert [first["seq"], second["seq"]] == [start + 1, start + 2]
    receive(second)
    reader.wait_for_timeout(300)
    assert ids() == []
    assert reader.evaluate("window.liveblog.seq") == start
    receive(first)
    assert ids() == [f"update-{two['id']}", f"update-{one['id']}"]
    assert reader.evaluate("window.liveblog.seq") == start + 2
    receive(first)  # a repeat changes nothing
    assert ids() == [f"update-{two['id']}", f"update-{one['id']}"]
    assert fetched == []  # the gap closed before the page went looking

    # Only S+4 of the next pair: after the gap wait the page fetches S+3 itself.
    three, four = api.post(slug, "Three."), api.post(slug, "Four.")
    _, fourth = api.changes(slug, since=start + 2)["changes"]
    # The page waits for the gap to close by itself (above, it did), then fetches S+3.
    with reader.expect_request(
        lambda request: f"/changes?since={start + 2}" in request.url, timeout=10_000
    ):
        receive(fourth)
        assert ids() == [f"update-{two['id']}", f"update-{one['id']}"]
    wait_for_seq(reader, start + 4)
    assert ids() == [
        f"update-{four['id']}",
        f"update-{three['id']}",
        f"update-{two['id']}",
        f"update-{one['id']}",
    ]
    assert snapshot(reader) == fresh_snapshot(pages, site.story_url)


XSS_BODY = """\
Three attempts:

<script>window.__xss=1</script>

<img src=x onerror="window.__xss=1">

[click](javascript:window.__xss=1)
"""


def assert_nothing_ran(page) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined"
    # The headline is checked too: it is plain text, and must stay so on both paths.
    assert page.locator(".update script, .update [onerror]").count() == 0
    assert page.locator(".update img, .update iframe, .update object").count() == 0
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(el => el.getAttribute('href'))")
    assert not [href for href in hrefs if href.strip().lower().startswith("javascript:")]


def test_scripts_in_an_update_never_run(site: Site, pages: Pages):
    reader = pages.reader(site.story_url)
    violations: list[str] = []
    reader.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    update = site.api.post(
        site.slug, XSS_BODY, headline='<img src=x onerror="window.__xss=1">Headline'
    )
    element = reader.locator(f"#update-{update['id']}")
    expect(element).to_be_attached(timeout=2000)  # inserted live
    reader.wait_for_timeout(200)  # time for a broken image's onerror to fire, were there one
    assert_nothing_ran(reader)
    # Shown as the text that was typed, not taken as markup.
    expect(element.locator(".update-body")).to_contain_text("<script>window.__xss=1</script>")
    expect(element.locator(".update-headline")).to_have_text(
        '<img src=x onerror="window.__xss=1">Headline'
    )

    fresh = pages.new()
    response = fresh.goto(site.story_url)
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    fresh.wait_for_timeout(200)
    assert_nothing_ran(fresh)
    assert snapshot(fresh) == snapshot(reader)
    assert violations == []  # the sanitizer stopped them; CSP had nothing left to block


def test_page_works_without_javascript(site: Site, pages: Pages):
    api, slug = site.api, site.slug
    plain = api.post(slug, "A plain update.")
    key = api.post(slug, "Results are *in*.", headline="Result", key_event=True)
    pinned = api.post(slug, "Read this first.", headline="Pinned note", pinned=True)
    latest = api.post(slug, "The newest one.")

    page = pages.new(java_script_enabled=False)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site.story_url)
    updates = page.locator("#updates > .update")
    expect(updates).to_have_count(4)
    order = page.eval_on_selector_all("#updates > .update", "els => els.map(el => el.id)")
    assert order == [f"update-{u['id']}" for u in (pinned, latest, key, plain)]
    for update in (plain, key, pinned, latest):
        element = page.locator(f"#update-{update['id']}")
        assert element.get_attribute("data-seq") == str(update["seq"])
        assert element.locator(".update-body").inner_html() == update["html"]
    expect(page.locator(f"#update-{key['id']} .badge")).to_have_text("Key event")
    expect(page.locator(f"#update-{key['id']} .update-headline")).to_have_text("Result")
    expect(page.locator(f"#update-{pinned['id']} .badge")).to_have_text("Pinned")
    # Times are rendered by the server, in UTC, where no script can localize them.
    expect(page.locator(f"#update-{plain['id']} time")).to_have_text(
        re.compile(r"^\d\d:\d\d UTC, \d\d [A-Z][a-z]{2} \d{4}$")
    )
    expect(page.locator("#connection")).to_have_text("Not connected: reload for new updates")
    expect(page.locator("#no-updates")).to_be_hidden()
    assert not [url for url in requested if "/socket.io/" in url]  # no script ran


def test_the_page_stays_live_over_a_websocket_under_its_own_csp(site: Site, pages: Pages):
    """A policy that blocked ws: would still look live through long-polling: check the wire."""
    reader = pages.new()
    violations: list[str] = []
    reader.on("console", lambda message: violations.append(message.text))
    reader.goto(site.story_url)
    wait_live(reader)
    reader.wait_for_function(
        "() => window.liveblog.socket.io.engine.transport.name === 'websocket'", timeout=5000
    )
    assert not [text for text in violations if "Content Security Policy" in text]
