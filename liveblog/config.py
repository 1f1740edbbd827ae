"""Defaults and environment variables, read when an app is created (never at import)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask


def _secret_key(instance: Path) -> str:
    """Generate a signing key once and keep it under instance/, so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("REDIS_URL") or None
    app.config.from_mapping(
        HOST=os.environ.get("HOST", "127.0.0.1"),
        PORT=_int_env("PORT", 5000),
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL")
        or f"sqlite:///{instance / 'liveblog.sqlite'}",
        REDIS_URL=redis_url,
        # Prefix of the Redis channels and keys, so deployments can share one Redis server.
        REDIS_CHANNEL=os.environ.get("REDIS_CHANNEL", "liveblog"),
        # Whole requests: a story body or update is far smaller; this stops floods early.
        MAX_CONTENT_LENGTH=_int_env("MAX_CONTENT_LENGTH", 256 * 1024),
        MAX_BODY_CHARS=20_000,
        MAX_HEADLINE_CHARS=200,
        MAX_TITLE_CHARS=200,
        # How many missed changes a reconnecting reader is sent before being told to reload.
        MAX_CATCH_UP=1000,
        SOCKETIO_ASYNC_MODE=os.environ.get("SOCKETIO_ASYNC_MODE") or None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # an editor's compose page stays open for hours
        RATELIMIT_ENABLED=os.environ.get("RATELIMIT_ENABLED", "1") not in ("0", "false"),
        RATELIMIT_STORAGE_URI=redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        LOGIN_RATE_LIMIT=os.environ.get("LOGIN_RATE_LIMIT", "10 per minute"),
        WRITE_RATE_LIMIT=os.environ.get("WRITE_RATE_LIMIT", "120 per minute"),
    )
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or _secret_key(instance)
