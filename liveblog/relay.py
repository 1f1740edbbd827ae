"""Delivers each story's changes to this process's readers in seq order, exactly once.

Changes to one story commit in seq order (the seq is taken with a row lock held to commit),
but the broadcasts that follow the commits can race one another: two greenlets in one
process, or two processes through Redis. So every process relays changes through here.

Each story has a queue and one delivery greenlet in each process, the only one that sends
the story's changes to its room. It remembers the last seq it delivered; a change that
skips ahead means the ones in between have already committed, so they are read from the
change log and delivered first; a change that arrives after a later one was delivered is
dropped. Publishing only puts the change on that queue, so the editor's request never waits
for the audience, and one consumer per queue keeps the order without a lock across sends.

A reader joining a story is caught up from the change log by its own handler, in pieces,
then enters the room at the exact seq it has reached: at once when the story's delivery
greenlet is idle at that seq, else through the story's queue, in order with the changes.

With REDIS_URL set, changes travel between processes on a Redis channel of their own, and
each process delivers them to its own readers only.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app

from . import changes, metrics
from .extensions import db, socketio
from .models import Article

Payload = dict[str, Any]
RESYNC_EVERY = 5.0  # seconds between checks that every room here has every change
IDLE_SECONDS = 60.0  # a story's delivery greenlet ends after this long with nothing to do
CATCH_UP_PAGE = 5  # changes read from the log at a time for one reader's catch-up
# A joining reader this close to the room is handed to the story's queue for the rest: few
# enough changes that even large ones stay under the reader's cap on queued bytes.
HAND_OVER_WITHIN = 2
EXTENSION = "liveblog.relay"


def room(slug: str) -> str:
    return f"article:{slug}"


class TooFarBehind(Exception):
    """The reader missed more changes than a catch-up sends: only a reload can bring it up."""


@dataclass
class _Join:
    """A reader entering a story's room at seq `at` (None: wherever the room is)."""

    enter: Callable[[], None]
    send: Callable[[Payload], None]
    at: int | None
    latest: int  # the story's seq when the reader asked
    done: threading.Event = field(default_factory=threading.Event)
    seq: int = 0
    error: BaseException | None = None


@dataclass
class _Story:
    slug: str
    queue: queue.Queue = field(default_factory=queue.Queue)
    delivered: int | None = None  # the last seq sent to the room; None: not known yet
    running: bool = False  # a delivery greenlet is serving the queue
    busy: bool = False  # it is sending right now


class RelayState:
    """One app's relay: its stories, its Redis connection, its listener."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server = socketio.server  # this app's Socket.IO server, bound just before
        url = app.config["REDIS_URL"]
        self.redis: redis.Redis | None = redis.Redis.from_url(url) if url else None
        self.channel = f"{app.config['REDIS_CHANNEL']}:changes"
        self.catch_up_limit: int = app.config["MAX_CATCH_UP"]
        self.catch_up_bytes: int = app.config["MAX_CATCH_UP_BYTES"]
        self.stories: dict[str, _Story] = {}
        self.lock = threading.Lock()  # guards `stories` and each story's flags; never held for I/O
        self.listening = False

    def story(self, slug: str) -> _Story:
        with self.lock:
            story = self.stories.get(slug)
            if story is None:
                story = self.stories[slug] = _Story(slug)
            return story

    # --- the delivery greenlet ------------------------------------------------------

    def enqueue(self, slug: str, item: Payload | _Join) -> None:
        story = self.story(slug)
        with self.lock:
            story.queue.put(item)
            if story.running:
                return
            story.running = True
        socketio.start_background_task(self._serve, story)

    def _serve(self, story: _Story) -> None:
        """Deliver the story's queue in order; end once idle (a later change starts another)."""
        while True:
            try:
                item = story.queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self.lock:
                    if story.queue.empty():
                        story.running = False
                        return
                continue
            try:
                with self.lock:
                    story.busy = True
                with self.app.app_context():
                    try:
                        if isinstance(item, _Join):
                            self._admit(story, item)
                        else:
                            self._deliver(story, item)
                    finally:
                        db.session.remove()
            except Exception:  # one bad change or a database hiccup must not stop the story
                self.app.logger.exception("could not relay changes to %s", story.slug)
            finally:
                with self.lock:
                    story.busy = False
                story.queue.task_done()

    def _deliver(self, story: _Story, change: Payload) -> None:
        seq = change["seq"]
        if story.delivered is None:  # nobody here has subscribed to this story: nobody to tell
            story.delivered = seq
            return
        if seq <= story.delivered:
            return
        for missed in self._between(story.slug, story.delivered, seq):
            self._emit_to_room(missed)
            story.delivered = missed["seq"]
        self._emit_to_room(change)
        story.delivered = seq

    def _admit(self, story: _Story, join: _Join) -> None:
        try:
            if story.delivered is None:
                story.delivered = _latest_seq(story.slug)
            if join.at is not None and join.at > story.delivered:
                # The reader has read past the room (its change is still on its way here):
                # the room gets those changes now, and drops them when they arrive.
                self._advance_room(story, join.at)
            elif join.at is not None:
                # What the room had that this reader's own catch-up had not reached yet.
                for missed in self._between(story.slug, join.at, story.delivered + 1):
                    join.send(missed)
            join.enter()
            # The story had more when the reader asked than the room has had: committed
            # changes still on their way here. The room, the reader now in it, gets them.
            self._advance_room(story, join.latest)
            join.seq = story.delivered
        except BaseException as exc:
            join.error = exc
        finally:
            join.done.set()

    def _advance_room(self, story: _Story, seq: int) -> None:
        """Send the room every logged change after what it has had, up to `seq`."""
        assert story.delivered is not None
        if seq <= story.delivered:
            return
        for missed in self._between(story.slug, story.delivered, seq + 1):
            self._emit_to_room(missed)
        story.delivered = seq

    def _emit_to_room(self, change: Payload) -> None:
        # ignore_queue: only this process's readers; every process has its own relay.
        self.server.emit(
            "change", change, to=room(change["article"]), namespace="/", ignore_queue=True
        )
        metrics.changes_delivered(change)

    def _between(self, slug: str, low: int, high: int) -> list[Payload]:
        """The logged changes with low < seq < high, oldest first (at most MAX_CATCH_UP).

        A room further behind than that skips ahead: its readers see the jump in seq and
        fetch the rest from the changes API themselves.
        """
        if high - low <= 1:
            return []
        article = Article.by_slug(slug)
        if article is None:
            return []
        limit = min(high - low - 1, self.catch_up_limit)
        changes = article.changes_since(high - 1 - limit, limit=limit)
        return [change.payload for change in changes if change.seq < high]

    # --- joining ---------------------------------------------------------------------

    def join(
        self,
        article: Article,
        since: int | None,
        enter: Callable[[], None],
        send: Callable[[Payload], None],
        wait_for_room: Callable[[], None],
    ) -> int:
        story = self.story(article.slug)
        at = since
        if since is not None:
            if article.seq - since > self.catch_up_limit:
                raise TooFarBehind(f"more than {self.catch_up_limit} changes were missed")
            at = self._catch_up(article, since, story, send, wait_for_room)
        with self.lock:
            # The room is idle, at the reader's seq and up to date: nothing can be sent to it
            # between these lines, so the reader enters here without queueing.
            delivered = story.delivered
            idle = not story.busy and story.queue.empty() and delivered is not None
            if idle and (at is None or at == delivered) and article.seq <= delivered:
                enter()
                return delivered
        request = _Join(enter=enter, send=send, at=at, latest=article.seq)
        self.enqueue(article.slug, request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.seq

    def _catch_up(
        self,
        article: Article,
        since: int,
        story: _Story,
        send: Callable[[Payload], None],
        wait_for_room: Callable[[], None],
    ) -> int:
        """Send the reader what it missed, a page at a time, until it is close to the room.

        Nothing is built whole: a page is read, each change waits for room in the reader's
        queue before it is sent, and the page is dropped before the next is read.
        """
        at, sent = since, 0
        while True:
            target = max(story.delivered or 0, article.seq)
            if target - at <= HAND_OVER_WITHIN or target - since > self.catch_up_limit:
                return at
            wait_for_room()  # before reading: a reader that has stopped holds no page
            page = article.changes_since(at, limit=min(CATCH_UP_PAGE, target - at))
            db.session.close()  # no pool connection held while the reader drains
            for change in page:
                # A reader this far behind in bytes loads the page afresh for less.
                sent += changes.wire_size(change.payload)
                if sent > self.catch_up_bytes:
                    raise TooFarBehind(
                        f"more than {self.catch_up_bytes} bytes of changes were missed"
                    )
                wait_for_room()
                send(change.payload)
                at = change.seq
            del page

    # --- from other processes --------------------------------------------------------

    def resync(self) -> None:
        """Bring every room here up to its story's latest seq, from the change log.

        Run after (re)subscribing to Redis and now and then: a change published while this
        process was not listening would otherwise wait for the next change to show the gap.
        """
        with self.app.app_context():
            try:
                with self.lock:
                    known = [(s.slug, s.delivered) for s in self.stories.values()]
                for slug, delivered in known:
                    article = Article.by_slug(slug)
                    if article is not None and delivered is not None and article.seq > delivered:
                        latest = article.changes_since(article.seq - 1, limit=1)
                        if latest:
                            self.enqueue(slug, latest[0].payload)  # fills the gap before it too
            finally:
                db.session.remove()

    def listen(self) -> None:
        """Relay from Redis for as long as the process lives, resubscribing after outages."""
        assert self.redis is not None
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._safely(self.resync)  # what was published while nobody here listened
                next_resync = time.monotonic() + RESYNC_EVERY
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        self._safely(lambda data=message["data"]: self._received(data))
                    if time.monotonic() >= next_resync:
                        self._safely(self.resync)
                        next_resync = time.monotonic() + RESYNC_EVERY
            except redis.RedisError:
                self.app.logger.warning("lost Redis; relaying again once it is back")
                socketio.sleep(1)

    def _received(self, data: bytes) -> None:
        change = json.loads(data)
        self.enqueue(change["article"], change)

    def _safely(self, work: Callable[[], None]) -> None:
        try:
            work()
        except redis.RedisError:
            raise
        except Exception:  # one bad message or a database hiccup must not stop the relay
            self.app.logger.exception("could not relay changes")


def _latest_seq(slug: str) -> int:
    article = Article.by_slug(slug)
    return article.seq if article is not None else 0


class Relay:
    """The app's relay, reached through the current app (state lives in app.extensions)."""

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION] = RelayState(app)

    @property
    def state(self) -> RelayState:
        return current_app.extensions[EXTENSION]

    def publish(self, change: Payload) -> None:
        """Hand a committed CHANGE to every process (or just this one, without Redis)."""
        state = self.state
        if state.redis is not None:
            try:
                state.redis.publish(state.channel, json.dumps(change))
                return
            except redis.RedisError:
                # Other processes catch up when Redis is back (see resync); readers here
                # need not wait for it.
                state.app.logger.warning("Redis unavailable: change %s sent locally", change["seq"])
        self.deliver(change)

    def deliver(self, change: Payload) -> None:
        """Queue a change for this process's readers of its story."""
        self.state.enqueue(change["article"], change)

    def join(
        self,
        article: Article,
        since: int | None,
        enter: Callable[[], None],
        send: Callable[[Payload], None],
        wait_for_room: Callable[[], None] = lambda: None,
    ) -> int:
        """Catch a reader up from `since`, put it in the room, return the seq it is now at.

        `enter` joins the room; `send` emits one change to this reader alone;
        `wait_for_room` returns once the reader's connection can take more. Raises
        TooFarBehind when `since` is more than MAX_CATCH_UP changes back.
        """
        return self.state.join(article, since, enter, send, wait_for_room)

    def join_if_current(
        self, slug: str, since: int | None, enter: Callable[[], None]
    ) -> int | None:
        """Put a reader in the room at once if it is at the seq the room is at; else None.

        True only while the story's delivery greenlet is idle and has delivered that seq, so
        nothing can be sent to the room between the check and the entry. Anything else
        (another seq, a story not seen here yet) goes through `join` and the change log.
        """
        state = self.state
        with state.lock:
            story = state.stories.get(slug)
            if story is None or story.delivered is None or story.busy:
                return None
            if since not in (None, story.delivered) or not story.queue.empty():
                return None
            enter()
            return story.delivered

    def ensure_listening(self) -> None:
        """Start relaying changes from Redis, once per process, before the first reader."""
        state = self.state
        if state.redis is None:
            return
        with state.lock:
            if state.listening:
                return
            state.listening = True
        socketio.start_background_task(state.listen)

    def resync(self) -> None:
        self.state.resync()

    def drain(self) -> None:
        """Wait until every change queued here has been delivered (for tests and shutdown)."""
        for story in self._stories():
            story.queue.join()

    def _stories(self) -> Iterator[_Story]:
        state = self.state
        with state.lock:
            stories = list(state.stories.values())
        yield from stories


relay = Relay()
