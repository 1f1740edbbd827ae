"""What a story page tells caches (Cache-Control, Vary, ETag), and what the page cache keeps.

A shared cache that keeps an editor's page, or a page whose links name a host the client
chose, hands it to every reader; one that keeps a reader's page past its seq shows a stale
story. Each directive is asserted exactly.
"""

from __future__ import annotations

import re
import socket
import uuid

import pytest
import redis

from liveblog import pagecache, services
from liveblog.extensions import db, limiter
from liveblog.models import Article, Editor
from liveblog.pagecache import PageCache
from tests.conftest import local_redis

URL = "/articles/election-night"
REDIS = "redis://127.0.0.1:6379/0"
ETAG = re.compile(r'^"seq-(\d+)-([0-9a-f]{16})(-editor)?"$')


def post(app, editor, body: str = "Polls close") -> None:
    with app.app_context():
        author = db.session.get(Editor, editor.id)
        services.post_update(Article.by_slug("election-night"), author, body)


def directives(response) -> set[str]:
    return {part.strip() for part in response.headers["Cache-Control"].split(",")}


def etag_of(response) -> tuple[int, str, bool]:
    match = ETAG.match(response.headers["ETag"])
    assert match, response.headers["ETag"]
    return int(match.group(1)), match.group(2), bool(match.group(3))


def test_without_a_named_host_a_readers_page_may_be_shared(client, story):
    """A development server (`make run`): `make serve` refuses to run without a name."""
    response = client.get(URL)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert directives(response) == {"public", "max-age=5", "s-maxage=5"}
    assert response.headers["Vary"] == "Cookie"


@pytest.mark.config(PUBLIC_URL="https://news.example", PAGE_MAX_AGE=30)
def test_with_public_url_a_readers_page_may_be_shared(client, story):
    response = client.get(URL)
    assert directives(response) == {"public", "max-age=30", "s-maxage=30"}
    assert response.headers["Vary"] == "Cookie"


@pytest.mark.config(ALLOWED_HOSTS=["news.example"], PAGE_MAX_AGE=30)
def test_an_allowed_host_named_exactly_may_be_shared(client, story):
    named = client.get(URL, headers={"Host": "news.example"})
    assert directives(named) == {"public", "max-age=30", "s-maxage=30"}


@pytest.mark.config(PUBLIC_URL="https://news.example")
def test_an_editors_page_is_never_kept(client, auth, story):
    auth.login()
    response = client.get(URL)
    assert directives(response) == {"private", "no-cache"}
    assert response.headers["Vary"] == "Cookie"
    assert etag_of(response)[2] is True


def test_the_etag_names_the_seq_and_the_view(app, client, editor, story):
    seq, page, editors = etag_of(client.get(URL))
    assert (seq, editors) == (0, False)
    assert etag_of(client.get(URL))[:2] == (0, page)  # the same page, the same tag
    assert etag_of(client.get(f"{URL}?order=oldest"))[1] != page
    assert etag_of(client.get(f"{URL}/embed"))[1] != page
    post(app, editor)
    assert etag_of(client.get(URL))[:2] == (1, page)


def test_a_fresh_copy_is_answered_304_with_its_headers(app, client, editor, story):
    first = client.get(URL)
    again = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Vary"] == "Cookie"
    assert directives(again) == {"public", "max-age=5", "s-maxage=5"}
    post(app, editor, "Exit poll")
    after = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert after.status_code == 200 and "Exit poll" in after.get_data(as_text=True)


@pytest.mark.config(RATELIMIT_ENABLED=True, PAGE_RENDER_RATE_LIMIT="2 per minute")
def test_only_fresh_renders_count_against_an_address(app, client, auth, story):
    with app.app_context():
        limiter.reset()  # in-memory counts outlive an app
    for _ in range(5):  # one render, then the cache
        assert client.get(URL).status_code == 200
    assert client.get(f"{URL}?order=oldest").status_code == 200  # the second render
    refused = client.get(f"{URL}/embed")
    assert refused.status_code == 429
    assert "the limit is 2 per minute" in refused.get_data(as_text=True)
    auth.login()  # editors' pages are rendered for them, never counted
    for _ in range(3):
        assert client.get(f"{URL}/embed").status_code == 200


@pytest.mark.config(RATELIMIT_ENABLED=True, PAGE_RENDER_RATE_LIMIT="1 per minute")
def test_each_address_has_its_own_render_count(app, client, story):
    with app.app_context():
        limiter.reset()
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}?order=oldest").status_code == 429
    other = client.get(f"{URL}?order=oldest", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


@pytest.mark.config(RATELIMIT_ENABLED=True, PAGE_RENDER_RATE_LIMIT="1 per minute")
def test_when_the_render_count_cannot_be_kept_pages_are_served(app, client, story, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("storage down")

    with app.app_context():
        limiter.reset()
        storage = limiter.limiter
    original = storage.hit
    storage.hit = down
    try:
        for order in ("newest", "oldest"):
            assert client.get(f"{URL}?order={order}").status_code == 200
    finally:
        storage.hit = original
    assert caplog.messages.count("the page render count could not be kept") == 2


def test_a_page_built_for_one_host_is_not_served_to_another(client, story):
    first = client.get(URL, headers={"Host": "one.example"}).get_data(as_text=True)
    second = client.get(URL, headers={"Host": "two.example"}).get_data(as_text=True)
    assert "http://one.example/articles/election-night" in first
    assert "one.example" not in second and "http://two.example/articles/election-night" in second


def test_an_editor_never_gets_the_readers_copy(client, auth, story):
    assert "Sign out" not in client.get(URL).get_data(as_text=True)  # now in the cache
    auth.login()
    assert "Sign out alice" in client.get(URL).get_data(as_text=True)


def test_a_fresh_copy_costs_no_render_even_out_of_the_cache(app, client, story, monkeypatch):
    etag = client.get(URL).headers["ETag"]
    app.extensions["liveblog_pages"].local.clear()  # as in another process, or evicted
    renders = []
    monkeypatch.setattr("liveblog.reader.render_template", lambda *a, **k: renders.append(1))
    assert client.get(URL, headers={"If-None-Match": etag}).status_code == 304
    assert renders == []


def test_a_page_is_rendered_once_per_seq(app, client, editor, story, monkeypatch):
    renders = []
    real = app.jinja_env.get_template("reader/article.html").render

    def counting(*args, **kwargs):
        renders.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(app.jinja_env.get_template("reader/article.html"), "render", counting)
    for _ in range(3):
        client.get(URL)
    assert len(renders) == 1
    post(app, editor)
    client.get(URL)
    client.get(URL)
    assert len(renders) == 2


# --- the cache itself ---------------------------------------------------------------------


class Renders:
    def __init__(self, page: str = "<p>page</p>") -> None:
        self.page = page
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return self.page


def test_a_page_is_kept_per_key_and_seq():
    cache = PageCache(1 << 20, None, "t", ttl=30)
    render = Renders()
    assert cache.get("a", 1, render) == "<p>page</p>"
    assert cache.get("a", 1, render) == "<p>page</p>"
    assert render.count == 1
    cache.get("a", 2, render)
    cache.get("b", 1, render)
    assert render.count == 3


def test_the_cache_keeps_at_most_max_pages_dropping_the_least_used():
    cache = PageCache(1 << 20, None, "t", ttl=30, max_pages=2)
    render = Renders()
    cache.get("a", 1, render)
    cache.get("b", 1, render)
    cache.get("a", 1, render)  # a is now the most recently used
    cache.get("c", 1, render)  # b goes
    assert render.count == 3
    assert sorted(cache.local) == ["a:1", "c:1"]
    cache.get("a", 1, render)
    assert render.count == 3


def test_a_page_larger_than_the_cache_is_served_but_not_kept():
    cache = PageCache(1000, None, "t", ttl=30)
    render = Renders("x" * 2000)
    assert cache.get("a", 1, render) == "x" * 2000
    assert cache.get("a", 1, render) == "x" * 2000
    assert render.count == 2 and len(cache.local) == 0


@pytest.fixture
def shared():
    local_redis(REDIS)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield prefix
    connection = redis.Redis.from_url(REDIS)
    for key in connection.scan_iter(f"{prefix}:*"):
        connection.delete(key)


def test_a_shared_page_is_stored_under_one_key_naming_its_seq(shared):
    first = PageCache(1 << 20, REDIS, shared, ttl=30)
    second = PageCache(1 << 20, REDIS, shared, ttl=30)
    render = Renders()
    first.get("local-a", 7, render, shared="story:a")
    stored = first.redis.get(f"{shared}:page:story:a")
    assert stored == b"7\n<p>page</p>"
    assert 0 < first.redis.ttl(f"{shared}:page:story:a") <= 30
    assert second.get("local-b", 7, render, shared="story:a") == "<p>page</p>"
    assert render.count == 1
    # another seq is not served from the stored page, and overwrites it
    assert second.get("local-b", 8, render, shared="story:a") == "<p>page</p>"
    assert render.count == 2
    assert first.redis.get(f"{shared}:page:story:a") == b"8\n<p>page</p>"
    # a page not shared never reaches Redis
    first.get("local-c", 1, render)
    assert sorted(first.redis.scan_iter(f"{shared}:*")) == [f"{shared}:page:story:a".encode()]


def test_a_shared_page_of_many_lines_comes_back_whole(shared):
    first = PageCache(1 << 20, REDIS, shared, ttl=30)
    second = PageCache(1 << 20, REDIS, shared, ttl=30)
    first.get("a", 3, Renders("<p>one</p>\n<p>two</p>\n"), shared="story:a")
    render = Renders("rendered again")
    assert second.get("b", 3, render, shared="story:a") == "<p>one</p>\n<p>two</p>\n"
    assert render.count == 0


def test_a_page_over_the_shared_bound_stays_in_its_process(shared):
    cache = PageCache(1 << 20, REDIS, shared, ttl=30, shared_max_bytes=10)
    cache.get("a", 1, Renders("0123456789"), shared="fits")
    cache.get("b", 1, Renders("0123456789A"), shared="too-big")
    assert cache.redis.get(f"{shared}:page:fits") == b"1\n0123456789"
    assert cache.redis.get(f"{shared}:page:too-big") is None


def test_a_redis_outage_costs_a_render_never_a_page():
    cache = PageCache(1 << 20, "redis://127.0.0.1:1/0", "t", ttl=30)
    render = Renders()
    assert cache.get("a", 1, render, shared="a") == "<p>page</p>"
    assert cache.get("a", 1, render, shared="a") == "<p>page</p>"
    assert render.count == 1  # kept in the process all the same


def test_a_redis_that_never_answers_costs_a_render_never_a_page():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog and are never read
        port = silent.getsockname()[1]
        cache = PageCache(1 << 20, f"redis://127.0.0.1:{port}/0", "t", ttl=30)
        render = Renders()
        assert cache.get("a", 1, render, shared="a") == "<p>page</p>"
        assert render.count == 1


@pytest.fixture
def story_pages_on_redis(app, shared):
    """The app's page cache (only it: not Socket.IO) on Redis, under the test's prefix."""
    app.config.update(REDIS_URL=REDIS, REDIS_CHANNEL=shared)
    pagecache.init_app(app)
    return redis.Redis.from_url(REDIS)


def stored_pages(connection, prefix: str) -> list[str]:
    return sorted(key.decode() for key in connection.scan_iter(f"{prefix}:page:*"))


@pytest.mark.config(PUBLIC_URL="https://news.example")
def test_only_head_pages_are_shared_one_key_each(app, client, editor, story, story_pages_on_redis):
    post(app, editor, "First")
    post(app, editor, "Second")
    prefix = app.config["REDIS_CHANNEL"]
    client.get(URL)
    (key,) = stored_pages(story_pages_on_redis, prefix)
    assert re.fullmatch(rf"{prefix}:page:election-night:[0-9a-f]{{16}}", key)
    head = story_pages_on_redis.get(key)
    assert head.startswith(b"2\n<!doctype html>")
    with app.app_context():
        first = Article.by_slug("election-night").stream(limit=2)
    for query in (f"?before={first[0].id}", f"?with={first[1].id}"):
        assert client.get(URL + query).status_code == 200
    older = client.get(f"{URL}?before={first[0].id}").get_data(as_text=True)
    assert "First" in older and "Second" not in older  # its own page, not the head's
    assert stored_pages(story_pages_on_redis, prefix) == [key]
    assert story_pages_on_redis.get(key) == head  # not overwritten by another page
    client.get(f"{URL}?order=oldest")
    client.get(f"{URL}/embed")
    assert len(stored_pages(story_pages_on_redis, prefix)) == 3


@pytest.mark.config(ALLOWED_HOSTS=["news.example", "www.news.example"])
def test_only_a_named_host_shares_pages_each_its_own(app, client, story, story_pages_on_redis):
    prefix = app.config["REDIS_CHANNEL"]
    client.get(URL, headers={"Host": "news.example"})
    assert len(stored_pages(story_pages_on_redis, prefix)) == 1
    client.get(URL, headers={"Host": "www.news.example"})  # its links name its own host
    assert len(stored_pages(story_pages_on_redis, prefix)) == 2


def test_without_a_named_host_nothing_is_shared(app, client, story, story_pages_on_redis):
    client.get(URL)
    assert stored_pages(story_pages_on_redis, app.config["REDIS_CHANNEL"]) == []


@pytest.mark.config(
    PAGE_CACHE_BYTES=12345,
    PAGE_CACHE_SIZE=7,
    PAGE_CACHE_TTL=99,
    PAGE_CACHE_SHARED_MAX_BYTES=555,
    REDIS_CHANNEL="chan",
)
def test_the_settings_reach_the_cache(app):
    pages = app.extensions["liveblog_pages"]
    assert (pages.local.maxsize, pages.max_pages, pages.ttl, pages.shared_max_bytes) == (
        12345,
        7,
        99,
        555,
    )
    assert pages.prefix == "chan:page:" and pages.redis is None
