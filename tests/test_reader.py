"""Readers' pages: server-rendered stories, permalinks, the feed, escaping and headers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

URL = "/articles/election-night"
API = "/api/articles/election-night"


def post(client, bearer, **json):
    return client.post(f"{API}/updates", json=json, headers=bearer).get_json()


def test_story_page_renders_updates_newest_first_with_ids_and_seqs(client, bearer, story):
    first = post(client, bearer, body="First", headline="One")
    second = post(client, bearer, body="Second", key_event=True)
    page = client.get(URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-slug="election-night" data-seq="2"' in html
    found = re.findall(r'id="update-(\d+)" data-seq="(\d+)"', html)
    assert found == [(str(second["id"]), "2"), (str(first["id"]), "1")]
    assert "Key event" in html and '<h2 class="update-headline">One</h2>' in html
    assert 'src="/static/vendor/socket.io.min.js"' in html


def test_pinned_update_leads_the_page(client, bearer, story):
    pinned = post(client, bearer, body="Read this first", pinned=True)
    newer = post(client, bearer, body="Newer")
    ids = re.findall(r'id="update-(\d+)"', client.get(URL).get_data(as_text=True))
    assert ids == [str(pinned["id"]), str(newer["id"])]


def test_deleted_updates_are_gone_from_page_and_permalink(client, bearer, story):
    update = post(client, bearer, body="Mistake")
    client.delete(f"{API}/updates/{update['id']}", headers=bearer)
    assert f'id="update-{update["id"]}"' not in client.get(URL).get_data(as_text=True)
    assert client.get(f"{URL}/updates/{update['id']}").status_code == 404


def test_permalink_shows_one_update(client, bearer, story):
    update = post(client, bearer, body="Only me", headline="Solo")
    page = client.get(f"{URL}/updates/{update['id']}")
    assert page.status_code == 200
    assert b"Only me" in page.data and b"<title>Solo" in page.data
    assert client.get(f"/articles/other/updates/{update['id']}").status_code == 404


def test_script_in_an_update_is_never_markup(client, bearer, story):
    post(
        client,
        bearer,
        headline="<img src=x onerror=alert(1)>",
        body='<script>alert(1)</script> <img src=x onerror="alert(1)"> [x](javascript:alert(1))',
    )
    html = client.get(URL).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript:' not in html
    # The JSON-LD block is data, not markup: its text is the update's, with every < escaped.
    data = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data and "\\u003cimg src=x onerror=alert(1)\\u003e" in data
    markup = html.replace(data, "")
    assert "onerror=" not in re.sub(r"&lt;.*?&gt;", "", markup)


def test_pages_send_a_content_security_policy(client, story):
    response = client.get(URL)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_story_is_a_404_page(client):
    response = client.get("/articles/nope")
    assert response.status_code == 404
    assert b"no story has the slug" in response.data and b"<html" in response.data


def test_atom_feed_lists_updates(client, bearer, story):
    post(client, bearer, body="Fed <b>bold</b>", headline="Feed item")
    response = client.get(f"{URL}/feed.atom")
    assert response.mimetype == "application/atom+xml"
    root = ET.fromstring(response.data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert [e.findtext("a:title", namespaces=ns) for e in entries] == ["Feed item"]
    assert "&lt;b&gt;" in entries[0].findtext("a:content", namespaces=ns)


def test_index_lists_live_stories_first(client, bearer, story):
    client.post("/api/articles", json={"title": "Later story"}, headers=bearer)
    client.patch("/api/articles/later-story", json={"status": "ended"}, headers=bearer)
    html = client.get("/").get_data(as_text=True)
    assert html.index("Election night") < html.index("Later story")


def test_json_errors_for_clients_that_ask_for_json(client):
    response = client.get("/articles/nope", headers={"Accept": "application/json"})
    assert response.status_code == 404 and "no story" in response.get_json()["error"]
