"""Screenshots for the README: `python -m tests.e2e.screenshots` (from the repo root).

Starts its own server on a scratch SQLite database with the demo story, and writes
static/screenshots/reader.png and static/screenshots/editor.png. Not a test: it writes
into the source tree, so it only runs when asked to.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from liveblog import create_app, demo
from liveblog.extensions import db
from tests.e2e.helpers import CHROMIUM, launch_chromium, sign_in, wait_live
from tests.liveserver import ROOT, LiveServer, prepare_database

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
        reader.close()  # so the compose page does not count the screenshot's reader

        editor = context.new_page()
        sign_in(editor, server.url)
        editor.goto(f"{server.url}/editor/articles/{demo.SLUG}")
        editor.fill("input[name=headline]", "Ceasefire talks announced")
        editor.fill("textarea[name=body]", "Officials in Stepanakert say talks start **tomorrow**.")
        settle(editor)
        editor.screenshot(path=OUT / "editor.png", animations="disabled")
    finally:
        context.close()
    return [OUT / "reader.png", OUT / "editor.png"]


def main() -> int:
    if not CHROMIUM.exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'screenshots.sqlite'}"
        prepare_database(url)
        load_demo(url)
        server = LiveServer(url, Path(scratch) / "server.log").start()
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    written = take(server, browser)
                finally:
                    browser.close()
        finally:
            server.stop()
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
