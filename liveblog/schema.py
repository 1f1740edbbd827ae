"""`flask --app app schema-upgrade`: migrations applied by one process at a time.

Several server processes started together (`make serve` on every port, a systemd template
unit) each bring the schema up to date first. Alembic has no lock of its own, so two of
them would both try to create the same tables; here each waits for a lock, and the later
ones find the schema already current.
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from .extensions import db

# PostgreSQL advisory locks are named by a number; this one is liveblog's schema.
ADVISORY_LOCK = zlib.crc32(b"liveblog schema upgrade")


@contextmanager
def schema_lock() -> Iterator[None]:
    """Held by one process of all those sharing the database."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK})
            try:
                yield
            finally:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK}
                )
    else:  # SQLite: only processes on this machine can share the file
        path = Path(current_app.instance_path) / "schema-upgrade.lock"
        with path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


@click.command("schema-upgrade")
@with_appcontext
def schema_upgrade() -> None:
    """Apply the migrations (like `db upgrade`), one process at a time."""
    with schema_lock():
        upgrade()
    click.echo("Schema is up to date.", err=True)
