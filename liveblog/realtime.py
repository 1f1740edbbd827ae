"""Socket.IO: readers subscribe to a story, catch up from the change log, then get it live.

Readers only listen; every write goes through the forms and the JSON API. The only thing
a reader sends is `subscribe`.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, request
from flask_socketio import emit, join_room

from .extensions import db, socketio
from .models import Article

# Readers watching each story in this process, and the stories whose count is waiting to be
# sent: a crowd joining within a second costs one `readers` message, not one per join.
_watchers: dict[str, set[str]] = {}
_count_pending: set[str] = set()
_presence_lock = threading.Lock()
READERS_INTERVAL = 1.0
MAX_SUBSCRIPTIONS = 10


def room(slug: str) -> str:
    return f"article:{slug}"


def publish_change(change: dict[str, Any]) -> None:
    """Send a committed CHANGE to everyone watching its story (called by services only)."""
    socketio.emit("change", change, to=room(change["article"]))


def _refuse(message: str, reload: bool = False) -> dict[str, Any]:
    """A refused subscribe; `reload` tells the page that only a fresh load can catch it up."""
    return {"ok": False, "error": message, "reload": reload}


def _parse_subscribe(data: Any) -> tuple[str, int | None] | str:
    """The story's slug and `since`, or a message saying what is wrong with them."""
    if not isinstance(data, dict):
        return 'send an object: {"article": slug, "since": seq}'
    slug, since = data.get("article"), data.get("since")
    if not isinstance(slug, str) or not slug:
        return "article must be the story's slug, a non-empty string"
    if since is not None and (type(since) is not int or since < 0):
        return "since must be a whole number of zero or more"
    return slug, since


@socketio.on("subscribe")
def on_subscribe(data: Any = None) -> dict[str, Any]:
    parsed = _parse_subscribe(data)
    if isinstance(parsed, str):
        return _refuse(parsed)
    slug, since = parsed
    article = Article.by_slug(slug)
    if article is None:
        return _refuse(f"no story has the slug {slug!r}")
    if slug not in _watched_by(request.sid) and len(_watched_by(request.sid)) >= MAX_SUBSCRIPTIONS:
        return _refuse(f"a connection can follow at most {MAX_SUBSCRIPTIONS} stories")
    # Join before reading the log: a change committed in between then arrives both ways,
    # and the reader drops the duplicate by its seq, rather than missing it.
    join_room(room(slug))
    if data.get("count", True) is not False:  # editors' compose pages follow without counting
        _watch(slug, request.sid)
    db.session.refresh(article)
    if since is None:
        return {"ok": True, "seq": article.seq}
    if since > article.seq:
        return _refuse(f"since {since} is ahead of the story (at {article.seq})", reload=True)
    limit = current_app.config["MAX_CATCH_UP"]
    missed = article.changes_since(since, limit=limit + 1)
    if len(missed) > limit:
        return _refuse(f"more than {limit} changes were missed", reload=True)
    for change in missed:
        emit("change", change.payload)
    return {"ok": True, "seq": max([article.seq, *(change.seq for change in missed)])}


@socketio.on_error_default
def on_error(error: Exception) -> dict[str, Any]:
    """A handler that fails answers its ack with a refusal instead of leaving the client waiting."""
    current_app.logger.exception("socket event failed", exc_info=error)
    return _refuse("the server could not handle that event; try again")


@socketio.on("disconnect")
def on_disconnect(*_reason: Any) -> None:
    with _presence_lock:
        stories = [slug for slug, sids in _watchers.items() if request.sid in sids]
        for slug in stories:
            _watchers[slug].discard(request.sid)
            if not _watchers[slug]:
                del _watchers[slug]
    for slug in stories:
        _schedule_count(slug)


def _watched_by(sid: str) -> list[str]:
    with _presence_lock:
        return [slug for slug, sids in _watchers.items() if sid in sids]


def _watch(slug: str, sid: str) -> None:
    with _presence_lock:
        _watchers.setdefault(slug, set()).add(sid)
    _schedule_count(slug)


def reader_count(slug: str) -> int:
    with _presence_lock:
        return len(_watchers.get(slug, ()))


def _schedule_count(slug: str) -> None:
    with _presence_lock:
        if slug in _count_pending:
            return
        _count_pending.add(slug)
    socketio.start_background_task(_send_count_later, slug)


def _send_count_later(slug: str) -> None:
    socketio.sleep(READERS_INTERVAL)
    with _presence_lock:
        _count_pending.discard(slug)
    socketio.emit("readers", {"article": slug, "count": reader_count(slug)}, to=room(slug))
