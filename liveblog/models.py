"""Stories (articles), their updates, the change log readers catch up from, and editors."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
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


class Editor(UserMixin, db.Model):
    __tablename__ = "editors"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
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
        """The unexpired token with this secret, if any (revoked tokens are deleted)."""
        found = db.session.scalar(sa.select(cls).where(cls.token_hash == cls.hash(token)))
        if found is None or (found.expires_at is not None and found.expires_at <= utcnow()):
            return None
        return found

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
    status: Mapped[str] = mapped_column(sa.String(10), default="live")
    # The story's latest change number; bumped in the same transaction as each change.
    seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def by_slug(cls, slug: str) -> Article | None:
        return db.session.scalar(sa.select(cls).where(cls.slug == slug))

    @classmethod
    def listing(cls) -> list[Article]:
        """Live stories first, newest first within each group."""
        order = sa.case((cls.status == "live", 0), else_=1)
        return list(db.session.scalars(sa.select(cls).order_by(order, cls.created_at.desc())))

    def current_updates(self, before: int | None = None, limit: int | None = None) -> list[Update]:
        """Updates not deleted, newest first; `before` pages back by id."""
        query = (
            sa.select(Update)
            .where(Update.article_id == self.id, Update.deleted_at.is_(None))
            .order_by(Update.published_at.desc(), Update.id.desc())
        )
        if before is not None:
            query = query.where(Update.id < before)
        if limit is not None:
            query = query.limit(limit)
        return list(db.session.scalars(query))

    def page_updates(self) -> list[Update]:
        """The story's page: its pinned update leads, the rest follow newest first."""
        updates = self.current_updates()
        updates.sort(key=lambda update: not update.pinned)  # stable: keeps newest first
        return updates

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
        }


class Update(db.Model):
    __tablename__ = "updates"
    __table_args__ = (
        # A form or API client that sends the same post twice (a double click, a retry
        # after a timeout) names it with the same key, and gets the first one back.
        sa.UniqueConstraint("article_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(sa.ForeignKey("articles.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("editors.id"))
    headline: Mapped[str | None] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str] = mapped_column(sa.Text)
    key_event: Mapped[bool] = mapped_column(default=False)
    pinned: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The seq of the latest change to this update, so a page knows how fresh each one is.
    seq: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(64))

    author: Mapped[Editor] = relationship(lazy="joined")
    article: Mapped[Article] = relationship()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "headline": self.headline,
            "body": self.body,
            "html": self.html,
            "key_event": self.key_event,
            "pinned": self.pinned,
            "author": self.author.username,
            "published_at": iso(self.published_at),
            "edited_at": iso(self.edited_at),
            "seq": self.seq,
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
