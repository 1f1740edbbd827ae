"""Rendered story pages, kept per story and seq: the work of a page view is done once per change.

A story's seq rises with every change to it, and every key here names the seq the page was
rendered at, so a change makes a new key and nothing ever needs invalidating: the old entries
simply stop being asked for and age out. Pages are kept in this process (a small LRU) and,
with REDIS_URL set, in Redis, so a crowd spread over several processes renders each page
once between them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import redis
from cachetools import LRUCache
from flask import Flask, current_app


class PageCache:
    def __init__(self, size: int, redis_url: str | None, prefix: str, ttl: int) -> None:
        self.local: LRUCache[str, str] = LRUCache(maxsize=size)
        # A slow or unreachable Redis must cost a page view a render, never a long wait.
        self.redis = (
            redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            if redis_url
            else None
        )
        self.prefix = f"{prefix}:page:"
        self.ttl = ttl

    def get(self, key: str, render: Callable[[], str]) -> str:
        page = self.local.get(key)
        if page is not None:
            return page
        page = self._shared_get(key)
        if page is None:
            page = render()
            self._shared_set(key, page)
        self.local[key] = page
        return page

    def _shared_get(self, key: str) -> str | None:
        if self.redis is None:
            return None
        try:
            found = self.redis.get(self.prefix + key)
        except redis.RedisError:
            return None  # a cache outage costs a render, never a page
        return found.decode() if found is not None else None

    def _shared_set(self, key: str, page: str) -> None:
        if self.redis is None:
            return
        with contextlib.suppress(redis.RedisError):
            self.redis.set(self.prefix + key, page.encode(), ex=self.ttl)


def init_app(app: Flask) -> None:
    app.extensions["liveblog_pages"] = PageCache(
        size=app.config["PAGE_CACHE_SIZE"],
        redis_url=app.config["REDIS_URL"],
        prefix=app.config["REDIS_CHANNEL"],
        ttl=app.config["PAGE_CACHE_TTL"],
    )


def cached(key: str, render: Callable[[], str]) -> str:
    return current_app.extensions["liveblog_pages"].get(key, render)
