"""Who is reading each story now: counted in this process, or across processes in Redis.

With Redis, each story has a sorted set of reader ids scored by when their entry lapses;
each process renews its own readers' entries while they stay, so a process that dies
stops being counted within a minute instead of inflating the count for ever.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from flask import Flask, current_app

from .extensions import socketio

ENTRY_LIFETIME = 60.0  # seconds an entry lasts without being renewed
RENEW_EVERY = 20.0


class Presence:
    def __init__(self) -> None:
        self._local: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._redis: redis.Redis | None = None
        self._prefix = "liveblog:readers"
        self._process = uuid.uuid4().hex[:12]
        self._renewing = False

    def init_app(self, app: Flask) -> None:
        url = app.config["REDIS_URL"]
        self._redis = redis.Redis.from_url(url) if url else None
        self._prefix = f"{app.config['REDIS_CHANNEL']}:readers"
        self._local = {}
        self._renewing = False

    def _key(self, slug: str) -> str:
        return f"{self._prefix}:{slug}"

    def _member(self, sid: str) -> str:
        return f"{self._process}:{sid}"

    def join(self, slug: str, sid: str) -> None:
        with self._lock:
            self._local.setdefault(slug, set()).add(sid)
        if self._redis is not None:
            with _tolerated("count a reader"):
                self._redis.zadd(self._key(slug), {self._member(sid): time.time() + ENTRY_LIFETIME})
            self._start_renewing()

    def leave(self, slug: str, sid: str) -> bool:
        """Stop counting a reader; False if it was not counted (it followed uncounted)."""
        with self._lock:
            readers = self._local.get(slug, set())
            if sid not in readers:
                return False
            readers.discard(sid)
            if not readers:
                self._local.pop(slug, None)
        if self._redis is not None:
            with _tolerated("uncount a reader"):  # the entry lapses by itself
                self._redis.zrem(self._key(slug), self._member(sid))
        return True

    def _local_count(self, slug: str) -> int:
        with self._lock:
            return len(self._local.get(slug, ()))

    def count(self, slug: str) -> int:
        if self._redis is None:
            return self._local_count(slug)
        key = self._key(slug)
        try:
            with self._redis.pipeline() as pipe:
                pipe.zremrangebyscore(key, "-inf", time.time())
                pipe.zcard(key)
                return pipe.execute()[1]
        except redis.RedisError:  # without Redis, this process's readers are the best guess
            return self._local_count(slug)

    def _start_renewing(self) -> None:
        with self._lock:
            if self._renewing:
                return
            self._renewing = True
        socketio.start_background_task(self._renew)

    def _renew(self) -> None:
        while True:
            socketio.sleep(RENEW_EVERY)
            with self._lock:
                local = {slug: set(sids) for slug, sids in self._local.items()}
            try:
                with self._redis.pipeline() as pipe:
                    lapse = time.time() + ENTRY_LIFETIME
                    for slug, sids in local.items():
                        pipe.zadd(self._key(slug), {self._member(sid): lapse for sid in sids})
                    pipe.execute()
            except redis.RedisError:
                pass  # renewed on the next round; entries outlive a few missed rounds


@contextmanager
def _tolerated(action: str) -> Iterator[None]:
    """Reader counts are an estimate: a Redis hiccup must not cost a reader its updates."""
    try:
        yield
    except redis.RedisError:
        current_app.logger.warning("could not %s: Redis unavailable", action)


presence = Presence()
