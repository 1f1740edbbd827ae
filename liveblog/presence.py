"""Who is reading each story now: counted in this process, or across processes in Redis.

Each process counts its own readers in memory; a join or a leave touches nothing else. With
Redis, each process writes its count for a story (one hash per story, one field per
process) when it sends that story's count and every RENEW_EVERY seconds, and keeps its entry
in a set of live processes scored by when it lapses; a process that dies stops being counted
within a minute. Whatever the audience, Redis sees a few commands per story per process,
never one per reader.
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

ENTRY_LIFETIME = 60.0  # seconds a process is counted without renewing
RENEW_EVERY = 20.0
EXTENSION = "liveblog.presence"


class PresenceState:
    """One app's reader counts."""

    def __init__(self, app: Flask) -> None:
        url = app.config["REDIS_URL"]
        self.redis: redis.Redis | None = redis.Redis.from_url(url) if url else None
        self.prefix = f"{app.config['REDIS_CHANNEL']}:readers"
        self.process = uuid.uuid4().hex[:12]
        self.local: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        self.renewing = False
        self.logger = app.logger

    def key(self, slug: str) -> str:
        return f"{self.prefix}:{slug}"

    @property
    def processes_key(self) -> str:
        return f"{self.prefix}:processes"

    def local_count(self, slug: str) -> int:
        with self.lock:
            return len(self.local.get(slug, ()))

    def renew(self) -> None:
        """Keep this process counted, and its counts fresh, for as long as it lives."""
        while True:
            with self.lock:
                counts = {slug: len(sids) for slug, sids in self.local.items()}
            try:
                with self.redis.pipeline() as pipe:
                    pipe.zadd(self.processes_key, {self.process: time.time() + ENTRY_LIFETIME})
                    for slug, count in counts.items():
                        pipe.hset(self.key(slug), self.process, count)
                    pipe.execute()
            except redis.RedisError:
                pass  # renewed on the next round; entries outlive a few missed rounds
            socketio.sleep(RENEW_EVERY)


class Presence:
    """The app's reader counts, reached through the current app (state in app.extensions)."""

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION] = PresenceState(app)

    @property
    def state(self) -> PresenceState:
        return current_app.extensions[EXTENSION]

    def join(self, slug: str, sid: str) -> None:
        state = self.state
        with state.lock:
            state.local.setdefault(slug, set()).add(sid)
            start = state.redis is not None and not state.renewing
            state.renewing = state.renewing or start
        if start:
            socketio.start_background_task(state.renew)

    def leave(self, slug: str, sid: str) -> bool:
        """Stop counting a reader; False if it was not counted (it followed uncounted)."""
        state = self.state
        with state.lock:
            readers = state.local.get(slug, set())
            if sid not in readers:
                return False
            readers.discard(sid)
            if not readers:
                state.local.pop(slug, None)
        return True

    def local_count(self, slug: str) -> int:
        return self.state.local_count(slug)

    def count(self, slug: str) -> int:
        """Readers of the story in every process (this one's count is written first)."""
        state = self.state
        mine = state.local_count(slug)
        if state.redis is None:
            return mine
        key, now = state.key(slug), time.time()
        try:
            with state.redis.pipeline() as pipe:
                pipe.zadd(state.processes_key, {state.process: now + ENTRY_LIFETIME})
                pipe.hset(key, state.process, mine)
                pipe.hgetall(key)
                pipe.zrangebyscore(state.processes_key, now, "+inf")
                *_, counts, alive = pipe.execute()
        except redis.RedisError:  # without Redis, this process's readers are the best guess
            return mine
        alive = set(alive)
        lapsed = [process for process in counts if process not in alive]
        if lapsed:
            with _tolerated("forget lapsed processes"):
                state.redis.hdel(key, *lapsed)
        return sum(int(n) for process, n in counts.items() if process in alive)


@contextmanager
def _tolerated(action: str) -> Iterator[None]:
    """Reader counts are an estimate: a Redis hiccup must not cost a reader its updates."""
    try:
        yield
    except redis.RedisError:
        current_app.logger.warning("could not %s: Redis unavailable", action)


presence = Presence()
