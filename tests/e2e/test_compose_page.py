"""The compose page in a real browser: every newsroom action, seen at once (without a reload)
on an open reader page and on a second editor's compose page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.images import image_bytes

from .helpers import Pages, Site, sign_in, wait_live

# Each editor works in Yerevan (UTC+4), so a schedule time goes out with a real offset.
ZONE = "Asia/Yerevan"
MARK_JS = "() => { window.__sameDocument = true; }"


@pytest.fixture
def room(site: Site, pages: Pages) -> tuple[Page, Page, Page]:
    """An editor's compose page, a second editor's compose page and a reader's page."""
    composers = []
    for _ in range(2):
        page = pages.new(timezone_id=ZONE)
        page.on("dialog", lambda dialog: dialog.accept())  # Delete and End ask first
        sign_in(page, site.url)
        page.goto(f"{site.url}/editor/articles/{site.slug}")
        wait_live(page)
        composers.append(page)
    reader = pages.reader(site.story_url)
    for page in (*composers, reader):
        page.evaluate(MARK_JS)
    return composers[0], composers[1], reader


def everywhere(action: Callable[[], None], *checks: Callable[[float], None]) -> None:
    """Do `action`, then each check (given its deadline in ms, a generous one) must pass."""
    action()
    for check in checks:
        check(10_000)


def still_same_document(*pages: Page) -> None:
    for page in pages:
        assert page.evaluate("window.__sameDocument === true"), f"{page.url} was reloaded"


def seen(page: Page, selector: str, text: str | None = None) -> Callable[[float], None]:
    def check(timeout: float) -> None:
        locator = page.locator(selector)
        if text is None:
            expect(locator).to_be_attached(timeout=timeout)
        else:
            expect(locator).to_contain_text(text, timeout=timeout)

    return check


def gone(page: Page, selector: str) -> Callable[[float], None]:
    return lambda timeout: expect(page.locator(selector)).to_have_count(0, timeout=timeout)


def publish(editor: Page, body: str, headline: str = "") -> None:
    form = editor.locator("#compose-form")
    if headline:
        form.locator("input[name=headline]").fill(headline)
    form.locator("textarea[name=body]").fill(body)
    form.locator("#publish").click()


def test_publish_edit_pin_and_delete_reach_every_open_page(site: Site, room):
    editor, colleague, reader = room
    everywhere(
        lambda: publish(editor, "Polls *close* at eight.", "Polls close"),
        seen(reader, "#update-1 .update-headline", "Polls close"),
        seen(colleague, "#update-1 .update-headline", "Polls close"),
    )
    # The form stays where the editor works: empty, focused, the update below it.
    form = editor.locator("#compose-form")
    expect(form.locator("textarea[name=body]")).to_have_value("")
    expect(form.locator("textarea[name=body]")).to_be_focused()
    expect(editor.locator("#update-1 .update-headline")).to_have_text("Polls close")
    # Ctrl+Enter posts as well.
    form.locator("textarea[name=body]").fill("Turnout is high.")
    everywhere(
        lambda: form.locator("textarea[name=body]").press("Control+Enter"),
        seen(reader, "#update-2 .update-body", "Turnout is high."),
    )

    # A correction, in place, on the colleague's page: the controls came with the live update.
    update = colleague.locator("#update-1")
    update.locator("summary", has_text="Edit").click()
    update.locator("textarea[name=body]").fill("Polls *closed* at eight.")
    everywhere(
        lambda: update.get_by_role("button", name="Save correction").click(),
        seen(reader, "#update-1 .update-body", "Polls closed at eight."),
        seen(reader, "#update-1 .update-edited", "updated"),
        seen(editor, "#update-1 .update-body", "Polls closed at eight."),
    )
    everywhere(
        lambda: editor.locator("#update-2").get_by_role("button", name="Pin").click(),
        seen(reader, "#updates > .update:first-child.pinned#update-2"),
        seen(colleague, "#update-2 .badge-pinned"),
    )
    everywhere(
        lambda: editor.locator("#update-1").get_by_role("button", name="Mark key event").click(),
        seen(reader, "#update-1 .badge-key"),
        seen(colleague, "#update-1 .badge-key"),
    )
    everywhere(
        lambda: editor.locator("#update-2").get_by_role("button", name="Delete").click(),
        gone(reader, "#update-2"),
        gone(colleague, "#update-2"),
    )
    still_same_document(editor, colleague, reader)
    assert [
        u["id"] for u in site.api.request("GET", f"/articles/{site.slug}/updates", 200)["updates"]
    ] == [1]


def test_preview_then_draft_then_publish_now(site: Site, room):
    editor, colleague, reader = room
    form = editor.locator("#compose-form")
    form.locator("textarea[name=body]").press_sequentially("Counting **begins**")
    expect(editor.locator("#preview strong")).to_have_text("begins")
    form.locator("input[name=draft]").check()
    expect(form.locator("#publish")).to_have_text("Save draft")
    form.locator("#publish").click()
    draft = editor.locator("#unpublished .update")
    expect(draft).to_contain_text("Counting begins")
    expect(draft.locator(".badge-draft")).to_have_text("Draft")
    expect(editor.locator("#preview strong")).to_have_count(0)
    expect(reader.locator("#updates > .update")).to_have_count(0)
    everywhere(
        lambda: draft.get_by_role("button", name="Publish now").click(),
        seen(reader, "#update-1 .update-body", "Counting begins"),
        seen(colleague, "#updates #update-1"),
        seen(editor, "#updates #update-1"),
    )
    expect(editor.locator("#unpublished .update")).to_have_count(0)
    still_same_document(editor, colleague, reader)


def test_a_scheduled_update_publishes_itself_on_open_pages(site: Site, room):
    editor, colleague, reader = room
    due = (datetime.now(ZoneInfo(ZONE)) + timedelta(seconds=4)).replace(microsecond=0)
    form = editor.locator("#compose-form")
    form.locator("textarea[name=body]").fill("Results at the hour.")
    editor.evaluate(
        "(value) => { const input = document.getElementById('publish-local');"
        " input.value = value; input.dispatchEvent(new Event('input')); }",
        due.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    expect(form.locator("#publish")).to_have_text("Schedule update")
    form.locator("#publish").click()
    scheduled = editor.locator("#unpublished .update")
    expect(scheduled.locator(".badge-scheduled")).to_have_text("Scheduled")
    (update,) = site.api.request("GET", f"/articles/{site.slug}/drafts", 200)["updates"]
    assert datetime.fromisoformat(update["publish_at"]) == due, "sent with Yerevan's offset"
    expect(reader.locator("#update-1")).to_have_count(0)
    # The server publishes it at its time; open pages get it like any other.
    for page in (reader, colleague, editor):
        expect(page.locator("#updates #update-1")).to_contain_text("Results", timeout=12000)
    published = datetime.fromisoformat(
        site.api.request("GET", f"/articles/{site.slug}/updates", 200)["updates"][0]["published_at"]
    )
    assert published >= due, "published before its time"
    expect(editor.locator("#unpublished .update")).to_have_count(0)
    still_same_document(editor, colleague, reader)


def test_an_image_goes_out_with_its_update(site: Site, room):
    editor, colleague, reader = room
    form = editor.locator("#compose-form")
    form.locator("textarea[name=body]").fill("The square tonight.")
    form.locator("input[name=image]").set_input_files(
        {"name": "square.jpg", "mimeType": "image/jpeg", "buffer": image_bytes("JPEG", (640, 360))}
    )
    form.locator("#publish").click()
    expect(editor.locator("#form-error")).to_contain_text("Describe the image")
    form.locator("input[name=image_alt]").fill("Crowds in the square at night")
    everywhere(
        lambda: form.locator("#publish").click(),
        seen(reader, "#update-1 img[alt='Crowds in the square at night']"),
        seen(colleague, "#update-1 img"),
    )
    image = reader.locator("#update-1 img")
    assert (image.get_attribute("width"), image.get_attribute("height")) == ("640", "360")
    reader.wait_for_function("() => document.querySelector('#update-1 img').naturalWidth === 640")
    still_same_document(editor, colleague, reader)


def test_ending_and_reopening_the_story(site: Site, room):
    editor, colleague, reader = room
    publish(editor, "Last call.")
    expect(reader.locator("#update-1")).to_be_attached()
    everywhere(
        lambda: editor.get_by_role("button", name="End the story").click(),
        seen(reader, "#story-status[data-status='ended']", "Coverage ended at"),
        seen(colleague, "#story-status[data-status='ended']"),
    )
    # Writes to an ended story's updates are refused with a clear message on the form.
    publish(editor, "One more thing.")
    expect(editor.locator("#form-error")).to_contain_text("has ended")
    expect(editor.locator("#compose-form textarea[name=body]")).to_have_value("One more thing.")
    editor.get_by_role("button", name="Reopen the story").click()
    expect(reader.locator("#story-status")).to_have_attribute("data-status", "live")
    publish(editor, "Back again.")
    expect(reader.locator("#update-2")).to_contain_text("Back again.")


def test_a_long_story_is_composed_a_page_at_a_time(site: Site, pages: Pages):
    """The compose page of a long story holds one page; posting on it still works live, and
    older updates load in place, each with its own forms."""
    ids = [site.api.post(site.slug, f"Earlier update {n}.")["id"] for n in range(25)]
    editor = pages.new(timezone_id=ZONE)
    sign_in(editor, site.url)
    editor.goto(f"{site.url}/editor/articles/{site.slug}")
    wait_live(editor)
    editor.evaluate(MARK_JS)
    reader = pages.reader(site.story_url)
    stream = editor.locator("#updates > .update")
    expect(stream).to_have_count(20)

    publish(editor, "Polls *close* at eight.", "Polls close")
    expect(stream.first).to_contain_text("Polls close")
    expect(stream.first.locator("form.edit-form")).to_be_attached()
    expect(reader.locator("#updates > .update").first).to_contain_text("Polls close")
    expect(editor.locator("#compose-form textarea[name=body]")).to_have_value("")

    editor.locator("#load-older").click()
    expect(stream).to_have_count(26)
    expect(editor.locator("#load-older")).to_have_count(0)
    oldest = editor.locator(f"#update-{ids[0]}")
    oldest.locator("summary", has_text="Edit").click()
    oldest.locator("textarea[name=body]").fill("Earlier update 0, corrected.")
    oldest.get_by_role("button", name="Save correction").click()
    expect(oldest.locator(".update-body")).to_contain_text("corrected")
    assert (
        site.api.request("GET", f"/articles/{site.slug}/updates?before={ids[1]}", 200)["updates"][
            0
        ]["body"]
        == "Earlier update 0, corrected."
    )
    still_same_document(editor)
