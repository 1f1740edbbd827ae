"""`flask --app app backup FILE`: a consistent copy of a SQLite database, taken while the
server keeps running (SQLite's online backup). PostgreSQL has pg_dump for this (README)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import click
from flask.cli import with_appcontext

from .extensions import db


def backup_sqlite(destination: Path) -> None:
    """Copy the database page by page in one read transaction: a snapshot, even with the
    server writing meanwhile (it waits, or goes on in the write-ahead log)."""
    source = db.engine.url.database
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(destination)) as copy:
        live.backup(copy)


@click.command("backup")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup(destination: Path) -> None:
    """Copy the SQLite database to DESTINATION while the server keeps running."""
    if db.engine.dialect.name != "sqlite":
        raise click.ClickException(
            "this database is not SQLite; back PostgreSQL up with pg_dump (README, 'Backup')"
        )
    if destination.exists():
        raise click.ClickException(f"{destination} exists already; name a new file")
    backup_sqlite(destination)
    click.echo(f"Backed up to {destination}.", err=True)
