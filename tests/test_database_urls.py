"""DATABASE_URL as hosting providers hand it out: `postgres://…` and `postgresql://…` both
mean PostgreSQL through psycopg 3 (the driver installed), user, port and query kept; a URL
naming its driver, and SQLite's, are taken as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog import create_app, services
from liveblog.config import _database_url
from liveblog.extensions import db
from liveblog.models import Article
from tests.conftest import fresh_postgres_database

INSTANCE = Path("/srv/instance")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://news@db.example:5433/live?sslmode=require",
         "postgresql+psycopg://news@db.example:5433/live?sslmode=require"),
        ("postgresql://news:secret@db.example/live",
         "postgresql+psycopg://news:secret@db.example/live"),
        ("postgresql+psycopg://db.example/live", "postgresql+psycopg://db.example/live"),
        ("postgresql+psycopg2://db.example/live", "postgresql+psycopg2://db.example/live"),
        ("sqlite:////var/lib/liveblog.sqlite", "sqlite:////var/lib/liveblog.sqlite"),
        ("", "sqlite:////srv/instance/liveblog.sqlite"),
        (None, "sqlite:////srv/instance/liveblog.sqlite"),
    ],
)  # fmt: skip
def test_database_url_schemes(given, used):
    assert _database_url(given, INSTANCE) == used


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_bare_postgres_url_reaches_the_database(monkeypatch, tmp_path, scheme):
    with fresh_postgres_database("liveblog_url") as url:
        bare = url.replace("postgresql+psycopg://", f"{scheme}://")
        monkeypatch.setenv("DATABASE_URL", bare)
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "RATELIMIT_ENABLED": False})
        try:
            with app.app_context():
                assert (db.engine.dialect.name, db.engine.driver) == ("postgresql", "psycopg")
                db.create_all()
                services.create_article("Through a bare URL", slug="bare-url")
                db.session.remove()
                assert Article.by_slug("bare-url").title == "Through a bare URL"
                assert (
                    db.session.scalar(db.text("SELECT current_database()")) == url.rsplit("/", 1)[1]
                )
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
