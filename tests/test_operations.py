"""Operators' commands: backups (migrations by one process at a time: test_schema_upgrade_lock)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import sqlalchemy as sa

from liveblog import create_app
from liveblog.extensions import db
from tests.conftest import app_config


def test_backup_copies_a_live_sqlite_database(app, runner, story, tmp_path):
    target = tmp_path / "backup.sqlite"
    with app.app_context(), db.engine.connect() as reader:  # another connection stays open
        reader.execute(sa.text("SELECT 1"))
        result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect(target)) as copy:
        assert copy.execute("SELECT slug FROM articles").fetchall() == [("election-night",)]
    again = runner.invoke(args=["backup", str(target)])
    assert again.exit_code != 0 and "exists already" in again.output


def test_backup_points_postgresql_to_pg_dump(postgres_url, tmp_path):
    app = create_app(app_config(postgres_url))
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "x.sqlite")])
    assert result.exit_code != 0 and "pg_dump" in result.output
    assert not (tmp_path / "x.sqlite").exists()
    with app.app_context():
        db.engine.dispose()
