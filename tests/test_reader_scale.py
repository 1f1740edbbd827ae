"""Story pages at any length: paging by one cursor, ?with=, oldest first, caching, HTTP
caching, and what search engines and feed readers are given."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa
from flask import template_rendered

from liveblog.extensions import db
from liveblog.models import Article
from liveblog.pagecache import PageCache
from tests.conftest import local_redis
from tests.stories import post_many

URL = "/articles/election-night"
API = "/api/articles/election-night"
ATOM = "{http://www.w3.org/2005/Atom}"


def ids_on(html: str) -> list[int]:
    stream = html.split('id="updates"', 1)[1].split('id="no-updates"', 1)[0]
    return [int(found) for found in re.findall(r'<article [^>]*id="update-(\d+)"', stream)]


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    return response.get_data(as_text=True)


def test_page_holds_the_pinned_update_and_the_newest_twenty(app, client, editor, story):
    ids = post_many(app, 45)
    pinned = post_many(app, 1, pinned=True)[0]
    html = page(client, URL)
    assert ids_on(html) == [pinned, *reversed(ids[-20:])]
    link = re.search(r'<a id="load-older"[^>]*href="([^"]+)"', html).group(1)
    assert link == f"{URL}?before={ids[-20]}"
    # The next page follows on without the pinned one, and the last page has no link.
    second = page(client, link.replace("&amp;", "&"))
    assert ids_on(second) == list(reversed(ids[5:25]))
    third = page(client, f"{URL}?before={ids[5]}")
    assert ids_on(third) == list(reversed(ids[:5])) and 'id="load-older"' not in third


@pytest.mark.both_databases
def test_page_and_api_page_back_by_the_same_cursor(app, client, editor, story):
    """Publication time orders the page, not id: a cursor by id would skip or repeat."""
    ids = post_many(app, 30)
    with app.app_context():  # the newest-numbered update was published first
        from datetime import timedelta

        from liveblog.models import Update

        first = db.session.get(Update, ids[0])
        last = db.session.get(Update, ids[-1])
        last.published_at = first.published_at - timedelta(minutes=1)
        db.session.commit()
    order = [*reversed(ids[:-1]), ids[-1]]
    assert ids_on(page(client, URL)) == order[:20]
    assert ids_on(page(client, f"{URL}?before={order[19]}")) == order[20:]
    api_first = client.get(f"{API}/updates?limit=20").get_json()["updates"]
    api_next = client.get(f"{API}/updates?limit=20&before={order[19]}").get_json()["updates"]
    assert [u["id"] for u in api_first + api_next] == order


def test_with_opens_a_page_that_holds_an_old_update(app, client, editor, story):
    ids = post_many(app, 120)
    deep = ids[50]
    html = page(client, f"{URL}?with={deep}")
    shown = ids_on(html)
    assert deep in shown and len(shown) == 20
    assert shown[:4] == [ids[53], ids[52], ids[51], deep]  # a few newer ones above it
    assert f'data-target="update-{deep}"' in html and 'data-head="false"' in html
    assert 'id="load-latest"' in html and 'id="load-older"' in html
    # Recent enough to be on the first page: that is the page.
    assert ids_on(page(client, f"{URL}?with={ids[-3]}")) == list(reversed(ids[-20:]))
    assert client.get(f"{URL}?with=999999").status_code == 404


def test_oldest_first_pages_on_with_load_newer(app, client, editor, story):
    ids = post_many(app, 25)
    html = page(client, f"{URL}?order=oldest")
    assert ids_on(html) == ids[:20] and 'data-order="oldest"' in html
    link = re.search(r'<a id="load-newer"[^>]*href="([^"]+)"', html).group(1)
    assert ids_on(page(client, link.replace("&amp;", "&"))) == ids[20:]
    assert client.get(f"{URL}?order=sideways").status_code == 400


def test_key_events_box_links_each_key_event(app, client, editor, story):
    old_key = post_many(app, 1, key_event=True, headline="Polls open")[0]
    post_many(app, 25)
    new_key = post_many(app, 1, key_event=True, headline="Polls close")[0]
    html = page(client, URL)
    box = html.split('<nav id="key-events"', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'href="([^"]+)"', box)
    assert links == [f"#update-{new_key}", f"{URL}?with={old_key}#update-{old_key}"]
    assert "Polls close" in box and "Polls open" in box


def test_a_change_gives_the_page_a_new_etag_and_if_none_match_gets_304(client, bearer, story):
    first = client.get(URL)
    etag = first.headers["ETag"]
    assert "seq-0" in etag
    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    client.post(f"{API}/updates", json={"body": "News"}, headers=bearer)
    after = client.get(URL, headers={"If-None-Match": etag})
    assert after.status_code == 200 and "seq-1" in after.headers["ETag"]
    assert b"News" in after.data


@pytest.mark.config(PUBLIC_URL="http://localhost")  # links a client cannot choose
def test_readers_may_be_served_from_a_shared_cache_editors_may_not(client, auth, story):
    control = client.get(URL).headers["Cache-Control"]
    assert "public" in control and "s-maxage=5" in control
    assert not {"private", "no-store", "no-cache"} & set(re.split(r"[,\s=]+", control))
    auth.login()
    signed_in = client.get(URL)
    assert "private" in signed_in.headers["Cache-Control"]
    assert b"Sign out alice" in signed_in.data


@pytest.mark.config(PAGE_MAX_AGE=30, PUBLIC_URL="http://localhost")
def test_shared_cache_lifetime_is_configurable(client, story):
    assert "s-maxage=30" in client.get(URL).headers["Cache-Control"]


def test_a_page_is_rendered_once_per_seq(app, client, bearer, story):
    rendered = []

    def record(sender, template, context, **extra):
        rendered.append(template.name)

    template_rendered.connect(record, app)
    try:
        for _ in range(3):
            page(client, URL)
        assert rendered.count("reader/article.html") == 1
        client.post(f"{API}/updates", json={"body": "News"}, headers=bearer)
        assert "News" in page(client, URL)
        assert rendered.count("reader/article.html") == 2
    finally:
        template_rendered.disconnect(record, app)


def test_json_ld_keeps_hostile_text_as_text(client, bearer, story):
    headline = "</script><script>alert(1)</script>"
    client.post(f"{API}/updates", json={"body": "x </script> y", "headline": headline},
                headers=bearer)  # fmt: skip
    html = page(client, URL)
    scripts = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(scripts) == 1
    data = json.loads(scripts[0])
    assert data["@type"] == "LiveBlogPosting" and data["coverageStartTime"]
    update = data["liveBlogUpdate"][0]
    assert update["headline"] == headline and update["articleBody"] == "x </script> y"
    assert update["url"].endswith(f"{URL}#update-1")
    assert "<script>alert" not in html


def test_json_ld_names_the_end_of_coverage(client, bearer, story):
    client.patch(API, json={"status": "ended"}, headers=bearer)
    html = page(client, URL)
    data = json.loads(re.search(r'ld\+json">(.*?)</script>', html, re.S).group(1))
    assert data["coverageEndTime"]


def test_story_page_names_itself_for_search_and_sharing(client, story):
    html = page(client, URL)
    assert '<link rel="canonical" href="http://localhost/articles/election-night">' in html
    assert '<meta name="description" content="Intro">' in html
    for tag in ('property="og:title" content="Election night"', 'property="og:type"',
                'property="og:url" content="http://localhost/articles/election-night"',
                'property="og:description"', 'name="twitter:card" content="summary"'):  # fmt: skip
        assert tag in html


@pytest.mark.config(PUBLIC_URL="https://news.example")
def test_public_url_makes_the_absolute_links(client, story):
    html = page(client, URL)
    assert 'rel="canonical" href="https://news.example/articles/election-night"' in html
    assert "Sitemap: https://news.example/sitemap.xml" in page(client, "/robots.txt")


def test_site_feed_and_sitemap_parse_back(client, bearer, story):
    client.post("/api/articles", json={"title": "Quiet one", "slug": "quiet"}, headers=bearer)
    client.post(f"{API}/updates", json={"body": "Fed"}, headers=bearer)
    feed = client.get("/feed.atom")
    assert feed.mimetype == "application/atom+xml"
    root = ET.fromstring(feed.data)
    entries = root.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["Quiet one", "Election night"]
    assert entries[1].find(f"{ATOM}link").get("href") == f"http://localhost{URL}"
    updated = entries[1].find(f"{ATOM}updated").text
    assert updated.endswith("Z") and root.find(f"{ATOM}updated").text == updated
    sitemap = ET.fromstring(client.get("/sitemap.xml").data)
    ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    locs = [loc.text for loc in sitemap.iter(f"{ns}loc")]
    assert f"http://localhost{URL}" in locs and "http://localhost/articles/quiet" in locs
    robots = page(client, "/robots.txt")
    assert "Disallow: /editor/" in robots and "Sitemap: http://localhost/sitemap.xml" in robots


def test_story_list_shows_each_last_update(client, bearer, story):
    assert "last update" not in page(client, "/")
    client.post(f"{API}/updates", json={"body": "Fed"}, headers=bearer)
    assert re.search(r'last update <time datetime="[^"]+Z">', page(client, "/"))


def test_only_the_embed_may_be_framed(client, story):
    assert "frame-ancestors 'self'" in client.get(URL).headers["Content-Security-Policy"]
    embed = client.get(f"{URL}/embed")
    assert embed.status_code == 200
    policy = embed.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in policy and "connect-src 'self'" in policy
    page_policy = client.get(URL).headers["Content-Security-Policy"]
    assert policy == page_policy.replace("frame-ancestors 'self'", "frame-ancestors *")
    assert b'id="updates"' in embed.data and b'class="masthead"' not in embed.data


def test_permalink_has_its_heading(client, bearer, story):
    update = client.post(f"{API}/updates", json={"body": "Solo"}, headers=bearer).get_json()
    html = page(client, f"{URL}/updates/{update['id']}")
    assert re.search(r"<h1[^>]*>Election night</h1>", html)


def test_processes_share_rendered_pages_through_redis():
    """Two processes' caches on one Redis: a page rendered by one is not rendered again."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    local_redis()
    first = PageCache(1 << 20, "redis://127.0.0.1:6379/0", prefix, ttl=30)
    second = PageCache(1 << 20, "redis://127.0.0.1:6379/0", prefix, ttl=30)
    renders = []

    def render() -> str:
        renders.append(1)
        return "<p>page at seq 7</p>"

    assert first.get("story:x", 7, render, shared="story:x") == "<p>page at seq 7</p>"
    assert second.get("story:x", 7, render, shared="story:x") == "<p>page at seq 7</p>"
    assert len(renders) == 1
    assert second.get("story:x", 8, render, shared="story:x") and len(renders) == 2  # a new seq
    # Redis gone: pages are still served, rendered here.
    down = PageCache(1 << 20, "redis://127.0.0.1:1/0", prefix, ttl=30)
    assert down.get("story:x", 7, render, shared="story:x") == "<p>page at seq 7</p>"
    assert len(renders) == 3
    first.redis.delete(f"{prefix}:page:story:x")


@pytest.mark.both_databases
def test_story_queries_are_index_scans(app, editor, story):
    """What keeps a 100,000-update story fast: each page query walks an index, never the
    story's whole table (the planner is asked, on both databases)."""
    post_many(app, 3, key_event=True)
    with app.app_context():
        article = Article.by_slug("election-night")
        cursor = article.stream(limit=1)[0]
        recorded = []

        def record(conn, cursor_, statement, parameters, context, executemany):
            recorded.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            article.stream(limit=5, pinned=True)  # the pinned ones
            article.stream(limit=21, pinned=False)  # the first page
            article.stream(cursor, limit=21, pinned=False)  # the next
            article.key_events()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        sqlite = db.engine.dialect.name == "sqlite"
        with db.engine.connect() as connection:
            if not sqlite:
                connection.exec_driver_sql("SET enable_seqscan = off")  # the table is tiny
            for statement, parameters in recorded:
                explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                rows = connection.exec_driver_sql(explain + statement, parameters)
                plan = " | ".join(str(row[-1]) for row in rows)
                print(plan)
                assert re.search(r"ix_updates_(stream|key_events|pinned)", plan), plan
                assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # no sorting
