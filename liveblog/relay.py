"""Delivers each story's changes to this process's readers in seq order, exactly once.

Changes to one story commit in seq order (the seq is taken with a row lock held to commit),
but the broadcasts that follow the commits can race one another: two greenlets in one
process, or two processes through Redis. So every process relays changes through here. It
remembers the last seq it delivered to each story's room; a change that skips ahead means
the ones in between have already committed, so they are read from the change log and
delivered first; a change that arrives after a later one was delivered is dropped.

A reader joining a story is caught up under the same per-story lock, so no live change can
slip in between its catch-up and the live stream.

With REDIS_URL set, changes travel between processes on a Redis channel of their own, and
each process delivers them to its own readers only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, has_app_context

from . import metrics
from .extensions import db, socketio
from .models import Article, Change

Payload = dict[str, Any]
RESYNC_EVERY = 5.0  # seconds between checks that every room here has every change


def room(slug: str) -> str:
    return f"article:{slug}"


class Relay:
    def __init__(self) -> None:
        self._app: Flask | None = None
        self._redis: redis.Redis | None = None
        self._channel = "liveblog:changes"
        self._delivered: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._listening = False

    def init_app(self, app: Flask) -> None:
        self._app = app
        url = app.config["REDIS_URL"]
        self._redis = redis.Redis.from_url(url) if url else None
        self._channel = f"{app.config['REDIS_CHANNEL']}:changes"
        self._delivered = {}
        self._listening = False

    def _lock(self, slug: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(slug, threading.Lock())

    # --- sending -------------------------------------------------------------------

    def publish(self, change: Payload) -> None:
        """Hand a committed CHANGE to every process (or just this one, without Redis)."""
        if self._redis is not None:
            try:
                self._redis.publish(self._channel, json.dumps(change))
                return
            except redis.RedisError:
                # Other processes catch up when Redis is back (see resync); readers here
                # need not wait for it.
                self._app.logger.warning("Redis unavailable: change %s sent locally", change["seq"])
        self.deliver(change)

    def deliver(self, change: Payload) -> None:
        slug, seq = change["article"], change["seq"]
        with self._lock(slug):  # held while emitting, so a story's emits leave in seq order
            last = self._delivered.get(slug)
            if last is None:  # nobody here has subscribed to this story: nobody to tell
                self._delivered[slug] = seq
                return
            if seq <= last:
                return
            for missed in self._between(slug, last, seq):
                self._emit_to_room(missed)
            self._emit_to_room(change)
            self._delivered[slug] = seq

    def join(
        self,
        slug: str,
        enter: Callable[[], None],
        read_log: Callable[[], tuple[list[Change], int]],
        send: Callable[[Payload], None],
    ) -> int:
        """Put a reader in the story's room, catch it up, and return the seq it is now at.

        `enter` joins the room; `read_log` reads the changes the reader missed and the story's
        latest seq; `send` emits one change to this reader alone. All of it runs under the
        story's lock, so nothing is delivered live meanwhile: the reader gets the changes up
        to what the room has had, then any the room has not had yet are delivered to the
        whole room, the new reader included, in order.
        """
        with self._lock(slug):
            enter()
            missed, latest = read_log()
            delivered = self._delivered.setdefault(slug, latest)
            for change in missed:
                if change.seq <= delivered:
                    send(change.payload)
            for payload in self._between(slug, delivered, latest + 1):
                self._emit_to_room(payload)
            self._delivered[slug] = max(delivered, latest)
            return self._delivered[slug]

    def _emit_to_room(self, change: Payload) -> None:
        # ignore_queue: only this process's readers; every process has its own relay.
        socketio.emit("change", change, to=room(change["article"]), ignore_queue=True)
        metrics.changes_delivered(change)

    def _between(self, slug: str, low: int, high: int) -> list[Payload]:
        """The logged changes with low < seq < high, oldest first (at most MAX_CATCH_UP).

        A room further behind than that skips ahead: its readers see the jump in seq and
        fetch the rest from the changes API themselves.
        """
        if high - low <= 1:
            return []
        if has_app_context():  # a request or socket event: use its session and connection
            return self._read_between(slug, low, high)
        with self._app.app_context():
            try:
                return self._read_between(slug, low, high)
            finally:
                db.session.remove()

    def _read_between(self, slug: str, low: int, high: int) -> list[Payload]:
        article = Article.by_slug(slug)
        if article is None:
            return []
        limit = min(high - low - 1, self._app.config["MAX_CATCH_UP"])
        changes = article.changes_since(high - 1 - limit, limit=limit)
        return [change.payload for change in changes if change.seq < high]

    def resync(self) -> None:
        """Bring every room here up to its story's latest seq, from the change log.

        Run after (re)subscribing to Redis and now and then: a change published while this
        process was not listening would otherwise wait for the next change to show the gap.
        """
        with self._app.app_context():
            try:
                for slug in list(self._delivered):
                    article = Article.by_slug(slug)
                    if article is not None and article.seq > self._delivered.get(slug, article.seq):
                        latest = article.changes_since(article.seq - 1, limit=1)
                        if latest:
                            self.deliver(latest[0].payload)  # fills the gap before it too
            finally:
                db.session.remove()

    # --- receiving from other processes ----------------------------------------------

    def ensure_listening(self) -> None:
        """Start relaying changes from Redis, once per process, before the first reader."""
        if self._redis is None:
            return
        with self._locks_lock:
            if self._listening:
                return
            self._listening = True
        socketio.start_background_task(self._listen)

    def _listen(self) -> None:
        """Relay from Redis for as long as the process lives, resubscribing after outages."""
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                self._safely(self.resync)  # what was published while nobody here listened
                next_resync = time.monotonic() + RESYNC_EVERY
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        self._safely(lambda data=message["data"]: self.deliver(json.loads(data)))
                    if time.monotonic() >= next_resync:
                        self._safely(self.resync)
                        next_resync = time.monotonic() + RESYNC_EVERY
            except redis.RedisError:
                self._app.logger.warning("lost Redis; relaying again once it is back")
                socketio.sleep(1)

    def _safely(self, work: Callable[[], None]) -> None:
        try:
            work()
        except redis.RedisError:
            raise
        except Exception:  # one bad message or a database hiccup must not stop the relay
            self._app.logger.exception("could not relay changes")


relay = Relay()
