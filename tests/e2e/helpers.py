"""What the browser tests share: Chromium, the JSON API, pages, and snapshots of the stream."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from tests.liveserver import EDITOR, PASSWORD, Api, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# What a reader sees of the stream, normalized so that a page kept live and a page loaded
# afresh can be compared. `arrived` is left out: it only starts the one-off highlight that
# reader.js gives an update the reader watched arrive, and a fresh page has none to show.
SNAPSHOT_JS = """
() => {
  const stream = document.getElementById('updates');
  const text = (el) => (el ? el.textContent.trim() : null);
  return {
    empty_hidden: document.getElementById('no-updates').hidden,
    updates: [...stream.children].map((el) => ({
      tag: el.tagName.toLowerCase(),
      id: el.id,
      seq: el.dataset.seq,
      published: el.dataset.published,
      classes: [...el.classList].filter((name) => name !== 'arrived').sort(),
      badges: [...el.querySelectorAll('.badge')].map((badge) => badge.textContent.trim()),
      headline: text(el.querySelector('.update-headline')),
      body: el.querySelector('.update-body').innerHTML,
      author: text(el.querySelector('.update-author')),
      time: text(el.querySelector('time')),
      datetime: el.querySelector('time').getAttribute('datetime'),
      permalink: el.querySelector('a.update-time').getAttribute('href'),
      edited: Boolean(el.querySelector('.update-edited')),
    })),
  };
}
"""


def launch_chromium(playwright: Any) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def sign_in(page: Page, server_url: str) -> None:
    """Sign the live server's editor in through the login form, as a person does."""
    page.goto(f"{server_url}/editor/login")
    page.fill("input[name=username]", EDITOR)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server_url}/editor/")


@dataclass
class Site:
    server: LiveServer
    api: Api
    slug: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def story_url(self) -> str:
        return f"{self.server.url}/articles/{self.slug}"


@dataclass
class Pages:
    """Opens pages, each in a browser context of its own (own cookies, own socket)."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def new(self, **context_options: Any) -> Page:
        context_options.setdefault("viewport", {"width": 1000, "height": 900})
        context = self.browser.new_context(**context_options)
        context.set_default_timeout(5000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page

    def reader(self, url: str) -> Page:
        """A reader's page, once its socket has subscribed and it is live."""
        page = self.new()
        page.goto(url)
        wait_live(page)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def wait_live(page: Page) -> None:
    page.wait_for_selector('#connection[data-state="live"]', state="attached")


def wait_for_seq(page: Page, seq: int, timeout: float = 5000) -> None:
    page.wait_for_function("seq => window.liveblog.seq === seq", arg=seq, timeout=timeout)


def snapshot(page: Page) -> dict[str, Any]:
    return page.evaluate(SNAPSHOT_JS)


def fresh_snapshot(pages: Pages, url: str) -> dict[str, Any]:
    """The stream as a reader loading `url` now sees it."""
    page = pages.new()
    page.goto(url)
    page.wait_for_function("() => window.liveblog !== undefined")
    return snapshot(page)


def socketio_events(raw: str | bytes) -> list[tuple[str, Any]]:
    """The (event, data) pairs in an engine.io payload (one WebSocket frame or a polling body)."""
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    events = []
    for packet in raw.split("\x1e"):  # polling bodies join packets with a record separator
        match = re.fullmatch(r"42\d*(\[.*\])", packet, re.DOTALL)  # MESSAGE + EVENT, ack id
        if match:
            name, *args = json.loads(match.group(1))
            events.append((name, args[0] if args else None))
    return events


def record_sent_events(page: Page) -> Callable[[], list[tuple[str, Any]]]:
    """Everything the page sends over Socket.IO from now on, on either transport."""
    sent: list[tuple[str, Any]] = []

    def on_request(request: Any) -> None:
        if "/socket.io/" in request.url and request.method == "POST":
            sent.extend(socketio_events(request.post_data_buffer or b""))

    page.on("request", on_request)
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda payload: sent.extend(socketio_events(payload))),
    )
    return lambda: list(sent)
