"""Every write to a story goes through here: validate, write, commit, then broadcast.

Forms, the JSON API and the command line all call these functions, so there is one
write path and no path can forget to tell the readers.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from . import changes, media, metrics, realtime
from .extensions import db
from .models import (
    DRAFT,
    MAX_USERNAME,
    PUBLISHED,
    SCHEDULED,
    Article,
    Change,
    Editor,
    Media,
    Revision,
    Update,
    utcnow,
)
from .relay import relay
from .rendering import excerpt, render_markdown

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


def _record(
    outbox: list[dict[str, Any]],
    article: Article,
    kind: str,
    update: Update | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """Log one change to a story and queue it for broadcast: every mutation ends here.

    `seq` is the story's next seq when the caller has taken it already (to queue writers
    before reading anything); otherwise it is taken now. The update's element is rendered
    here, once, so pages, the log and live readers all carry the same markup.
    """
    if seq is None:
        seq = _next_seq(article)
    if update is not None:
        update.seq = seq
        if kind != "deleted":
            update.element = changes.render_element(update)
    payload = changes.build(kind, article, seq, update)
    db.session.add(
        Change(
            article_id=article.id,
            seq=seq,
            type=kind,
            update_id=update.id if update is not None else None,
            payload=payload,
        )
    )
    outbox.append(payload)
    return payload


def get_update(article: Article, update_id: int, *, readers: bool = True) -> Update:
    """An update of this story that is not deleted, or NotFound.

    For readers (the default) only a published one; editors also reach drafts and scheduled
    updates with `readers=False`.
    """
    update = (
        db.session.get(Update, update_id, populate_existing=True)
        if 0 < update_id <= MAX_ID
        else None
    )
    if (
        update is None
        or update.article_id != article.id
        or update.deleted_at is not None
        or (readers and not update.is_visible)
    ):
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
        html = render_markdown(body)
        article = Article(slug=slug, title=title, body=body, html=html, excerpt=excerpt(html))
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
    changed = {name for name, value in fields.items() if getattr(article, name) != value}
    if not changed:
        return article  # nothing to tell anyone: no change, no seq
    with _transaction() as outbox:
        for name in changed:
            setattr(article, name, fields[name])
        if "body" in changed:
            article.html = render_markdown(fields["body"])
            article.excerpt = excerpt(article.html)
        if "status" in changed:
            article.ended_at = utcnow() if article.status == "ended" else None
        _record(outbox, article, "story")
    return article


# --- updates ----------------------------------------------------------------------


def _lock_live(article: Article) -> None:
    """Lock the story's row for this transaction and refuse writes to an ended story.

    A write that changes nothing (seq = seq) takes the same lock as taking a seq, on both
    databases, and reads the status as it is under that lock, not as this session last saw it.
    """
    status = db.session.execute(
        sa.update(Article)
        .where(Article.id == article.id)
        .values(seq=Article.seq)
        .returning(Article.status)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(article, "status", status)
    if status != "live":
        raise Conflict(
            f"the story {article.slug!r} has ended: reopen it before changing its updates"
        )


def _publish_at(value: Any, now: datetime) -> datetime:
    """A time in the future with its UTC offset: ISO-8601 text or an aware datetime."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Invalid(
                "publish_at must be an ISO-8601 time with its UTC offset, "
                "e.g. 2026-11-30T14:05+04:00"
            ) from None
    if not isinstance(value, datetime):
        raise Invalid("publish_at must be an ISO-8601 time with its UTC offset")
    if value.tzinfo is None:
        raise Invalid("publish_at needs its UTC offset (e.g. +04:00 or Z)")
    days = current_app.config["MAX_SCHEDULE_AHEAD_DAYS"]
    try:
        due = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past the calendar's end in UTC
        raise Invalid(
            f"publish_at is out of range: schedule it at most {days} days from now"
        ) from None
    if due <= now:
        raise Invalid("publish_at is in the past: pick a time to come, or publish now")
    if due > now + timedelta(days=days):
        raise Invalid(
            f"publish_at is more than {days} days ahead: schedule it at most {days} days "
            "from now (or save a draft)"
        )
    return due


def _media(value: Any) -> Media | None:
    if value is None:
        return None
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise Invalid("image must be the id of an uploaded image (POST /api/media)")
    # Held (key share) until commit, so the clean-up cannot delete it in between (PostgreSQL).
    media = db.session.get(Media, value, with_for_update={"key_share": True})
    if media is None:
        raise Invalid(f"no uploaded image has the id {value}")
    return media


def post_update(
    article: Article,
    author: Editor,
    body: Any,
    headline: Any = None,
    key_event: Any = False,
    pinned: Any = False,
    idempotency_key: str | None = None,
    published_at: datetime | None = None,
    *,
    draft: Any = False,
    publish_at: Any = None,
    image: Any = None,
) -> Update:
    """Publish a new update, or save it as a draft, or schedule it for `publish_at`.

    A repeated idempotency key returns the first update instead. Drafts and scheduled
    updates make no CHANGE: readers learn of them when they are published.
    """
    fields = {
        "body": _body(body),
        "headline": _headline(headline),
        "key_event": _flag(key_event, "key_event"),
        "pinned": _flag(pinned, "pinned"),
    }
    status, due = PUBLISHED, None
    if _flag(draft, "draft"):
        if publish_at is not None:
            raise Invalid("an update is either a draft or scheduled, not both")
        status = DRAFT
    elif publish_at is not None:
        status, due = SCHEDULED, _publish_at(publish_at, utcnow())
    if idempotency_key is not None:
        idempotency_key = _text(idempotency_key, "idempotency key", 64, required=True)
    with _transaction() as outbox:
        _lock_live(article)  # the lock that orders writers, taken first
        media = _media(image)
        if idempotency_key is not None:
            earlier = _replayed(article, author, idempotency_key, fields)
            if earlier is not None:
                return earlier
        seq = _next_seq(article) if status == PUBLISHED else None
        if fields["pinned"] and status == PUBLISHED:
            _unpin_others(outbox, article)
        html = render_markdown(fields["body"])
        update = Update(
            article_id=article.id,
            article=article,
            author=author,
            html=html,
            excerpt=excerpt(html),
            idempotency_key=idempotency_key,
            published_at=published_at or utcnow(),
            status=status,
            publish_at=due,
            image=media,
            **fields,
        )
        db.session.add(update)
        db.session.flush()
        if status == PUBLISHED:
            _record(outbox, article, "created", update, seq=seq)
    return update


EDITABLE = ("body", "headline", "key_event", "pinned", "status", "publish_at", "image")


def _edit_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    if not fields:
        raise Invalid(f"nothing to change: send any of {', '.join(EDITABLE)}")
    checked = dict(fields)
    for name, value in fields.items():
        if name == "body":
            checked[name] = _body(value)
        elif name == "headline":
            checked[name] = _headline(value)
        elif name in ("key_event", "pinned"):
            checked[name] = _flag(value, name)
        elif name == "status" and value != PUBLISHED:
            raise Invalid("status can only be set to 'published' (publish it now)")
        elif name == "publish_at":
            checked[name] = _publish_at(value, utcnow())
    if "status" in checked and "publish_at" in checked:
        raise Invalid("send status 'published' to publish now, or publish_at, not both")
    return checked


def edit_update(article: Article, update_id: int, editor: Editor, fields: dict[str, Any]) -> Update:
    """Change an update's text, flags or image; publish a draft now or (re)schedule it.

    A text edit keeps the text as it stood before in a Revision. Published updates give an
    `edited` CHANGE; publishing a draft or scheduled one gives `created`; the rest, none.
    """
    fields = _edit_fields(fields)
    with _transaction() as outbox:
        _lock_live(article)
        update = get_update(article, update_id, readers=False)
        if "image" in fields:
            fields["image"] = _media(fields["image"])
        was_visible = update.is_visible
        if was_visible and ("status" in fields or "publish_at" in fields):
            raise Conflict(f"update {update_id} is already published")
        if "publish_at" in fields and update.author.disabled_at is not None:
            # The scheduler never publishes a disabled editor's update; it would only be held.
            raise Conflict(
                f"update {update_id} is by {update.author.username}, whose account is disabled: "
                "publish it now, or post it again yourself to schedule it"
            )
        seq = _next_seq(article) if was_visible or "status" in fields else None
        _apply_text(update, editor, fields)
        for name in ("key_event", "pinned", "image"):
            if name in fields:
                setattr(update, name, fields[name])
        if "publish_at" in fields:
            update.status, update.publish_at = SCHEDULED, fields["publish_at"]
        if "status" in fields:
            update.status, update.publish_at, update.published_at = PUBLISHED, None, utcnow()
        if update.is_visible and update.pinned and (fields.get("pinned") or not was_visible):
            _unpin_others(outbox, article, keep=update.id)
        if seq is not None:
            _record(outbox, article, "edited" if was_visible else "created", update, seq=seq)
    return update


def _apply_text(update: Update, editor: Editor, fields: dict[str, Any]) -> None:
    """Set headline and body; a real change keeps the text as it stood in a Revision."""
    new = {name: fields[name] for name in ("body", "headline") if name in fields}
    if all(getattr(update, name) == value for name, value in new.items()):
        return  # pinning or flagging, or the same text again, is not editing the text
    db.session.add(
        Revision(
            update_id=update.id,
            headline=update.headline,
            body=update.body,
            editor=update.edited_by or update.author,
            saved_at=update.edited_at or update.published_at,
        )
    )
    for name, value in new.items():
        setattr(update, name, value)
    if "body" in new:
        update.html = render_markdown(new["body"])
        update.excerpt = excerpt(update.html)
    update.edited_at = utcnow()
    update.edited_by = editor


def publish_update(article: Article, update_id: int, editor: Editor) -> Update:
    """Publish a draft or scheduled update now (409 if it is published already)."""
    return edit_update(article, update_id, editor, {"status": PUBLISHED})


def delete_update(article: Article, update_id: int, editor: Editor) -> None:
    """Soft-delete: the row stays for the change log, readers are told to remove it."""
    with _transaction() as outbox:
        _lock_live(article)
        update = get_update(article, update_id, readers=False)
        was_visible = update.is_visible
        update.deleted_at = utcnow()
        update.deleted_by = editor
        update.pinned = False
        if was_visible:
            _record(outbox, article, "deleted", update)


def revisions(article: Article, update_id: int) -> list[Revision]:
    """An update's earlier texts, oldest first (drafts' too)."""
    update = get_update(article, update_id, readers=False)
    query = sa.select(Revision).where(Revision.update_id == update.id).order_by(Revision.id)
    return list(db.session.scalars(query))


def unpublished(article: Article, offset: int = 0, limit: int | None = None) -> list[Update]:
    """The story's drafts and scheduled updates, for editors: scheduled first, by time, then
    held ones (see `HELD`) by the time they were meant for, then drafts, newest first."""
    query = (
        sa.select(Update)
        .where(
            Update.article_id == article.id,
            Update.status.in_((DRAFT, SCHEDULED)),
            Update.deleted_at.is_(None),
        )
        .order_by(
            Update.status != SCHEDULED,
            Update.publish_at.is_(None),
            Update.publish_at,
            Update.id.desc(),
        )
        .offset(offset)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def publish_due(now: datetime, limit: int = 100) -> list[int]:
    """Publish the scheduled updates whose time has come; the ids of those published here.

    Every server process runs this; each update is claimed in the database (UPDATE ... WHERE
    status = 'scheduled' ... RETURNING under the story's lock), so exactly one process
    publishes it, whichever gets there first. A story that has ended keeps its due updates
    waiting until it is live again.
    """
    due = db.session.execute(
        sa.select(Update.id, Update.article_id, Editor.disabled_at.is_not(None))
        .join(Article, Article.id == Update.article_id)
        .join(Editor, Editor.id == Update.author_id)
        .where(
            Update.status == SCHEDULED,
            Update.publish_at <= now,
            Update.deleted_at.is_(None),
            Article.status == "live",
        )
        .order_by(Update.publish_at, Update.id)
        .limit(limit)
    ).all()
    db.session.rollback()  # end the read, so each claim starts its own write transaction
    # Scheduled before its author was disabled and not held then (rows from before holding
    # existed, or a post that raced the disabling): held now, never published.
    _hold([update_id for update_id, _, disabled in due if disabled])
    return [
        update_id
        for update_id, article_id, disabled in due
        if not disabled and _claim(article_id, update_id, now)
    ]


# A held update: a draft that keeps the time it was scheduled for, set aside when its author
# was disabled so that another editor decides whether it is published. Nothing else gives
# a draft a publish_at: publishing or rescheduling it ends the hold.
HELD = sa.and_(Update.status == DRAFT, Update.publish_at.is_not(None))


def _disabled_authors() -> sa.Select:
    return sa.select(Editor.id).where(Editor.disabled_at.is_not(None))


def _hold_scheduled(*where: sa.ColumnElement[bool]) -> int:
    """Hold the scheduled updates that match, in the current transaction; how many."""
    return db.session.execute(
        sa.update(Update)
        .where(Update.status == SCHEDULED, Update.deleted_at.is_(None), *where)
        .values(status=DRAFT)  # publish_at stays: the time it was meant for
        .execution_options(synchronize_session=False)
    ).rowcount


def _hold(update_ids: list[int]) -> None:
    if not update_ids:
        return
    with _transaction():
        held = _hold_scheduled(Update.id.in_(update_ids), Update.author_id.in_(_disabled_authors()))
    current_app.logger.warning(
        "held %d due scheduled update(s) whose author is disabled: %s", held, update_ids
    )


@dataclass
class Held:
    """Some of one author's held updates, all in one story."""

    author_id: int
    story: Article
    count: int
    first_due: datetime  # the earliest time they were scheduled for


def held_updates() -> list[Held]:
    """What an admin has to see to: per author and story, how many of the author's updates
    are held. One row per story, so the list stays as short as the newsroom's stories
    however many updates were held; each story's compose page lists the updates."""
    rows = db.session.execute(
        sa.select(
            Update.author_id, Update.article_id, sa.func.count(), sa.func.min(Update.publish_at)
        )
        .where(HELD, Update.deleted_at.is_(None))
        .group_by(Update.author_id, Update.article_id)
        .order_by(Update.author_id, sa.func.min(Update.publish_at))
    ).all()
    if not rows:
        return []
    ids = sorted({story_id for _, story_id, _, _ in rows})
    stories = {
        story.id: story
        for story in db.session.scalars(sa.select(Article).where(Article.id.in_(ids)))
    }
    return [Held(author, stories[story], count, due) for author, story, count, due in rows]


def _claim(article_id: int, update_id: int, now: datetime) -> bool:
    article = db.session.get(Article, article_id)
    with _transaction() as outbox:
        try:
            _lock_live(article)
        except Conflict:
            return False
        claimed = db.session.execute(
            sa.update(Update)
            .where(
                Update.id == update_id,
                Update.status == SCHEDULED,
                Update.publish_at <= now,
                Update.deleted_at.is_(None),
                # Its author may have been disabled since the scheduler looked.
                Update.author_id.not_in(_disabled_authors()),
            )
            .values(status=PUBLISHED, publish_at=None, published_at=now)
            .returning(Update.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if claimed is None:
            return False  # another process published it first, or it was changed
        update = db.session.get(Update, update_id, populate_existing=True)
        seq = _next_seq(article)
        if update.pinned:
            _unpin_others(outbox, article, keep=update.id)
        _record(outbox, article, "created", update, seq=seq)
    return True


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


def _unpin_others(outbox: list[dict[str, Any]], article: Article, keep: int | None = None) -> None:
    """One pinned update per story: pinning one unpins the rest, each as a change of its own."""
    query = sa.select(Update).where(
        Update.article_id == article.id, Update.pinned.is_(True), Update.visible()
    )
    for other in db.session.scalars(query):
        if other.id == keep:
            continue
        other.pinned = False
        _record(outbox, article, "edited", other)


# --- images -----------------------------------------------------------------------


def upload_image(stream: IO[bytes], alt: Any, editor: Editor) -> Media:
    """Check an image by its content, store a clean web-sized copy, and record it."""
    alt = _text(alt, "alt text", current_app.config["MAX_ALT_CHARS"], required=True)
    try:
        media.check_room(editor.id, current_app.config)
        name, width, height = media.store(stream, current_app.config)
    except media.Refused as error:
        raise Invalid(str(error)) from error
    with _transaction():
        image = Media(name=name, alt=alt, width=width, height=height, uploaded_by=editor)
        db.session.add(image)
    return image


CLEAN_BATCH = 200


def clean_media(now: datetime) -> list[str]:
    """Delete the uploads nothing uses (`media.unused`) made more than MEDIA_UNUSED_TTL
    seconds before `now`, rows then files; the names of the files deleted.

    Each batch is re-checked as it is deleted, so an upload attached meanwhile stays; a
    clash with such an attachment rolls the batch back for the next run to retry.
    """
    config = current_app.config
    before = now - timedelta(seconds=config["MEDIA_UNUSED_TTL"])
    removed: list[str] = []
    while ids := media.unused_before(before, CLEAN_BATCH):
        db.session.rollback()  # end the read: the delete is a transaction of its own
        try:
            with _transaction():
                names = db.session.scalars(
                    sa.delete(Media)
                    .where(Media.id.in_(ids), media.unused())
                    .returning(Media.name)
                    .execution_options(synchronize_session=False)
                ).all()
        except sa.exc.IntegrityError:
            current_app.logger.warning("an upload was attached while it was being cleaned")
            break
        media.remove_files(list(names), config["MEDIA_FOLDER"])
        removed += names
        if len(ids) < CLEAN_BATCH or not names:
            break
    return removed


# --- editors ----------------------------------------------------------------------


def create_editor(username: str, password: str, *, admin: bool = False) -> Editor:
    username = _text(username, "username", MAX_USERNAME, required=True)
    if not isinstance(password, str) or len(password) < 8:
        raise Invalid("the password must be at least 8 characters long")
    with _transaction():
        if db.session.scalar(sa.select(Editor).where(Editor.username == username)):
            raise Conflict(f"an editor named {username!r} already exists")
        editor = Editor(username=username, is_admin=admin)
        editor.set_password(password)
        db.session.add(editor)
    return editor


def disable_editor(editor: Editor, by: Editor) -> int:
    """End an editor's access at once: sessions and tokens are checked against disabled_at
    on every request, and the sockets this process holds for them are closed now.

    Their scheduled updates are held (drafts that keep their time, see `HELD`) in the same
    transaction: nothing they wrote goes out under the newsroom's name unless another editor
    publishes it. Gives how many were held.
    """
    if editor.id == by.id:
        raise Conflict("you cannot disable your own account")
    if editor.disabled_at is not None:
        raise Conflict(f"{editor.username} is disabled already")
    with _transaction():
        editor.disabled_at = utcnow()
        held = _hold_scheduled(Update.author_id == editor.id)
    realtime.disconnect_editor(editor.id)
    return held


def enable_editor(editor: Editor) -> Editor:
    """Access again; updates held when they were disabled stay held until someone acts."""
    with _transaction():
        editor.disabled_at = None
    return editor
