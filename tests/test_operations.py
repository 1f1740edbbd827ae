"""Operators' commands: migrations at start by one process at a time, and backups."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from liveblog import create_app
from liveblog.extensions import db
from tests.conftest import app_config
from tests.liveserver import ROOT

FLASK = [str(Path(sys.executable).parent / "flask"), "--app", "app"]


@pytest.mark.slow
def test_processes_starting_together_migrate_once(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite'}", "SECRET_KEY": "x"}

    def upgrade(_: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*FLASK, "schema-upgrade"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(upgrade, range(3)))
    assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr for run in runs]
    with closing(sqlite3.connect(tmp_path / "fresh.sqlite")) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert len(versions) == 1
    assert {"articles", "updates", "changes", "editors", "api_tokens"} <= tables


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
