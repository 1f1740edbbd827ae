"""Browser fixtures: Debian's Chromium driven by Playwright against a real `python app.py`.

The browser is shared by the session (it takes a second to start); every test gets its own
server, database and browser contexts, so no state leaks from one test into the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import skip_unless_ci
from tests.liveserver import Api, LiveServer

from .helpers import CHROMIUM, Pages, Site, launch_chromium

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives Chromium against a server of its own."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        skip_unless_ci(f"browser tests need Chromium at {CHROMIUM} (Debian package: chromium)")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server: tuple[LiveServer, str]) -> Site:
    """A live server with one fresh story on it, and the API to write to it."""
    server, token = live_server
    api = Api(server.url, token)
    api.create_story("Election night", "election-night")
    return Site(server, api, "election-night")


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.errors, f"uncaught errors in the page: {opened.errors}"
