"""Rendered story pages, kept per story and seq: the work of a page view is done once per change.

A story's seq rises with every change to it, and every key here names the seq the page was
rendered at, so a change makes a new key and nothing ever needs invalidating: the old entries
simply stop being asked for and age out.

Both stores are bounded whatever readers ask for. This process keeps pages in an LRU bounded
in bytes (PAGE_CACHE_BYTES) as well as in pages (PAGE_CACHE_SIZE). With REDIS_URL set, only
each story's head pages are shared between processes, one Redis key per page, overwritten as
the seq moves (the value names the seq it was rendered at), and only pages of at most
PAGE_CACHE_SHARED_MAX_BYTES: so Redis holds a few keys per story, however many variants
(`?before=`, `?with=`, Host headers) a crowd or an attacker requests.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import redis
from cachetools import LRUCache
from flask import Flask, current_app


class PageCache:
    def __init__(
        self,
        max_bytes: int,
        redis_url: str | None,
        prefix: str,
        ttl: int,
        *,
        max_pages: int | None = None,
        shared_max_bytes: int = 1024 * 1024,
    ) -> None:
        # sys.getsizeof is what a page costs this process (a str of non-Latin text takes two
        # or four bytes a character), not its length.
        self.local: LRUCache[str, str] = LRUCache(maxsize=max_bytes, getsizeof=sys.getsizeof)
        self.max_pages = max_pages
        # A slow or unreachable Redis must cost a page view a render, never a long wait.
        self.redis = (
            redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            if redis_url
            else None
        )
        self.prefix = f"{prefix}:page:"
        self.ttl = ttl
        self.shared_max_bytes = shared_max_bytes

    def get(self, key: str, seq: int, render: Callable[[], str], shared: str | None = None) -> str:
        """The page `key` at `seq`, rendered at most once per seq in this process; `shared`
        names the Redis key other processes find it under (None: this page is not shared)."""
        local_key = f"{key}:{seq}"
        page = self.local.get(local_key)
        if page is not None:
            return page
        page = self._shared_get(shared, seq) if shared else None
        if page is None:
            page = render()
            if shared:
                self._shared_set(shared, seq, page)
        self._keep(local_key, page)
        return page

    def _keep(self, key: str, page: str) -> None:
        with contextlib.suppress(ValueError):  # a page larger than the whole cache: not kept
            self.local[key] = page
        while self.max_pages is not None and len(self.local) > self.max_pages:
            self.local.popitem()

    def _shared_get(self, key: str, seq: int) -> str | None:
        if self.redis is None:
            return None
        try:
            found = self.redis.get(self.prefix + key)
        except redis.RedisError:
            return None  # a cache outage costs a render, never a page
        if found is None:
            return None
        stored_seq, _, page = found.partition(b"\n")
        return page.decode() if stored_seq == str(seq).encode() else None

    def _shared_set(self, key: str, seq: int, page: str) -> None:
        data = page.encode()
        if self.redis is None or len(data) > self.shared_max_bytes:
            return
        # Overwritten at each seq. A process still at an older seq may overwrite a newer page;
        # the next reader at the newer seq then renders it again: a render, never a stale page.
        with contextlib.suppress(redis.RedisError):
            self.redis.set(self.prefix + key, b"%d\n%s" % (seq, data), ex=self.ttl)


def init_app(app: Flask) -> None:
    app.extensions["liveblog_pages"] = PageCache(
        max_bytes=app.config["PAGE_CACHE_BYTES"],
        max_pages=app.config["PAGE_CACHE_SIZE"],
        redis_url=app.config["REDIS_URL"],
        prefix=app.config["REDIS_CHANNEL"],
        ttl=app.config["PAGE_CACHE_TTL"],
        shared_max_bytes=app.config["PAGE_CACHE_SHARED_MAX_BYTES"],
    )


def cached(key: str, seq: int, render: Callable[[], str], shared: str | None = None) -> str:
    return current_app.extensions["liveblog_pages"].get(key, seq, render, shared)
