"""Socket.IO: readers subscribe to a story, catch up from the change log, then get it live.

Readers only listen; every write goes through the forms and the JSON API. The only thing
a reader sends is `subscribe`.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, request
from flask_socketio import emit, join_room, leave_room

from .extensions import db, socketio
from .models import Article, Change
from .presence import presence
from .relay import relay, room
from .security import clip

READERS_INTERVAL = 1.0
MAX_SUBSCRIPTIONS = 10

# Stories whose reader count is waiting to be sent: a crowd joining within a second costs
# one `readers` message, not one per join.
_count_pending: set[str] = set()
_pending_lock = threading.Lock()


def reader_count(slug: str) -> int:
    return presence.count(slug)


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


class _TooFarBehind(Exception):
    pass


# The stories each connection follows, counted or not, to bound what one connection can ask.
_following: dict[str, set[str]] = {}


@socketio.on("connect")
def on_connect(*_auth: Any) -> None:
    relay.ensure_listening()


@socketio.on("subscribe")
def on_subscribe(data: Any = None) -> dict[str, Any]:
    parsed = _parse_subscribe(data)
    if isinstance(parsed, str):
        return _refuse(parsed)
    slug, since = parsed
    article = Article.by_slug(slug)
    if article is None:
        return _refuse(f"no story has the slug {clip(slug)!r}")
    if since is not None and since > article.seq:  # seqs only grow: safe to check before joining
        return _refuse(f"since {since} is ahead of the story (at {article.seq})", reload=True)
    following = _following.get(request.sid, set())
    if slug in following:  # already live on this connection: nothing to replay
        return {"ok": True, "seq": article.seq}
    if len(following) >= MAX_SUBSCRIPTIONS:
        return _refuse(f"a connection can follow at most {MAX_SUBSCRIPTIONS} stories")
    # Give the connection back to the pool before queueing for the story: a crowd waiting
    # here must not hold every connection while the one in front needs one.
    db.session.commit()
    try:
        latest = relay.join(
            slug,
            enter=lambda: join_room(room(slug)),
            read_log=_log_reader(article, since),
            send=lambda change: emit("change", change),
        )
    except _TooFarBehind:
        leave_room(room(slug))
        return _refuse(f"more than {_catch_up_limit()} changes were missed", reload=True)
    except BaseException:
        leave_room(room(slug))  # a refused subscribe follows nothing
        raise
    if not socketio.server.manager.is_connected(request.sid, "/"):
        leave_room(room(slug))  # the reader left while it was being caught up
        return _refuse("the connection closed")
    _following.setdefault(request.sid, set()).add(slug)
    if data.get("count", True) is not False:  # editors' compose pages follow without counting
        presence.join(slug, request.sid)
        _schedule_count(slug)
    return {"ok": True, "seq": latest}


def _log_reader(article: Article, since: int | None):
    """Reads, once the reader is in the room, what it missed and the story's latest seq."""

    def read_log() -> tuple[list[Change], int]:
        db.session.refresh(article)
        if since is None:
            return [], article.seq
        missed = article.changes_since(since, limit=_catch_up_limit() + 1)
        if len(missed) > _catch_up_limit():
            raise _TooFarBehind
        return missed, max([article.seq, *(change.seq for change in missed)])

    return read_log


def _catch_up_limit() -> int:
    return current_app.config["MAX_CATCH_UP"]


@socketio.on_error_default
def on_error(error: Exception) -> dict[str, Any]:
    """A handler that fails answers its ack with a refusal instead of leaving the client waiting."""
    current_app.logger.exception("socket event failed", exc_info=error)
    return _refuse("the server could not handle that event; try again")


@socketio.on("disconnect")
def on_disconnect(*_reason: Any) -> None:
    for slug in _following.pop(request.sid, ()):
        if presence.leave(slug, request.sid):
            _schedule_count(slug)


def _schedule_count(slug: str) -> None:
    with _pending_lock:
        if slug in _count_pending:
            return
        _count_pending.add(slug)
    socketio.start_background_task(_send_count_later, slug)


def _send_count_later(slug: str) -> None:
    socketio.sleep(READERS_INTERVAL)
    with _pending_lock:
        _count_pending.discard(slug)
    socketio.emit("readers", {"article": slug, "count": reader_count(slug)}, to=room(slug))
