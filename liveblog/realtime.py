"""Socket.IO: readers subscribe to a story, catch up from the change log, then get it live.

Readers only listen; every write goes through the forms and the JSON API. The only thing
a reader sends is `subscribe`.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

from flask import Flask, current_app, session

from .extensions import db, socketio
from .models import Article
from .presence import presence
from .relay import TooFarBehind, relay, room
from .security import clip

READERS_INTERVAL = 1.0
# A big room's count is sent less often, so that counts cost a process at most about this
# many messages a second per story however many read it (15,000 readers: every 7.5 s).
COUNT_MESSAGES_PER_SECOND = 2000
MAX_SUBSCRIPTIONS = 10
CATCH_UP_STALL = 20.0  # seconds a catch-up waits for a reader that is not reading
EXTENSION = "liveblog.realtime"


class RealtimeState:
    """One app's sockets: what each connection follows, and counts waiting to be sent."""

    def __init__(self) -> None:
        # The stories each connection follows, counted or not, to bound what one connection
        # can ask and to stop counting it when it leaves.
        self.following: dict[str, set[str]] = {}
        # Stories whose reader count is waiting to be sent: a crowd joining within the
        # interval costs one `readers` message, not one per join.
        self.count_pending: set[str] = set()
        self.lock = threading.Lock()


def _state() -> RealtimeState:
    return current_app.extensions[EXTENSION]


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


def init_app(app: Flask) -> None:
    """Bind the socket handlers to this app's Socket.IO server (after socketio.init_app).

    They are python-socketio handlers, not Flask-SocketIO ones: Flask-SocketIO builds a whole
    request context for every event (the session cookie verified, the URL matched), which was
    a tenth of the server's CPU while a crowd joined, and readers' events need neither. Each
    runs in an app context of its own.
    """
    app.extensions[EXTENSION] = RealtimeState()
    server = socketio.server
    server.on("subscribe", partial(_in_app, app, on_subscribe), namespace="/")
    server.on("disconnect", partial(_in_app, app, on_disconnect), namespace="/")


def _in_app(app: Flask, handler: Any, sid: str, *args: Any) -> Any:
    with app.app_context():
        try:
            return handler(sid, *args)
        except Exception:
            # A handler that fails answers its ack with a refusal instead of leaving the
            # client waiting.
            app.logger.exception("socket event failed")
            return _refuse("the server could not handle that event; try again")


def on_subscribe(sid: str, data: Any = None) -> dict[str, Any]:
    parsed = _parse_subscribe(data)
    if isinstance(parsed, str):
        return _refuse(parsed)
    slug, since = parsed
    state = _state()
    following = state.following.get(sid, set())
    if len(following) >= MAX_SUBSCRIPTIONS and slug not in following:
        return _refuse(f"a connection can follow at most {MAX_SUBSCRIPTIONS} stories")
    relay.ensure_listening()
    enter = partial(socketio.server.enter_room, sid, room(slug), namespace="/")
    # A page rendered at the seq its story's room is at (the crowd arriving as news breaks)
    # joins without reading the database.
    latest = None if slug in following else relay.join_if_current(slug, since, enter)
    if latest is None:
        answer = _join_from_log(sid, slug, since, following, enter)
        if isinstance(answer, dict):
            return answer
        latest = answer
    if not socketio.server.manager.is_connected(sid, "/"):
        _leave(sid, slug)  # the reader left while it was being caught up
        return _refuse("the connection closed")
    state.following.setdefault(sid, set()).add(slug)
    if data.get("count", True) is not False:  # editors' compose pages follow without counting
        presence.join(slug, sid)
        _schedule_count(slug)
    return {"ok": True, "seq": latest}


def _join_from_log(
    sid: str, slug: str, since: int | None, following: set[str], enter: Any
) -> int | dict[str, Any]:
    """Join through the database: the story's seq, then the catch-up. A refusal as a dict."""
    article = Article.by_slug(slug)
    if article is None:
        return _refuse(f"no story has the slug {clip(slug)!r}")
    if since is not None and since > article.seq:  # seqs only grow: safe to check before joining
        return _refuse(f"since {since} is ahead of the story (at {article.seq})", reload=True)
    if slug in following:  # already live on this connection: nothing to replay
        return {"ok": True, "seq": article.seq}
    # Give the connection back to the pool (the story stays loaded) before the catch-up:
    # a crowd joining must not hold every connection while the reader in front drains.
    db.session.close()
    try:
        return relay.join(
            article,
            since,
            enter=enter,
            send=partial(_send_change, sid),
            wait_for_room=partial(_wait_for_room, sid),
        )
    except TooFarBehind as behind:
        return _refuse(str(behind), reload=True)
    except BaseException:
        _leave(sid, slug)  # a refused subscribe follows nothing
        raise


def _leave(sid: str, slug: str) -> None:
    socketio.server.leave_room(sid, room(slug), namespace="/")


def _send_change(sid: str, change: dict[str, Any]) -> None:
    socketio.server.emit("change", change, to=sid, namespace="/", ignore_queue=True)


def _wait_for_room(sid: str) -> None:
    """Return once the reader's connection has taken most of what was queued for it.

    A catch-up of large changes is sent as fast as the reader reads, never faster, so it
    neither sits whole in memory nor trips the cap that drops readers who stop reading.
    """
    server = socketio.server
    connection = server.eio.sockets.get(server.manager.eio_sid_from_sid(sid, "/"))
    queue = getattr(connection, "queue", None)
    limit = getattr(queue, "limit", 0)
    if not limit:
        return  # not a capped queue (the test client, or another async mode)
    deadline = time.monotonic() + CATCH_UP_STALL
    while queue.queued_bytes > limit // 2:
        if queue.overflowed or connection.closed or time.monotonic() > deadline:
            raise ConnectionError("the reader stopped reading during its catch-up")
        socketio.sleep(0.05)


def on_disconnect(sid: str, *_reason: Any) -> None:
    for slug in _state().following.pop(sid, ()):
        if presence.leave(slug, sid):
            _schedule_count(slug)


def _schedule_count(slug: str) -> None:
    state = _state()
    with state.lock:
        if slug in state.count_pending:
            return
        state.count_pending.add(slug)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # This app's Socket.IO server, not whichever the extension is bound to when it fires.
    socketio.start_background_task(_send_count_later, app, socketio.server, state, slug)


def _send_count_later(app: Flask, server: Any, state: RealtimeState, slug: str) -> None:
    with app.app_context():
        readers_here = presence.local_count(slug)
        socketio.sleep(max(READERS_INTERVAL, readers_here / COUNT_MESSAGES_PER_SECOND))
        with state.lock:
            state.count_pending.discard(slug)
        count = reader_count(slug)
    server.emit("readers", {"article": slug, "count": count}, to=room(slug), namespace="/")


def disconnect_editor(editor_id: int) -> None:
    """Close this process's Socket.IO connections whose session belongs to the editor."""
    server = socketio.server
    if server is None:
        return
    for eio_sid, environ in list(server.environ.items()):
        with current_app.request_context(environ):
            # A signed-in session names "<editor id>:<session version>".
            if str(session.get("_user_id", "")).partition(":")[0] != str(editor_id):
                continue
        sid = server.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None:
            server.disconnect(sid, namespace="/")
