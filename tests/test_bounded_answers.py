"""However long a story grows, no answer holds all of it: the updates API, the story's Atom
feed and the compose page each give a page, and name the next one, so a client that follows
the links sees every update exactly once."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from tests.stories import post_many

API = "/api/articles/election-night"
FEED = "/articles/election-night/feed.atom"
COMPOSE = "/editor/articles/election-night"
ATOM = {"a": "http://www.w3.org/2005/Atom"}


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def api_pages(client, url: str) -> list[list[int]]:
    """Follow `next` from `url` to the end: the ids of each page."""
    pages = []
    while url:
        answer = client.get(url)
        assert answer.status_code == 200
        data = answer.get_json()
        pages.append([update["id"] for update in data["updates"]])
        assert data["more"] is (data["next"] is not None)
        url = data["next"]
        assert len(pages) < 100, "paging must end"
    return pages


@pytest.mark.both_databases
def test_the_updates_api_serves_at_most_a_page_and_names_the_next(app, client, editor, story):
    ids = post_many(app, 60)
    first = client.get(f"{API}/updates?limit=200").get_json()
    assert len(first["updates"]) == 50 and first["more"] is True
    assert first["next"] == f"{API}/updates?before={first['updates'][-1]['id']}&limit=200"
    pages = api_pages(client, f"{API}/updates?limit=200")
    assert [len(page) for page in pages] == [50, 10]
    assert [n for page in pages for n in page] == list(reversed(ids)), "each once, in order"
    assert client.get(f"{API}/updates?limit=201").status_code == 400


@pytest.mark.config(MAX_UPDATES_BYTES=6000)
@pytest.mark.both_databases
def test_the_updates_api_stops_at_its_byte_limit(app, client, editor, story):
    ids = post_many(app, 12, body="{n} " + "word " * 300)  # about 3 kB of JSON each
    huge = post_many(app, 1, body="big " * 3000)  # larger than the limit on its own
    pages = api_pages(client, f"{API}/updates")
    assert pages[0] == huge, "an update larger than the limit still comes, alone"
    assert all(1 <= len(page) <= 2 for page in pages)
    assert [n for page in pages for n in page] == list(reversed(ids + huge))


def feed_pages(client, url: str) -> list[list[str]]:
    """Follow each document's rel="next" to the end: the entry ids of each."""
    pages = []
    while url:
        answer = client.get(url)
        assert answer.status_code == 200 and answer.mimetype == "application/atom+xml"
        root = ET.fromstring(answer.data)
        pages.append(
            [entry.findtext("a:id", namespaces=ATOM) for entry in root.findall("a:entry", ATOM)]
        )
        following = root.find("a:link[@rel='next']", ATOM)
        url = local(following.get("href")) if following is not None else None
        assert len(pages) < 100, "paging must end"
    return pages


def entry_ids(ids: list[int]) -> list[str]:
    return [f"http://localhost/articles/election-night/updates/{n}" for n in ids]


@pytest.mark.both_databases
def test_the_feed_pages_through_every_update(app, client, editor, story):
    ids = post_many(app, 45)
    pages = feed_pages(client, FEED)
    assert [len(page) for page in pages] == [20, 20, 5]
    assert [n for page in pages for n in page] == entry_ids(list(reversed(ids)))
    second = ET.fromstring(client.get(f"{FEED}?before={ids[25]}").data)
    assert second.find("a:link[@rel='self']", ATOM).get("href").endswith(f"?before={ids[25]}")
    assert second.find("a:link[@rel='first']", ATOM).get("href").endswith(FEED)
    assert client.get(f"{FEED}?before=x").status_code == 400
    assert client.get(f"{FEED}?before=99999").status_code == 404


@pytest.mark.config(MAX_FEED_BYTES=5000)
def test_the_feed_stops_at_its_byte_limit(app, client, editor, story):
    ids = post_many(app, 9, body="{n} " + "word " * 400)  # about 2 kB of content each
    pages = feed_pages(client, FEED)
    assert all(1 <= len(page) <= 2 for page in pages)
    assert [n for page in pages for n in page] == entry_ids(list(reversed(ids)))


def ids_in(html: str, section: str) -> list[int]:
    part = html.split(f'id="{section}"', 1)[1]
    part = (
        part.split('id="no-updates"', 1)[0]
        if section == "updates"
        else part.split("</section>", 1)[0]
    )
    return [int(n) for n in re.findall(r'<article [^>]*id="update-(\d+)"', part)]


@pytest.mark.both_databases
def test_the_compose_page_holds_a_page_and_links_to_older_ones(app, client, auth, story):
    auth.login()
    ids = post_many(app, 25)
    pinned = post_many(app, 1, pinned=True)
    html = client.get(COMPOSE).get_data(as_text=True)
    assert ids_in(html, "updates") == [*pinned, *reversed(ids[-20:])]
    stream = html.split('id="updates"', 1)[1].split('id="no-updates"', 1)[0]
    assert stream.count('class="form edit-form"') == 21, "an edit form for each update shown"
    link = re.search(r'<a id="load-older"[^>]*href="([^"]+)"', html).group(1)
    assert link == f"{COMPOSE}?before={ids[-20]}"
    older = client.get(link).get_data(as_text=True)
    assert ids_in(older, "updates") == list(reversed(ids[:5]))
    assert 'id="load-older"' not in older and 'data-head="false"' in older
    assert f'id="load-latest" href="{COMPOSE}"' in older
    assert f'action="{COMPOSE}/updates/{ids[0]}/delete"' in older, "older ones keep their forms"
    assert client.get(f"{COMPOSE}?before=99999").status_code == 404


@pytest.mark.config(PAGE_SIZE=3)
def test_the_compose_page_pages_its_drafts_too(app, client, auth, story):
    auth.login()
    drafts = post_many(app, 5, draft=True)
    html = client.get(COMPOSE).get_data(as_text=True)
    assert ids_in(html, "unpublished") == list(reversed(drafts))[:3]
    link = re.search(r'<a id="drafts-more"[^>]*href="([^"]+)"', html).group(1)
    rest = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert ids_in(rest, "unpublished") == list(reversed(drafts))[3:]
    assert 'id="drafts-more"' not in rest and 'id="drafts-first"' in rest
