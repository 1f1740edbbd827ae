"""The command line: editors, tokens, the demo story, and the migrations."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from liveblog import create_app, demo
from liveblog.extensions import db
from liveblog.models import ApiToken, Article, Editor, Update
from tests.conftest import app_config


def test_editor_create_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(
        args=["editor", "create", "dana", "--password-stdin"], input="s3cret pass\n"
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        editor = db.session.scalar(sa.select(Editor).where(Editor.username == "dana"))
        assert editor.check_password("s3cret pass")


def test_editor_create_prompts_twice(app, runner):
    result = runner.invoke(args=["editor", "create", "erin"], input="long enough\nlong enough\n")
    assert result.exit_code == 0, result.output
    duplicate = runner.invoke(
        args=["editor", "create", "erin", "--password-stdin"], input="whatever1\n"
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    short = runner.invoke(args=["editor", "create", "fay", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 8" in short.output


def test_editor_token_prints_only_a_working_token(app, runner, editor, story):
    result = runner.invoke(args=["editor", "token", "alice"])
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert "\n" not in token and len(token) >= 40
    with app.app_context():
        assert db.session.scalar(sa.select(ApiToken.token_hash)) == ApiToken.hash(token)
        assert token not in str(db.session.scalar(sa.select(ApiToken.token_hash)))
    response = app.test_client().post(
        "/api/articles/election-night/updates",
        json={"body": "via token"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    missing = runner.invoke(args=["editor", "token", "nobody"])
    assert missing.exit_code != 0 and "no editor named" in missing.output


def test_demo_loads_once(app, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert runner.invoke(args=["demo"]).exit_code == 0
    with app.app_context():
        article = Article.by_slug(demo.SLUG)
        updates = article.current_updates()
        assert len(db.session.scalars(sa.select(Article)).all()) == 1
        assert len(updates) == len(demo.UPDATES) == article.seq
        assert sum(u.key_event for u in updates) >= 1
        assert [u.pinned for u in updates].count(True) == 1
        assert all(u.headline for u in updates)


def test_demo_if_empty_leaves_an_existing_newsroom_alone(app, runner, story):
    result = runner.invoke(args=["demo", "--if-empty"])
    assert result.exit_code == 0
    with app.app_context():
        assert Article.by_slug(demo.SLUG) is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Update)) == 0


def test_migrations_build_exactly_the_models(tmp_path):
    app = create_app(app_config(f"sqlite:///{tmp_path / 'migrated.sqlite'}"))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert diff == []


def test_migrations_run_on_postgresql(postgres_url):
    app = create_app(app_config(postgres_url))
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.engine.dispose()
    assert diff == []


def test_a_bare_postgresql_url_uses_psycopg_3(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://127.0.0.1:5432/test")
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://127.0.0.1:5432/test"
    with app.app_context():
        assert db.engine.dialect.driver == "psycopg"
        db.engine.dispose()
