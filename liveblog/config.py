"""Defaults and environment variables, read when an app is created (never at import)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask


def _secret_key(instance: Path) -> str:
    """Generate a signing key once and keep it under instance/, so sessions survive restarts."""
    path = instance / "secret_key"
    try:
        # Created readable by the owner only, and only once: processes starting together on
        # a fresh instance/ all end up with the key the first one wrote.
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be between creating and writing it
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to have a new key made") from None
    key = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    return key


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _flag_env(name: str) -> bool:
    return os.environ.get(name, "0").lower() not in ("0", "false", "no", "")


def _database_url(url: str | None, instance: Path) -> str:
    """The SQLAlchemy URL; a bare postgres:// or postgresql:// one means the psycopg 3 driver."""
    if not url:
        return f"sqlite:///{instance / 'liveblog.sqlite'}"
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgres", "postgresql") else url


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("REDIS_URL") or None
    app.config.from_mapping(
        HOST=os.environ.get("HOST", "127.0.0.1"),
        PORT=_int_env("PORT", 5000),
        SQLALCHEMY_DATABASE_URI=_database_url(os.environ.get("DATABASE_URL"), instance),
        REDIS_URL=redis_url,
        # Prefix of the Redis channels and keys, so deployments can share one Redis server.
        REDIS_CHANNEL=os.environ.get("REDIS_CHANNEL", "liveblog"),
        # Whole requests: a story body or update is far smaller; this stops floods early.
        MAX_CONTENT_LENGTH=_int_env("MAX_CONTENT_LENGTH", 256 * 1024),
        MAX_BODY_CHARS=20_000,
        MAX_HEADLINE_CHARS=200,
        MAX_TITLE_CHARS=200,
        # Images: uploads get a limit of their own (the rest keep MAX_CONTENT_LENGTH); the
        # stored copy is re-encoded, without metadata, at most MEDIA_MAX_SIDE pixels wide or
        # high, under MEDIA_FOLDER.
        MEDIA_FOLDER=os.environ.get("MEDIA_FOLDER") or str(instance / "media"),
        MAX_UPLOAD_BYTES=_int_env("MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
        # Checked from the header before decoding. A decoded pixel takes 4 bytes, twice that
        # while a transparent one is resized: a 24 MP PNG peaks near 220 MB (50 MP took 650),
        # and JPEGs decode at a reduced scale (a 12 MP photo, ~35 MB). 24 MP still takes a
        # phone's 12 MP photo and a 24 MP (6000 x 4000) camera's.
        MAX_IMAGE_PIXELS=_int_env("MAX_IMAGE_PIXELS", 24_000_000),
        MEDIA_MAX_SIDE=1600,
        # Per editor, API and compose form together: each upload costs a decode.
        UPLOAD_RATE_LIMIT=os.environ.get("UPLOAD_RATE_LIMIT", "30 per hour"),
        # Uploads no update uses yet that one editor may hold (0: no cap), and the seconds
        # after upload when such an upload is deleted, rows and files alike (`flask media
        # clean`, and every MEDIA_CLEAN_INTERVAL seconds from each server; 0: only the
        # command), so a token cannot fill the disk with images nobody sees.
        MEDIA_UNUSED_LIMIT=_int_env("MEDIA_UNUSED_LIMIT", 50),
        MEDIA_UNUSED_TTL=_int_env("MEDIA_UNUSED_TTL", 24 * 3600),
        MEDIA_CLEAN_INTERVAL=_int_env("MEDIA_CLEAN_INTERVAL", 600),
        MAX_ALT_CHARS=500,
        # The scheduler publishes due updates from a loop in each server process; tests turn
        # it on when they need it (see liveblog/scheduler.py).
        SCHEDULER_ENABLED=os.environ.get("SCHEDULER_ENABLED", "1") not in ("0", "false"),
        SCHEDULER_INTERVAL=float(os.environ.get("SCHEDULER_INTERVAL") or 1.0),
        # How many missed changes a reconnecting reader is sent before being told to reload.
        MAX_CATCH_UP=1000,
        # ... and how many bytes of them (as JSON): past either, the page reloads instead.
        MAX_CATCH_UP_BYTES=_int_env("MAX_CATCH_UP_BYTES", 2 * 1024 * 1024),
        SOCKETIO_ASYNC_MODE=os.environ.get("SOCKETIO_ASYNC_MODE") or None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # an editor's compose page stays open for hours
        RATELIMIT_ENABLED=os.environ.get("RATELIMIT_ENABLED", "1") not in ("0", "false"),
        RATELIMIT_STORAGE_URI=redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        # If Redis, where the counts live, goes away, count in memory rather than fail.
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        # How many reverse proxies in front set X-Forwarded-For/-Proto/-Host (0: none). Rate
        # limits key on the client's address, which is only known through them.
        TRUSTED_PROXIES=_int_env("TRUSTED_PROXIES", 0),
        # The site's own address for absolute links (feeds, sitemap, Open Graph, canonical);
        # without it, the request's.
        PUBLIC_URL=(os.environ.get("PUBLIC_URL") or "").rstrip("/") or None,
        # Host names (`host` or `host:port`, comma-separated) the site answers to; any other
        # Host gets 400. Without PUBLIC_URL the links are built from the request's host, and
        # a forged one must never reach a page that a shared cache keeps. Empty: any host,
        # for `make run`; `make serve` refuses to start without this or PUBLIC_URL. Kept in
        # lower case, as nginx passes host names on, since the check is case-sensitive.
        ALLOWED_HOSTS=[
            name.strip().lower()
            for name in os.environ.get("ALLOWED_HOSTS", "").split(",")
            if name.strip()
        ],
        # Updates on one story page; older ones are a link (and a cursor) away.
        PAGE_SIZE=_int_env("PAGE_SIZE", 20),
        # Seconds a shared cache (nginx, a CDN) may serve a story page to readers who are not
        # signed in: the page names its seq, so the live script catches up what a copy lacks.
        PAGE_MAX_AGE=_int_env("PAGE_MAX_AGE", 5),
        # Rendered story pages kept in this process, and for how long in Redis (seconds).
        PAGE_CACHE_SIZE=_int_env("PAGE_CACHE_SIZE", 512),
        PAGE_CACHE_TTL=_int_env("PAGE_CACHE_TTL", 300),
        # The same cache bounded in bytes: a page of large updates can weigh megabytes, and
        # readers choose which variants are rendered, so a count alone bounds no memory.
        PAGE_CACHE_BYTES=_int_env("PAGE_CACHE_BYTES", 64 * 1024 * 1024),
        # Larger pages are kept in their process only, never in Redis, whose memory the
        # whole deployment shares.
        PAGE_CACHE_SHARED_MAX_BYTES=_int_env("PAGE_CACHE_SHARED_MAX_BYTES", 1024 * 1024),
        # Story pages one client address may have rendered afresh (cache misses: old pages,
        # rare variants); cached pages and 304s are never counted. Over it, 429.
        PAGE_RENDER_RATE_LIMIT=os.environ.get("PAGE_RENDER_RATE_LIMIT", "30 per minute"),
        LOGIN_RATE_LIMIT=os.environ.get("LOGIN_RATE_LIMIT", "10 per minute"),
        WRITE_RATE_LIMIT=os.environ.get("WRITE_RATE_LIMIT", "120 per minute"),
        # Connections the kernel holds for the server while it is busy: a crowd arriving at
        # once must wait there, not be refused (the kernel caps it at net.core.somaxconn).
        LISTEN_BACKLOG=_int_env("LISTEN_BACKLOG", 2048),
        # Bytes of packets that may wait for one reader; a reader further behind is dropped
        # and resubscribes from its last seq, so a reader that stops reading costs no more.
        MAX_QUEUED_BYTES=_int_env("MAX_QUEUED_BYTES", 1024 * 1024),
        # Socket.IO connections one client address may hold open (0: no cap).
        MAX_CONNECTIONS_PER_ADDRESS=_int_env("MAX_CONNECTIONS_PER_ADDRESS", 300),
        # What one Socket.IO connection may send: a reader sends a connect and one subscribe
        # per story (at most 10), again after each reconnect. A burst, then a rate a second,
        # and handlers running or waiting at once; a connection past any of them is closed.
        SOCKET_EVENTS_BURST=_int_env("SOCKET_EVENTS_BURST", 30),
        SOCKET_EVENTS_PER_SECOND=_int_env("SOCKET_EVENTS_PER_SECOND", 5),
        SOCKET_EVENTS_PENDING=_int_env("SOCKET_EVENTS_PENDING", 12),
        # Failed sign-ins per account, whatever the address: guessing one editor's password
        # from many addresses is slowed down too. Successful sign-ins are never counted, nor
        # are browsers with the account's device cookie (next), so this cannot lock it out.
        LOGIN_ACCOUNT_RATE_LIMIT=os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "20 per 10 minutes"),
        # A browser that signed in to an account before carries a device cookie for it (see
        # liveblog/signin.py): its failures count here, per cookie, instead of per address and
        # per account, so guesses from elsewhere never lock the editor out of it.
        LOGIN_DEVICE_RATE_LIMIT=os.environ.get("LOGIN_DEVICE_RATE_LIMIT", "10 per 10 minutes"),
        # How long that cookie lasts after the browser last signed in (days).
        LOGIN_DEVICE_DAYS=_int_env("LOGIN_DEVICE_DAYS", 365),
        # Previews per editor: each renders Markdown on the server, and a script could ask for
        # them without end. The compose page asks a quarter second after typing pauses, which
        # a fast typist can do about once a word: this leaves room for that.
        PREVIEW_RATE_LIMIT=os.environ.get("PREVIEW_RATE_LIMIT", "120 per minute"),
        # Behind TLS: cookies only over HTTPS, and browsers told to use nothing else (HSTS).
        SESSION_COOKIE_SECURE=_flag_env("SESSION_COOKIE_SECURE"),
        REMEMBER_COOKIE_SECURE=_flag_env("SESSION_COOKIE_SECURE"),
        LOG_FORMAT=os.environ.get("LOG_FORMAT", "text"),
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
        # /metrics answers 404 unless this is on: it tells about the audience and the load.
        METRICS_ENABLED=_flag_env("METRICS_ENABLED"),
        # One answer of the changes API holds at most this many bytes of changes (at least
        # one change, whatever its size); `more` says to ask again from the last one.
        MAX_CHANGES_BYTES=_int_env("MAX_CHANGES_BYTES", 1024 * 1024),
        # Scheduling is for the coming months: a time further ahead is a typo (422), and
        # times near the calendar's end overflow once converted to UTC.
        MAX_SCHEDULE_AHEAD_DAYS=_int_env("MAX_SCHEDULE_AHEAD_DAYS", 366),
        # One answer of the public updates API holds at most this many updates and bytes of
        # them (at least one update, whatever its size); `next` asks for the rest. A long
        # story is never one answer that anyone may ask for again and again.
        API_PAGE_MAX=_int_env("API_PAGE_MAX", 50),
        MAX_UPDATES_BYTES=_int_env("MAX_UPDATES_BYTES", 1024 * 1024),
        # One document of a story's Atom feed: at most this many entries and bytes of their
        # content (at least one entry); older ones are on the pages its rel="next" link names.
        FEED_SIZE=_int_env("FEED_SIZE", 20),
        MAX_FEED_BYTES=_int_env("MAX_FEED_BYTES", 512 * 1024),
    )
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or _secret_key(instance)
