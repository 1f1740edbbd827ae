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
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask

from .extensions import db, socketio
from .models import Article, Change

Payload = dict[str, Any]


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
            self._redis.publish(self._channel, json.dumps(change))
        else:
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

    def _between(self, slug: str, low: int, high: int) -> list[Payload]:
        """The logged changes with low < seq < high, oldest first."""
        if high - low <= 1:
            return []
        with self._app.app_context():
            article = Article.by_slug(slug)
            changes = article.changes_since(low, limit=high - low - 1) if article else []
            payloads = [change.payload for change in changes if change.seq < high]
            db.session.remove()
        return payloads

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
                for message in pubsub.listen():
                    if message["type"] == "message":
                        self._relay_one(message["data"])
            except redis.RedisError:
                self._app.logger.warning("lost Redis; relaying again once it is back")
                socketio.sleep(1)

    def _relay_one(self, data: bytes) -> None:
        try:
            self.deliver(json.loads(data))
        except Exception:  # one bad message must not stop the relay
            self._app.logger.exception("could not relay a change")


relay = Relay()
