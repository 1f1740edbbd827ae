"""Stories (articles), their updates, the change log readers catch up from, and editors."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, lazyload, load_only, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, the one format every API payload uses."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class UTCDateTime(sa.types.TypeDecorator):
    """Stores naive UTC (SQLite keeps no zone) and always hands back aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# The longest username: the column, the service's check and the forms all read this one.
MAX_USERNAME = 64


class Editor(UserMixin, db.Model):
    __tablename__ = "editors"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(MAX_USERNAME), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Admins create and disable editor accounts from /editor/editors.
    is_admin: Mapped[bool] = mapped_column(default=False)
    # A disabled editor's sessions, sockets and tokens stop working at once; the row stays
    # so that their updates keep their author.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses sessions of inactive users
        return self.disabled_at is None

    # Part of the id kept in each signed-in session: raising it (on logout) ends every
    # session made before, even a copied cookie replayed later.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class ApiToken(db.Model):
    """Only a SHA-256 of each token is kept: the token itself is shown once, when made."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    editor_id: Mapped[int] = mapped_column(sa.ForeignKey("editors.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    editor: Mapped[Editor] = relationship(lazy="joined")

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def find(cls, token: str) -> ApiToken | None:
        """The unexpired token with this secret of an active editor (revoked ones are deleted)."""
        found = db.session.scalar(sa.select(cls).where(cls.token_hash == cls.hash(token)))
        if found is None or (found.expires_at is not None and found.expires_at <= utcnow()):
            return None
        return found if found.editor.is_active else None  # a disabled editor's tokens stop

    @classmethod
    def editor_for(cls, token: str) -> Editor | None:
        found = cls.find(token)
        return found.editor if found else None


class Article(db.Model):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    html: Mapped[str] = mapped_column(sa.Text, default="")
    # The introduction as plain text, cut (rendering.excerpt): the page's description.
    excerpt: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    status: Mapped[str] = mapped_column(sa.String(10), default="live")
    # The story's latest change number; bumped in the same transaction as each change.
    seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When coverage ended; None while the story is live.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def by_slug(cls, slug: str) -> Article | None:
        return db.session.scalar(sa.select(cls).where(cls.slug == slug))

    @classmethod
    def listing(cls) -> list[Article]:
        """Live stories first, newest first within each group."""
        order = sa.case((cls.status == "live", 0), else_=1)
        return list(db.session.scalars(sa.select(cls).order_by(order, cls.created_at.desc())))

    def current_updates(self, before: int | None = None, limit: int | None = None) -> list[Update]:
        """The updates readers see, newest first; `before` pages on from that update.

        The cursor follows the page's own order (publication time, then id), so the API and
        the story page agree on what "older than this one" means.
        """
        cursor = self.cursor(before) if before is not None else None
        if before is not None and cursor is None:
            return []
        return self.stream(after=cursor, limit=limit)

    def cursor(self, update_id: int) -> Update | None:
        """One of this story's published updates to page from, or None.

        Deleted ones still count: readers saw them, and a page whose last update was deleted
        must still lead on. Drafts and scheduled ones never do, or paging from an id would
        tell anyone that an embargoed update exists.
        """
        return db.session.scalar(
            sa.select(Update).where(
                Update.article_id == self.id, Update.id == update_id, Update.status == PUBLISHED
            )
        )

    def stream(
        self,
        after: Update | None = None,
        *,
        oldest_first: bool = False,
        limit: int | None = None,
        pinned: bool | None = None,
    ) -> list[Update]:
        """Visible updates in page order (newest first, or oldest first), after `after` in
        that order. Served by ix_updates_stream however long the story grows."""
        key = sa.tuple_(Update.published_at, Update.id)
        query = sa.select(Update).where(Update.article_id == self.id, Update.visible())
        if pinned is not None:
            query = query.where(Update.pinned == (sa.true() if pinned else sa.false()))
        if after is not None:
            mark = sa.tuple_(
                sa.literal(after.published_at, UTCDateTime), sa.literal(after.id, sa.Integer)
            )
            query = query.where(key > mark if oldest_first else key < mark)
        if oldest_first:
            query = query.order_by(Update.published_at, Update.id)
        else:
            query = query.order_by(Update.published_at.desc(), Update.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list(db.session.scalars(query))

    def count_between(self, newer_than: Update) -> int:
        """How many unpinned visible updates come before `newer_than` on the newest-first page."""
        key = sa.tuple_(Update.published_at, Update.id)
        mark = sa.tuple_(
            sa.literal(newer_than.published_at, UTCDateTime), sa.literal(newer_than.id, sa.Integer)
        )
        return db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Update)
            .where(
                Update.article_id == self.id,
                Update.visible(),
                Update.pinned == sa.false(),
                key > mark,
            )
        )

    def key_events(self, limit: int = 50) -> list[Update]:
        """The latest key events, newest first (ix_updates_key_events), with only what the box
        shows: an update's text and markup can weigh far more than its line there."""
        query = (
            sa.select(Update)
            .options(
                load_only(Update.published_at, Update.headline, Update.excerpt),
                lazyload("*"),
            )
            .where(Update.article_id == self.id, Update.visible(), Update.key_event == sa.true())
            .order_by(Update.published_at.desc(), Update.id.desc())
            .limit(limit)
        )
        return list(db.session.scalars(query))

    def last_published(self) -> datetime | None:
        return db.session.scalar(
            sa.select(sa.func.max(Update.published_at)).where(
                Update.article_id == self.id, Update.visible()
            )
        )

    @classmethod
    def last_updates(cls) -> dict[int, datetime]:
        """Each story's latest visible update time, by story id: one backward step down
        ix_updates_stream per story, however long the stories are."""
        latest = (
            sa.select(Update.published_at)
            .where(Update.article_id == cls.id, Update.visible())
            .order_by(Update.published_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = db.session.execute(sa.select(cls.id, latest))
        return {article_id: moment for article_id, moment in rows if moment is not None}

    def changes_since(self, seq: int, limit: int | None = None) -> list[Change]:
        query = (
            sa.select(Change)
            .where(Change.article_id == self.id, Change.seq > seq)
            .order_by(Change.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        return list(db.session.scalars(query))

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "body": self.body,
            "html": self.html,
            "status": self.status,
            "seq": self.seq,
            "created_at": iso(self.created_at),
            "ended_at": iso(self.ended_at),
        }


# An update is a draft (editors only), scheduled (editors only, until its time comes) or
# published (everyone). Readers see published updates that are not deleted: Update.visible().
PUBLISHED, DRAFT, SCHEDULED = "published", "draft", "scheduled"
UPDATE_STATUSES = (PUBLISHED, DRAFT, SCHEDULED)


class Update(db.Model):
    __tablename__ = "updates"
    __table_args__ = (
        # A form or API client that sends the same post twice (a double click, a retry
        # after a timeout) names it with the same key, and gets the first one back.
        sa.UniqueConstraint("article_id", "idempotency_key"),
        # The story page and the API page through a story in (published_at, id) order; the
        # key events box and the pinned update are read by their own. All stay index scans
        # at any length.
        sa.Index("ix_updates_stream", "article_id", "published_at", "id"),
        sa.Index("ix_updates_key_events", "article_id", "key_event", "published_at", "id"),
        sa.Index("ix_updates_pinned", "article_id", "pinned", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(sa.ForeignKey("articles.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("editors.id"))
    headline: Mapped[str | None] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str] = mapped_column(sa.Text)
    # The text without markup, cut (rendering.excerpt), written with the HTML: what key
    # events, descriptions and the JSON-LD show, so no page view strips an update's HTML.
    excerpt: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    key_event: Mapped[bool] = mapped_column(default=False)
    pinned: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(10), default=PUBLISHED)
    # When a scheduled update is due; None for the others.
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    edited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("editors.id"))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("editors.id"))
    # The seq of the latest change to this update, so a page knows how fresh each one is;
    # None until it is published (drafts and scheduled updates make no change).
    seq: Mapped[int | None] = mapped_column(default=None)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(64))
    # The whole rendered element (templates/_update.html), rendered once per change: pages
    # and live CHANGEs both use it, so an update's markup has a single source.
    element: Mapped[str] = mapped_column(sa.Text, default="")
    image_id: Mapped[int | None] = mapped_column(sa.ForeignKey("media.id"))

    author: Mapped[Editor] = relationship(lazy="joined", foreign_keys=[author_id])
    edited_by: Mapped[Editor | None] = relationship(foreign_keys=[edited_by_id])
    deleted_by: Mapped[Editor | None] = relationship(foreign_keys=[deleted_by_id])
    article: Mapped[Article] = relationship()
    image: Mapped[Media | None] = relationship(lazy="joined")

    @classmethod
    def visible(cls) -> sa.ColumnElement[bool]:
        """The one rule for what readers see: published and not deleted."""
        return sa.and_(cls.status == PUBLISHED, cls.deleted_at.is_(None))

    @property
    def is_visible(self) -> bool:
        return self.status == PUBLISHED and self.deleted_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "headline": self.headline,
            "body": self.body,
            "html": self.html,
            "key_event": self.key_event,
            "pinned": self.pinned,
            "status": self.status,
            "publish_at": iso(self.publish_at),
            "author": self.author.username,
            "published_at": iso(self.published_at),
            "edited_at": iso(self.edited_at),
            "seq": self.seq,
            "image": self.image.to_dict() if self.image else None,
        }


class Revision(db.Model):
    """An update's text as it stood before an edit: who had saved it, and when."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(sa.ForeignKey("updates.id"), index=True)
    headline: Mapped[str | None] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    editor_id: Mapped[int] = mapped_column(sa.ForeignKey("editors.id"))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)

    editor: Mapped[Editor] = relationship(lazy="joined")

    def to_dict(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "body": self.body,
            "editor": self.editor.username,
            "saved_at": iso(self.saved_at),
        }


class Media(db.Model):
    """An uploaded image, re-encoded without its metadata; the file is `MEDIA_FOLDER/name`."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    alt: Mapped[str] = mapped_column(sa.String(500))
    width: Mapped[int]
    height: Mapped[int]
    uploaded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("editors.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploaded_by: Mapped[Editor] = relationship()

    @property
    def url(self) -> str:
        return f"/media/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "alt": self.alt,
            "width": self.width,
            "height": self.height,
        }


class Change(db.Model):
    """One row per change to a story, numbered by the story's seq: the log readers replay.

    The payload is the very CHANGE that was broadcast, stored once at write time, so a
    reader catching up receives exactly what a connected reader saw.
    """

    __tablename__ = "changes"
    __table_args__ = (sa.UniqueConstraint("article_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(sa.ForeignKey("articles.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(sa.String(16))
    update_id: Mapped[int | None] = mapped_column(sa.ForeignKey("updates.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
