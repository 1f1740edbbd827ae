"""README screenshots of the story page: `python -m tests.e2e.reader_screenshots`.

Writes static/screenshots/story-desktop.png, story-phone.png and story-dark.png from the demo
story on a scratch server: key events, the pinned update and the new-updates button (two
updates posted while the reader is scrolled down). Not a test: it writes into the tree.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from liveblog import demo
from tests.e2e.helpers import CHROMIUM, launch_chromium, wait_for_seq
from tests.e2e.screenshots import OUT, load_demo, settle
from tests.liveserver import Api, LiveServer, prepare_database

LOOK = {"timezone_id": "UTC", "locale": "en-GB"}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, **LOOK}  # fmt: skip
DESKTOP = {"viewport": {"width": 1280, "height": 900}, **LOOK}


def with_new_updates(page: Page, api: Api, scroll: int) -> None:
    """Scrolled down, two updates arrive: the button counts them and nothing moves."""
    page.evaluate(
        "y => window.scrollTo(0, document.getElementById('updates').offsetTop + y)", scroll
    )
    seq = page.evaluate("window.liveblog.seq")
    body = "Armenia's prime minister says Yerevan will not be drawn into the fighting."
    api.post(demo.SLUG, body, headline="Pashinyan: Armenia not involved")
    api.post(demo.SLUG, "The ICRC asks both sides to let its teams reach the wounded.")
    wait_for_seq(page, seq + 2)
    page.wait_for_selector("#new-updates:not([hidden])")


def take(server: LiveServer, api: Api, browser) -> list[Path]:
    story = f"{server.url}/articles/{demo.SLUG}"
    shots = []
    for name, options, scroll in (
        ("story-desktop.png", DESKTOP, 2),
        ("story-phone.png", PHONE, 0),
        ("story-dark.png", {**DESKTOP, "color_scheme": "dark"}, 0),
    ):
        context = browser.new_context(**options)
        try:
            page = context.new_page()
            page.goto(story)
            settle(page)
            if scroll:
                with_new_updates(page, api, scroll)
            page.screenshot(path=OUT / name, animations="disabled")
            shots.append(OUT / name)
        finally:
            context.close()
    return shots


def main() -> int:
    if not CHROMIUM.exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'screenshots.sqlite'}"
        token = prepare_database(url)
        load_demo(url)
        server = LiveServer(url, Path(scratch) / "server.log").start()
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    written = take(server, Api(server.url, token), browser)
                finally:
                    browser.close()
        finally:
            server.stop()
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
