"""Story pages and the embed tell caches exactly what they vary on: the cookie, and nothing
else. A reader's copy and an editor's differ only by the cookie, so without `Vary: Cookie` a
shared cache could hand an editor's page (their name, a CSRF token) to readers; with more
(`*`, `Accept-Language`), a cache in front would keep a copy per header value, or none."""

from __future__ import annotations

import pytest

STORY = "/articles/election-night"
PAGES = [STORY, f"{STORY}?order=oldest", f"{STORY}/embed"]


def vary(response) -> list[str]:
    """Every Vary value the response carries, header lines and commas alike."""
    return [part.strip() for line in response.headers.getlist("Vary") for part in line.split(",")]


@pytest.mark.config(PUBLIC_URL="https://news.example")
@pytest.mark.parametrize("path", PAGES)
def test_readers_pages_vary_on_the_cookie_alone(client, story, path):
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "public, max-age=5, s-maxage=5"
    assert vary(page) == ["Cookie"]
    again = client.get(path, headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    assert vary(again) == ["Cookie"]


@pytest.mark.config(PUBLIC_URL="https://news.example")
@pytest.mark.parametrize("path", PAGES)
def test_editors_pages_vary_on_the_cookie_alone(client, auth, story, path):
    assert auth.login().status_code == 302
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-cache"
    assert vary(page) == ["Cookie"]
    again = client.get(path, headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    assert vary(again) == ["Cookie"]


@pytest.mark.parametrize("path", PAGES)
def test_without_a_named_host_pages_still_vary_on_the_cookie_alone(client, story, path):
    page = client.get(path)
    assert page.headers["Cache-Control"] == "public, max-age=5, s-maxage=5"
    assert vary(page) == ["Cookie"]
