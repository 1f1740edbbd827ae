"""`flask schema-upgrade` run by several processes at once: each waits for the schema lock,
so one migrates and the others find the schema current.

The race is made certain rather than hoped for: the test takes the lock first, starts two
upgrades, sees both waiting for it (PostgreSQL's pg_locks, Linux's /proc/locks), and only
then lets them go. Without the lock, nothing waits, and the test says so.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from liveblog.schema import ADVISORY_LOCK
from tests.conftest import fresh_postgres_database
from tests.liveserver import ROOT, wait_for

pytestmark = pytest.mark.slow

FLASK = [str(Path(sys.executable).parent / "flask"), "--app", "app", "schema-upgrade"]
TABLES = {"articles", "updates", "changes", "editors", "api_tokens", "media"}


def head() -> str:
    return ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def start_upgrades(database_url: str, count: int) -> list[subprocess.Popen]:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "SECRET_KEY": "x"}
    return [
        subprocess.Popen(
            FLASK, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]


def finish(processes: list[subprocess.Popen]) -> list[str]:
    """Each process's stderr, once every one has exited 0."""
    outputs = [process.communicate(timeout=120) for process in processes]
    codes = [process.returncode for process in processes]
    assert codes == [0] * len(processes), [err for _, err in outputs]
    return [err for _, err in outputs]


def held_while(
    waiting: Callable[[], int], processes: list[subprocess.Popen], release: Callable[[], None]
) -> None:
    """With the lock held by the test: wait until every process waits for it, then release."""
    try:
        wait_for(
            lambda: waiting() == len(processes) or any(p.poll() is not None for p in processes),
            timeout=60,
            what="the upgrades to wait for the schema lock",
        )
        exited = [p.args for p in processes if p.poll() is not None]
        assert not exited, "an upgrade ran while another process held the schema lock"
    finally:
        release()


def test_postgresql_upgrades_wait_for_the_advisory_lock_and_migrate_once():
    with fresh_postgres_database("liveblog_schema_lock") as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK,))
            processes = start_upgrades(url, 2)

            def waiting() -> int:
                with psycopg.connect(plain, autocommit=True) as watcher:
                    return watcher.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT"
                        " granted AND objid = %s AND database = (SELECT oid FROM pg_database"
                        " WHERE datname = current_database())",
                        (ADVISORY_LOCK,),
                    ).fetchone()[0]

            held_while(
                waiting,
                processes,
                lambda: holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK,)),
            )
            errors = finish(processes)
            # Both went through the same lock, each after the other: both say so.
            assert all("Schema is up to date." in err for err in errors), errors
            versions = holder.execute("SELECT version_num FROM alembic_version").fetchall()
            tables = {
                row[0]
                for row in holder.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
        assert versions == [(head(),)]
        assert tables >= TABLES


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads Linux's /proc/locks")
def test_sqlite_upgrades_wait_for_the_file_lock_and_migrate_once(tmp_path):
    database = tmp_path / "fresh.sqlite"
    lock_path = ROOT / "instance" / "schema-upgrade.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        inode = os.fstat(lock_file.fileno()).st_ino
        processes = start_upgrades(f"sqlite:///{database}", 2)

        def waiting() -> int:
            # Blocked requests are listed with "->", their file named as dev:dev:inode.
            lines = Path("/proc/locks").read_text().splitlines()
            return sum(1 for line in lines if "->" in line and f":{inode} " in line)

        held_while(waiting, processes, lambda: fcntl.flock(lock_file, fcntl.LOCK_UN))
    finish(processes)
    engine = sa.create_engine(f"sqlite:///{database}")
    with closing(engine.connect()) as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert [tuple(row) for row in versions] == [(head(),)]
    assert tables >= TABLES
