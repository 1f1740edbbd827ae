"""What a story page may cost whatever readers ask for: the page cache bounded in bytes, Redis
in keys, renders in proportion to their output and in number per address, and a cursor that
tells nothing about updates readers cannot see."""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa
from flask_migrate import upgrade
from markupsafe import Markup

from liveblog import create_app, pagecache, services
from liveblog.extensions import db
from liveblog.models import Article, Editor, Update, utcnow
from liveblog.pagecache import PageCache
from liveblog.rendering import EXCERPT_CHARS
from tests.conftest import app_config, fresh_postgres_database, local_redis
from tests.stories import post_many

URL = "/articles/election-night"
API = "/api/articles/election-night"
REDIS = "redis://127.0.0.1:6379/0"


def pages(app):
    return app.extensions["liveblog_pages"]


# --- the page cache in bytes, Redis in keys -------------------------------------------


def large_body(n: int) -> str:
    """About 15,000 characters: a long update, as a live document or a transcript is."""
    return f"Transcript {n}. " + " ".join(f"word{k}&" for k in range(2000))


@pytest.mark.config(PAGE_CACHE_BYTES=2 * 1024 * 1024)
def test_the_page_cache_stays_within_its_bytes(app, client, editor, story):
    ids = post_many(app, 30, body=large_body(0))
    hosts = [f"h{k}.example" for k in range(5)]
    for host in hosts:
        for before in ids[5:]:
            assert client.get(f"{URL}?before={before}", headers={"Host": host}).status_code == 200
    held = pages(app).local
    assert len(held) >= 2  # large pages are still kept, a few at a time
    assert sum(sys.getsizeof(page) for page in held.values()) <= 2 * 1024 * 1024


def test_page_cache_bounds_hold_for_any_page():
    """PAGE_CACHE_SIZE still caps the count; a page larger than the whole cache is served
    and not kept."""
    cache = PageCache(4096, None, "test", ttl=30, max_pages=2)
    for seq in range(3):
        assert cache.get("story:page", seq, lambda: "small") == "small"
    assert len(cache.local) == 2
    assert cache.get("story:huge", 1, lambda: "x" * 10_000) == "x" * 10_000
    assert "story:huge:1" not in cache.local and cache.local.currsize <= 4096


@pytest.fixture
def shared_pages(app) -> Iterator[redis.Redis]:
    """The app's page cache on Redis, under a prefix of this test's own, emptied after.

    Only the page cache: an app made with REDIS_URL would also put Flask-SocketIO, one object
    for every app in this process, on a message queue for the tests that follow.
    """
    connection = local_redis(REDIS)
    app.config.update(REDIS_URL=REDIS, REDIS_CHANNEL=f"test-pages-{uuid.uuid4().hex[:10]}")
    pagecache.init_app(app)
    yield connection
    for key in page_keys(app, connection):
        connection.delete(key)


def page_keys(app, connection: redis.Redis) -> list[bytes]:
    """The page keys under the app's prefix, counted the way an operator would: SCAN."""
    return list(connection.scan_iter(match=f"{app.config['REDIS_CHANNEL']}:page:*", count=1000))


def crowd_of_variants(client, ids: list[int]) -> None:
    """Every variant a client can name: Host headers, orders, cursors, ?with=, the embed."""
    for k in range(12):
        host = {"Host": f"variant{k}.example"}
        for query in ("", "?order=oldest", f"?before={ids[k]}", f"?with={ids[k]}",
                      f"?order=oldest&before={ids[k]}"):  # fmt: skip
            assert client.get(URL + query, headers=host).status_code == 200
            assert client.get(f"{URL}/embed{query}", headers=host).status_code == 200


def test_requests_cannot_mint_redis_keys_without_a_named_host(
    app, client, editor, story, shared_pages
):
    crowd_of_variants(client, post_many(app, 30))
    assert page_keys(app, shared_pages) == []  # no PUBLIC_URL, no ALLOWED_HOSTS: not shared


@pytest.mark.config(PUBLIC_URL="https://news.example")
def test_redis_holds_one_key_per_head_page_whatever_is_asked(
    app, client, editor, story, shared_pages
):
    ids = post_many(app, 30)
    crowd_of_variants(client, ids)
    keys = page_keys(app, shared_pages)
    # The story's two head pages (newest first, oldest first) in its two templates.
    assert len(keys) == 4
    post_many(app, 1)  # the seq moves on: the same keys are overwritten
    crowd_of_variants(client, ids)
    assert sorted(page_keys(app, shared_pages)) == sorted(keys)
    with app.app_context():
        seq = Article.by_slug("election-night").seq
    assert {shared_pages.get(key).split(b"\n", 1)[0] for key in keys} == {str(seq).encode()}
    # With PUBLIC_URL, the Host header changes nothing: one page per variant (two templates,
    # two head pages and three kinds of cursor on twelve updates), not one per Host.
    assert len([key for key in pages(app).local if key.endswith(f":{seq}")]) == 2 * (2 + 3 * 12)


@pytest.mark.config(ALLOWED_HOSTS=["news.example"])
def test_only_an_allowed_host_shares_pages_through_redis(app, client, editor, story, shared_pages):
    post_many(app, 3)
    assert client.get(URL, headers={"Host": "news.example"}).status_code == 200
    keys = page_keys(app, shared_pages)
    assert len(keys) == 1
    # Other names are refused outright (liveblog/hosts.py); the allowed name with a port of
    # the client's choosing passes Flask's check, which ignores ports, but is not shared.
    answers = {"other.example": 400, "news.example.evil": 400, "NEWS.example": 400}
    answers["news.example:8080"] = 200
    for host, status in answers.items():
        assert client.get(URL, headers={"Host": host}).status_code == status, host
    assert page_keys(app, shared_pages) == keys


@pytest.mark.config(PAGE_CACHE_SHARED_MAX_BYTES=1000, PUBLIC_URL="https://news.example")
def test_pages_over_the_shared_cap_stay_out_of_redis(app, client, editor, story, shared_pages):
    post_many(app, 3)
    assert client.get(URL).status_code == 200
    assert page_keys(app, shared_pages) == []
    assert len(pages(app).local) == 1  # kept in the process all the same


# --- excerpts: a render reads them, never an update's whole HTML ----------------------


@pytest.mark.both_databases
def test_excerpts_are_written_with_the_html_and_pages_read_them(app, client, bearer, story):
    created = client.post(
        f"{API}/updates", json={"body": "First *draft* of &amp; the news", "key_event": True},
        headers=bearer,
    ).get_json()  # fmt: skip
    with app.app_context():
        update = db.session.get(Update, created["id"])
        assert update.excerpt == "First draft of & the news"
        assert Article.by_slug("election-night").excerpt == "Intro"
    client.patch(f"{API}/updates/{created['id']}", json={"body": "Second **take**"},
                 headers=bearer)  # fmt: skip
    client.patch(API, json={"body": "A *new* introduction"}, headers=bearer)
    long = client.post(f"{API}/updates", json={"body": "word " * 3000}, headers=bearer)
    with app.app_context():
        assert db.session.get(Update, created["id"]).excerpt == "Second take"
        assert Article.by_slug("election-night").excerpt == "A new introduction"
        assert len(db.session.get(Update, long.get_json()["id"]).excerpt) <= EXCERPT_CHARS
        # What pages show comes from the excerpts: make them say what the HTML does not.
        db.session.get(Update, created["id"]).excerpt = "Excerpt of the update"
        Article.by_slug("election-night").excerpt = "Excerpt of the story"
        db.session.commit()
    html = client.get(URL).get_data(as_text=True)
    assert '<span class="key-title">Excerpt of the update</span>' in html
    assert '<meta name="description" content="Excerpt of the story">' in html
    posting = json.loads(re.search(r'ld\+json">(.*?)</script>', html, re.S).group(1))
    assert posting["description"] == "Excerpt of the story"
    bodies = {item["articleBody"] for item in posting["liveBlogUpdate"]}
    assert "Excerpt of the update" in bodies
    permalink = client.get(f"{URL}/updates/{created['id']}").get_data(as_text=True)
    assert '<meta name="description" content="Excerpt of the update">' in permalink
    assert "Excerpt of the story" in client.get("/feed.atom").get_data(as_text=True)


def test_a_render_strips_no_html(app, client, editor, story, monkeypatch):
    """Tags are stripped when an update is written; a page view, cached or not, never does."""
    post_many(app, 30, body=large_body(0), key_event=True)

    def refuse(self):
        raise AssertionError("a page view stripped an update's HTML")

    monkeypatch.setattr(Markup, "striptags", refuse)
    for query in ("", "?order=oldest", "?before=20"):
        assert client.get(URL + query).status_code == 200
    assert client.get(f"{URL}/updates/3").status_code == 200
    assert client.get("/feed.atom").status_code == 200


# --- renders per address ----------------------------------------------------------------


@pytest.mark.config(RATELIMIT_ENABLED=True, PAGE_RENDER_RATE_LIMIT="3 per minute")
def test_uncached_renders_are_limited_per_address(app, client, editor, story):
    ids = post_many(app, 10)
    first = client.get(URL)
    for before in ids[:2]:
        assert client.get(f"{URL}?before={before}").status_code == 200
    refused = client.get(f"{URL}?before={ids[5]}")
    assert refused.status_code == 429
    assert "3 per minute" in refused.get_data(as_text=True)
    as_json = client.get(f"{URL}?before={ids[6]}", headers={"Accept": "application/json"})
    assert "too many story pages" in as_json.get_json()["error"]
    # Cached pages and 304s are served, and never counted, whatever the count.
    assert client.get(URL).status_code == 200
    assert client.get(URL, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    # Another address has its own count.
    other = client.get(f"{URL}?before={ids[5]}", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


# --- the cursor tells nothing of unpublished updates ------------------------------------


@pytest.mark.both_databases
def test_a_cursor_on_an_unpublished_update_is_an_unknown_id(app, client, editor, story):
    published = post_many(app, 4)
    draft = post_many(app, 1, draft=True)[0]
    scheduled = post_many(app, 1, publish_at=utcnow() + timedelta(hours=1))[0]
    unknown = scheduled + 100
    for name in ("before", "with"):
        expected = client.get(f"{URL}?{name}={unknown}")
        assert expected.status_code == 404
        for hidden in (draft, scheduled):
            answer = client.get(f"{URL}?{name}={hidden}")
            assert answer.status_code == 404
            assert answer.get_data(as_text=True) == expected.get_data(as_text=True).replace(
                str(unknown), str(hidden)
            )
    api_unknown = client.get(f"{API}/updates?before={unknown}")
    for hidden in (draft, scheduled):
        answer = client.get(f"{API}/updates?before={hidden}")
        assert (answer.status_code, answer.get_json()) == (
            api_unknown.status_code,
            api_unknown.get_json(),
        )
    # A published update readers saw, since deleted, still leads on to the older ones.
    with app.app_context():
        story_row = Article.by_slug("election-night")
        services.delete_update(story_row, published[2], db.session.scalar(sa.select(Editor)))
    assert client.get(f"{URL}?before={published[2]}").status_code == 200
    older = client.get(f"{API}/updates?before={published[2]}").get_json()["updates"]
    assert [update["id"] for update in older] == [published[1], published[0]]


# --- the migration ----------------------------------------------------------------------


def migrated_excerpts(database_url: str) -> None:
    """Upgrade a database holding stories and updates to 0006: each gets its excerpt."""
    app = create_app(app_config(database_url))
    with app.app_context():
        upgrade(revision="5c2e8d41a7b3")
        with db.engine.begin() as connection:
            tables = sa.MetaData()
            tables.reflect(connection, only=("editors", "articles", "updates"))
            editors, articles, updates = (tables.tables[name] for name in
                                          ("editors", "articles", "updates"))  # fmt: skip
            now = utcnow().replace(tzinfo=None)
            connection.execute(editors.insert(), [{"id": 1, "username": "alice",
                               "password_hash": "x", "created_at": now,
                               "is_admin": False}])  # fmt: skip
            connection.execute(articles.insert(), [{"id": 1, "slug": "s", "title": "S",
                               "body": "", "html": "<p>The <em>story</em></p>", "status": "live",
                               "seq": 0, "created_at": now}])  # fmt: skip
            rows = [
                {"id": n, "article_id": 1, "author_id": 1, "body": "", "element": "",
                 "html": f"<p>Update <strong>{n}</strong> &amp; more</p>", "key_event": False,
                 "pinned": False, "status": "published", "published_at": now}
                for n in range(1, 1206)
            ]  # fmt: skip
            rows[-1]["html"] = "<p>" + "long " * 2000 + "</p>"
            connection.execute(updates.insert(), rows)
        upgrade()
        found = dict(db.session.execute(sa.select(Update.id, Update.excerpt)).all())
        assert len(found) == 1205
        assert found[1] == "Update 1 & more" and found[1204] == "Update 1204 & more"
        assert len(found[1205]) <= EXCERPT_CHARS and found[1205].endswith("…")
        assert db.session.scalar(sa.select(Article.excerpt)) == "The story"
        db.session.remove()
        db.engine.dispose()


def test_the_migration_fills_in_every_excerpt_on_sqlite(tmp_path):
    migrated_excerpts(f"sqlite:///{tmp_path / 'migrated.sqlite'}")


def test_the_migration_fills_in_every_excerpt_on_postgresql():
    with fresh_postgres_database("liveblog_migrate") as url:
        migrated_excerpts(url)
