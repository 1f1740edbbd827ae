"""Every write to a story goes through here: validate, write, commit, then broadcast.

Forms, the JSON API and the command line all call these functions, so there is one
write path and no path can forget to tell the readers.
"""

from __future__ import annotations

import re
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from . import metrics
from .extensions import db
from .models import ApiToken, Article, Change, Editor, Update, utcnow
from .relay import relay
from .rendering import render_markdown

SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_SLUG = 80
STATUSES = ("live", "ended")
MAX_ID = 2**31 - 1  # the largest id an integer column holds on every database we run on

# SQLite has one writer at a time. Writers in this process queue here, where a waiting
# greenlet yields to the others, rather than inside SQLite's busy wait, which would hold
# up the whole event loop; the busy timeout then only settles races between processes.
_sqlite_writer = threading.Lock()


class ServiceError(Exception):
    """A request that cannot be carried out; `status` is the HTTP status to answer with."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(ServiceError):
    status = 422


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


# --- validation -------------------------------------------------------------------


# Control characters other than tab and newlines, lone surrogates, and the noncharacters
# (U+FFFE, U+FFFF, U+FDD0-U+FDEF and the last two of every plane): PostgreSQL refuses NUL,
# XML (the Atom feed) refuses or discourages the rest, and no person types them.
UNPRINTABLE_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)


def _text(value: Any, field: str, limit: int, *, required: bool) -> str | None:
    """A stripped string within `limit` characters; empty becomes None when optional."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string")
    if UNPRINTABLE_RE.search(value):
        raise Invalid(
            f"{field} contains control characters or noncharacters; remove them and send it again"
        )
    value = value.strip()
    if not value:
        if required:
            raise Invalid(f"{field} must not be empty")
        return None
    if len(value) > limit:
        raise Invalid(f"{field} is {len(value):,} characters long; the limit is {limit:,}")
    return value


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false")
    return value


def _body(value: Any) -> str:
    body = _text(value, "body", current_app.config["MAX_BODY_CHARS"], required=True)
    assert body is not None  # required=True never gives None
    return body


def _headline(value: Any) -> str | None:
    return _text(value, "headline", current_app.config["MAX_HEADLINE_CHARS"], required=False)


def _story_body(value: Any) -> str:
    """A story's introduction: optional, empty when left out."""
    limit = current_app.config["MAX_BODY_CHARS"]
    return _text(value, "body", limit, required=False) or ""


def _is_slug(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_SLUG and bool(SLUG_RE.fullmatch(value))


def _title(value: Any) -> str:
    title = _text(value, "title", current_app.config["MAX_TITLE_CHARS"], required=True)
    assert title is not None  # required=True never gives None
    return title


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:60].rstrip("-") or "story"


# --- transactions -----------------------------------------------------------------


@contextmanager
def _transaction() -> Iterator[list[dict[str, Any]]]:
    """Commit on success, roll back on any error, one writer at a time on SQLite.

    Yields an outbox for the CHANGEs the transaction logs; they are broadcast in seq order
    only once the commit has succeeded, so readers never see a change that did not happen.
    """
    outbox: list[dict[str, Any]] = []
    is_sqlite = db.engine.dialect.name == "sqlite"
    with _sqlite_writer if is_sqlite else nullcontext():
        try:
            yield outbox
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    for change in sorted(outbox, key=lambda change: change["seq"]):
        try:
            relay.publish(change)
        except Exception:
            # The change is committed and logged: readers get it from the log when the next
            # change shows them the gap, or on reconnect. Failing the request now would only
            # make the client send it again.
            current_app.logger.exception(
                "committed change %s could not be broadcast", change["seq"]
            )
    metrics.observe_post_to_broadcast(outbox)


def _next_seq(article: Article) -> int:
    """Take the story's next seq inside the current transaction.

    The single UPDATE ... RETURNING locks the story's row (PostgreSQL) or the database
    (SQLite) until commit, so concurrent writers queue up and each gets seq + 1 of the one
    before: no duplicates, and a rollback gives the number back, so no gaps.
    """
    seq = db.session.execute(
        sa.update(Article)
        .where(Article.id == article.id)
        .values(seq=Article.seq + 1)
        .returning(Article.seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(article, "seq", seq)
    return seq


def _log_change(article: Article, seq: int, kind: str, update: Update) -> dict[str, Any]:
    payload = {
        "article": article.slug,
        "seq": seq,
        "type": kind,
        "update": {"id": update.id} if kind == "deleted" else update.to_dict(),
    }
    db.session.add(
        Change(article_id=article.id, seq=seq, type=kind, update_id=update.id, payload=payload)
    )
    return payload


def get_update(article: Article, update_id: int) -> Update:
    """A current (not deleted) update of this story, or NotFound."""
    update = (
        db.session.get(Update, update_id, populate_existing=True)
        if 0 < update_id <= MAX_ID
        else None
    )
    if update is None or update.article_id != article.id or update.deleted_at is not None:
        raise NotFound(f"story {article.slug!r} has no update {update_id}")
    return update


# --- stories ----------------------------------------------------------------------


def get_article(slug: str) -> Article:
    article = Article.by_slug(slug) if _is_slug(slug) else None
    if article is None:
        raise NotFound(f"no story has the slug {slug!r}")
    return article


def _free_slug(base: str) -> str:
    taken = set(
        db.session.scalars(
            sa.select(Article.slug).where(
                sa.or_(Article.slug == base, Article.slug.like(f"{base}-%"))
            )
        )
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def create_article(title: Any, slug: Any = None, body: Any = "") -> Article:
    title = _title(title)
    body = _story_body(body)
    if slug is not None and not _is_slug(slug):
        raise Invalid("slug must be lowercase letters, digits and single hyphens, at most 80")
    with _transaction():
        if slug is None:
            slug = _free_slug(slugify(title))
        elif Article.by_slug(slug) is not None:
            raise Conflict(f"the slug {slug!r} is already taken")
        article = Article(slug=slug, title=title, body=body, html=render_markdown(body))
        db.session.add(article)
        try:
            db.session.flush()
        except sa.exc.IntegrityError as exc:  # a concurrent create took the slug first
            raise Conflict(f"the slug {slug!r} is already taken") from exc
    return article


def edit_article(article: Article, fields: dict[str, Any]) -> Article:
    """Change a story's title, body or status (live or ended)."""
    fields = dict(fields)
    unknown = set(fields) - {"title", "body", "status"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "title" in fields:
        fields["title"] = _title(fields["title"])
    if "body" in fields:
        fields["body"] = _story_body(fields["body"])
    if "status" in fields and fields["status"] not in STATUSES:
        raise Invalid("status must be 'live' or 'ended'")
    with _transaction():
        for name, value in fields.items():
            setattr(article, name, value)
        if "body" in fields:
            article.html = render_markdown(fields["body"])
    return article


# --- updates ----------------------------------------------------------------------


def post_update(
    article: Article,
    author: Editor,
    body: Any,
    headline: Any = None,
    key_event: Any = False,
    pinned: Any = False,
    idempotency_key: str | None = None,
    published_at: datetime | None = None,
) -> Update:
    """Publish a new update. A repeated idempotency key returns the first update instead."""
    fields = {
        "body": _body(body),
        "headline": _headline(headline),
        "key_event": _flag(key_event, "key_event"),
        "pinned": _flag(pinned, "pinned"),
    }
    if idempotency_key is not None:
        idempotency_key = _text(idempotency_key, "idempotency key", 64, required=True)
    with _transaction() as outbox:
        seq = _next_seq(article)  # taken first: it is the lock that orders writers
        if idempotency_key is not None:
            earlier = _replayed(article, author, idempotency_key, fields)
            if earlier is not None:
                db.session.rollback()  # gives the seq back
                return earlier
        if fields["pinned"]:
            outbox += _unpin_others(article)
        update = Update(
            article_id=article.id,
            author=author,
            html=render_markdown(fields["body"]),
            seq=seq,
            idempotency_key=idempotency_key,
            published_at=published_at or utcnow(),
            **fields,
        )
        db.session.add(update)
        db.session.flush()
        outbox.append(_log_change(article, seq, "created", update))
    return update


def edit_update(article: Article, update_id: int, editor: Editor, fields: dict[str, Any]) -> Update:
    """Change any of an update's headline, body, key_event and pinned flags."""
    fields = dict(fields)
    unknown = set(fields) - {"body", "headline", "key_event", "pinned"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    if not fields:
        raise Invalid("nothing to change: send body, headline, key_event or pinned")
    checks = {"body": _body, "headline": _headline}
    for name, value in fields.items():
        fields[name] = checks[name](value) if name in checks else _flag(value, name)
    with _transaction() as outbox:
        seq = _next_seq(article)
        update = get_update(article, update_id)
        if fields.get("pinned"):
            outbox += _unpin_others(article, keep=update.id)
        for name, value in fields.items():
            setattr(update, name, value)
        if "body" in fields:
            update.html = render_markdown(fields["body"])
        if {"body", "headline"} & set(fields):  # pinning or flagging is not editing the text
            update.edited_at = utcnow()
        update.seq = seq
        outbox.append(_log_change(article, seq, "edited", update))
    return update


def delete_update(article: Article, update_id: int, editor: Editor) -> None:
    """Soft-delete: the row stays for the change log, readers are told to remove it."""
    with _transaction() as outbox:
        seq = _next_seq(article)
        update = get_update(article, update_id)
        update.deleted_at = utcnow()
        update.pinned = False
        update.seq = seq
        outbox.append(_log_change(article, seq, "deleted", update))


def _replayed(article: Article, author: Editor, key: str, fields: dict[str, Any]) -> Update | None:
    """The update first sent with this key, if this is the same post sent again."""
    earlier = db.session.scalar(
        sa.select(Update).where(Update.article_id == article.id, Update.idempotency_key == key)
    )
    if earlier is None:
        return None
    same = earlier.author_id == author.id and all(
        getattr(earlier, name) == value for name, value in fields.items() if name != "pinned"
    )
    if not same or earlier.deleted_at is not None:
        raise Conflict(
            "this idempotency key was already used for a different update; "
            "send a new key for a new update"
        )
    return earlier


def _unpin_others(article: Article, keep: int | None = None) -> list[dict[str, Any]]:
    """One pinned update per story: pinning one unpins the rest, each as a change of its own."""
    changes = []
    query = sa.select(Update).where(
        Update.article_id == article.id, Update.pinned.is_(True), Update.deleted_at.is_(None)
    )
    for other in db.session.scalars(query):
        if other.id == keep:
            continue
        other.pinned = False
        other.seq = _next_seq(article)
        changes.append(_log_change(article, other.seq, "edited", other))
    return changes


# --- editors ----------------------------------------------------------------------


def create_editor(username: str, password: str) -> Editor:
    username = _text(username, "username", 64, required=True)
    if len(password) < 8:
        raise Invalid("the password must be at least 8 characters long")
    with _transaction():
        if db.session.scalar(sa.select(Editor).where(Editor.username == username)):
            raise Conflict(f"an editor named {username!r} already exists")
        editor = Editor(username=username)
        editor.set_password(password)
        db.session.add(editor)
    return editor


def issue_token(editor: Editor) -> str:
    """Make an API token; only its hash is stored, so this is the one time it is seen."""
    token = secrets.token_urlsafe(32)
    with _transaction():
        db.session.add(ApiToken(editor_id=editor.id, token_hash=ApiToken.hash(token)))
    return token
