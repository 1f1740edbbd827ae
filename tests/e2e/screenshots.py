"""Screenshots for the README: `python -m tests.e2e.screenshots` (from the repo root).

Starts its own server on a scratch SQLite database with the demo story, and writes
static/screenshots/reader.png and static/screenshots/editor.png, then the newsroom's:
compose-drafts.png (a draft, a scheduled update and a preview), compose-edit.png (an
update with an image being corrected) and reader-ended.png (an image, a pinned update and
an ended story). Not a test: it writes into the source tree, so it only runs when asked to.
"""

from __future__ import annotations

import io
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from PIL import Image, ImageDraw
from playwright.sync_api import Page, sync_playwright

from liveblog import create_app, demo
from liveblog.extensions import db
from tests.e2e.helpers import CHROMIUM, launch_chromium, sign_in, wait_live
from tests.liveserver import ROOT, Api, LiveServer, prepare_database

OUT = ROOT / "static" / "screenshots"
# UTC and a 24-hour locale, so the images come out the same on any machine.
CONTEXT = {"viewport": {"width": 1000, "height": 900}, "timezone_id": "UTC", "locale": "en-GB"}


def load_demo(database_url: str) -> None:
    """What `flask --app app demo` does, on the scratch database."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        demo.load()
        db.session.remove()
        db.engine.dispose()


def settle(page: Page) -> None:
    """Live, with the reader count in (it comes about a second after joining)."""
    wait_live(page)
    page.wait_for_function("() => document.getElementById('readers').textContent !== ''")


def take(server: LiveServer, browser) -> list[Path]:
    story = f"{server.url}/articles/{demo.SLUG}"
    context = browser.new_context(**CONTEXT)
    try:
        reader = context.new_page()
        reader.goto(story)
        settle(reader)
        reader.screenshot(path=OUT / "reader.png", animations="disabled")
        editor = context.new_page()
        sign_in(editor, server.url)
        editor.goto(f"{server.url}/editor/articles/{demo.SLUG}")
        wait_live(editor)
        # Closed once the compose page follows the story, which then hears the count drop.
        reader.close()
        editor.fill("#compose-form input[name=headline]", "Ceasefire talks announced")
        editor.fill(
            "#compose-form textarea[name=body]",
            "Officials in Stepanakert say talks start **tomorrow**.",
        )
        settle(editor)
        editor.screenshot(path=OUT / "editor.png", animations="disabled")
    finally:
        context.close()
    return [OUT / "reader.png", OUT / "editor.png"]


def illustration() -> bytes:
    """A drawn landscape (no photograph is claimed): mountains under an evening sky."""
    width, height = 960, 420
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        shade = y / height
        draw.line([(0, y), (width, y)], fill=(int(40 + 180 * shade), int(60 + 90 * shade), 140))
    draw.polygon([(0, 330), (180, 150), (330, 290), (520, 110), (760, 300), (960, 180),
                  (960, 420), (0, 420)], fill=(52, 63, 80))  # fmt: skip
    draw.polygon([(0, 380), (260, 260), (470, 360), (700, 250), (960, 350), (960, 420),
                  (0, 420)], fill=(30, 36, 46))  # fmt: skip
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def take_newsroom(server: LiveServer, browser, token: str) -> list[Path]:
    api = Api(server.url, token)
    slug = demo.SLUG
    upload = requests.post(
        f"{server.url}/api/media",
        headers=api.headers,
        files={"file": ("karabakh.jpg", illustration(), "image/jpeg")},
        data={"alt": "Illustration: the mountains of Nagorno-Karabakh at dusk"},
        timeout=20,
    )
    assert upload.status_code == 201, upload.text
    pictured = api.post(
        slug,
        "Evening falls over the region. Residents describe a night without power.",
        headline="Night falls on Stepanakert",
        image=upload.json()["id"],
    )
    api.post(slug, "Red Cross team waiting at the Hakari bridge.", draft=True,
             headline="Aid convoy (to confirm)")  # fmt: skip
    due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    api.post(slug, "The UN Security Council meets in New York.", publish_at=due,
             headline="Security Council session")  # fmt: skip
    context = browser.new_context(**CONTEXT)
    written = []
    try:
        editor = context.new_page()
        sign_in(editor, server.url)
        editor.goto(f"{server.url}/editor/articles/{slug}")
        wait_live(editor)
        form = editor.locator("#compose-form")
        form.locator("input[name=headline]").fill("Ceasefire talks announced")
        form.locator("textarea[name=body]").press_sequentially(
            "Officials say talks start **tomorrow** in Yevlakh."
        )
        editor.wait_for_selector("#preview strong")
        editor.set_viewport_size({"width": 1000, "height": 1250})
        editor.evaluate("window.scrollTo(0, 0)")
        editor.screenshot(path=OUT / "compose-drafts.png", animations="disabled")
        written.append(OUT / "compose-drafts.png")

        item = editor.locator(f"#update-{pictured['id']}")
        item.locator("summary", has_text="Edit").click()
        item.locator("textarea[name=body]").fill(
            "Evening falls over the region. Residents describe a night without power or water."
        )
        item.screenshot(path=OUT / "compose-edit.png", animations="disabled")
        written.append(OUT / "compose-edit.png")
        editor.close()

        api.request("PATCH", f"/articles/{slug}", 200, json={"status": "ended"})
    finally:
        context.close()
    # A reader's own browser: not signed in, tall enough for the pinned update and the image.
    context = browser.new_context(**{**CONTEXT, "viewport": {"width": 1000, "height": 1250}})
    try:
        reader = context.new_page()
        reader.goto(f"{server.url}/articles/{slug}")
        settle(reader)
        reader.wait_for_function("() => [...document.images].every((image) => image.complete)")
        reader.screenshot(path=OUT / "reader-ended.png", animations="disabled")
        written.append(OUT / "reader-ended.png")
    finally:
        context.close()
    return written


def main() -> int:
    if not CHROMIUM.exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'screenshots.sqlite'}"
        token = prepare_database(url)
        load_demo(url)
        server = LiveServer(
            url, Path(scratch) / "server.log", MEDIA_FOLDER=str(Path(scratch) / "media")
        ).start()
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    written = take(server, browser)
                    written += take_newsroom(server, browser, token)
                finally:
                    browser.close()
        finally:
            server.stop()
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
