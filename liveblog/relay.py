"""Delivers each story's changes to this process's readers in seq order, exactly once.

Changes to one story commit in seq order (the seq is taken with a row lock held to commit),
but the broadcasts that follow the commits can race one another: two greenlets in one
process, or two processes through Redis. So every process relays changes through here. It
remembers the last seq it delivered per story; a change that skips ahead means the ones in
between have already committed, so they are read from the change log and delivered first;
a change that arrives after a later one was delivered is dropped.

With REDIS_URL set, changes travel between processes on a Redis channel of their own, and
each process delivers them to its own readers only.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import redis
from flask import Flask

from .extensions import db, socketio
from .models import Article


def room(slug: str) -> str:
    return f"article:{slug}"


class Relay:
    def __init__(self) -> None:
        self._app: Flask | None = None
        self._redis: redis.Redis | None = None
        self._channel = "liveblog:changes"
        self._delivered: dict[str, int] = {}
        self._lock = threading.Lock()
        self._listening = False

    def init_app(self, app: Flask) -> None:
        self._app = app
        url = app.config["REDIS_URL"]
        self._redis = redis.Redis.from_url(url) if url else None
        self._channel = f"{app.config['REDIS_CHANNEL']}:changes"
        self._delivered = {}
        self._listening = False

    # --- sending -------------------------------------------------------------------

    def publish(self, change: dict[str, Any]) -> None:
        """Hand a committed CHANGE to every process (or just this one, without Redis)."""
        if self._redis is not None:
            self._redis.publish(self._channel, json.dumps(change))
        else:
            self.deliver(change)

    def subscribed(self, slug: str, seq: int) -> None:
        """A reader here has caught up to `seq`: live delivery of the story starts after it."""
        with self._lock:
            self._delivered.setdefault(slug, seq)

    def deliver(self, change: dict[str, Any]) -> None:
        slug, seq = change["article"], change["seq"]
        with self._lock:  # held while emitting, so emits to a story leave in seq order
            last = self._delivered.get(slug, seq - 1)
            if seq <= last:
                return
            for missed in self._between(slug, last, seq):
                self._emit(missed)
            self._emit(change)
            self._delivered[slug] = seq

    def _emit(self, change: dict[str, Any]) -> None:
        # ignore_queue: only this process's readers; every process has its own relay.
        socketio.emit("change", change, to=room(change["article"]), ignore_queue=True)

    def _between(self, slug: str, low: int, high: int) -> list[dict[str, Any]]:
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
        if self._redis is None or self._listening:
            return
        with self._lock:
            if self._listening:
                return
            self._listening = True
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self._channel)
        socketio.start_background_task(self._listen, pubsub)

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        while True:
            try:
                for message in pubsub.listen():
                    if message["type"] == "message":
                        self.deliver(json.loads(message["data"]))
            except redis.ConnectionError:
                self._app.logger.warning("lost Redis; relaying again once it is back")
                socketio.sleep(1)
            except Exception:  # one bad message must not stop the relay
                self._app.logger.exception("could not relay a change")


relay = Relay()
