"""Signing in and previewing in a real browser, with the rate limits on: a browser that signed
in before keeps signing in while others are refused, and a preview refused for coming too
often is said in the preview box, then shown by itself once the Retry-After has passed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import expect

from tests.liveserver import EDITOR, PASSWORD, Api, LiveServer, prepare_database

from .helpers import Pages, sign_in


@pytest.fixture
def limited_server(tmp_path) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    token = prepare_database(url)
    server = LiveServer(
        url,
        tmp_path / "server.log",
        RATELIMIT_ENABLED="1",
        LOGIN_RATE_LIMIT="3 per minute",
        PREVIEW_RATE_LIMIT="1 per 5 seconds",
    )
    try:
        server.start()
        Api(server.url, token).create_story("Election night", "election-night")
        yield server
    finally:
        server.stop()


def wrong_password(server_url: str) -> int:
    """A sign-in with a wrong password from a script, at the browsers' address."""
    with requests.Session() as script:
        page = script.get(f"{server_url}/editor/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        fields = {"username": EDITOR, "password": "a guess", "csrf_token": token}
        return script.post(f"{server_url}/editor/login", data=fields, timeout=10).status_code


def test_a_browser_that_signed_in_before_is_not_locked_out(limited_server, pages: Pages):
    url = limited_server.url
    known = pages.new()
    sign_in(known, url)
    known.get_by_role("button", name=f"Sign out {EDITOR}").click()
    known.wait_for_url(f"{url}/")
    assert [wrong_password(url) for _ in range(4)] == [401, 401, 401, 429]

    stranger = pages.new()
    stranger.goto(f"{url}/editor/login")
    stranger.fill("input[name=username]", EDITOR)
    stranger.fill("input[name=password]", PASSWORD)
    stranger.get_by_role("button", name="Sign in").click()
    expect(stranger.get_by_role("alert")).to_contain_text("failed sign-ins from your network")
    sign_in(known, url)  # waits for the stories page


def test_a_refused_preview_is_said_and_then_retried(limited_server, pages: Pages):
    page = pages.new()
    sign_in(page, limited_server.url)
    page.goto(f"{limited_server.url}/editor/articles/election-night")
    body = page.locator("#compose-form textarea[name=body]")
    body.press_sequentially("The *first*")
    expect(page.locator("#preview em")).to_have_text("first")
    body.press_sequentially(" and **second**")
    expect(page.locator("#preview")).to_contain_text("Too many previews")
    expect(page.locator("#preview strong")).to_have_text("second", timeout=15_000)
