"""Command line: `flask --app app editor create|token NAME`, `... demo`, `... media clean`."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from . import demo, services, tokens
from .extensions import db
from .models import Article, Editor, iso, utcnow

editor_cli = AppGroup("editor", help="Manage editor accounts.")


def _editor(name: str) -> Editor:
    editor = db.session.scalar(sa.select(Editor).where(Editor.username == name))
    if editor is None:
        raise click.ClickException(f"no editor named {name!r}; create one with 'editor create'")
    return editor


@editor_cli.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from stdin.")
@click.option("--admin", is_flag=True, help="May create and disable editor accounts.")
def create_editor(name: str, password_stdin: bool, admin: bool) -> None:
    """Create an editor account."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        services.create_editor(name, password, admin=admin)
    except services.ServiceError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"{'Admin' if admin else 'Editor'} {name!r} created.", err=True)


@editor_cli.command("token")
@click.argument("name")
@click.option(
    "--expires-in-days", type=click.IntRange(1, 3650), help="Stop working after this many days."
)
def make_token(name: str, expires_in_days: int | None) -> None:
    """Print a new API token for an editor (only the token, on standard output)."""
    click.echo(tokens.issue(_editor(name), expires_in_days))


@editor_cli.command("tokens")
@click.argument("name")
def list_tokens(name: str) -> None:
    """List an editor's API tokens: id, created, last used, expires (never the secrets)."""
    click.echo("id\tcreated\tlast used\texpires")
    for token in tokens.listing(_editor(name)):
        fields = (token.created_at, token.last_used_at, token.expires_at)
        click.echo("\t".join([str(token.id), *(iso(moment) or "never" for moment in fields)]))


@editor_cli.command("revoke")
@click.argument("token_id", type=click.IntRange(1, services.MAX_ID))
def revoke_token(token_id: int) -> None:
    """Revoke an API token at once, by the id `editor tokens` shows."""
    if not tokens.revoke(token_id):
        raise click.ClickException(f"no token has the id {token_id}")
    click.echo(f"Token {token_id} revoked.", err=True)


@click.command("demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Only when the database has no story yet.")
def load_demo(if_empty: bool) -> None:
    """Load the demo story (does nothing if it is already there)."""
    if if_empty and db.session.scalar(sa.select(sa.func.count()).select_from(Article)):
        click.echo("Stories exist already; demo not loaded.", err=True)
        return
    created = demo.load()
    click.echo("Demo story loaded." if created else "Demo story already present.", err=True)


media_cli = AppGroup("media", help="Manage uploaded images.")


@media_cli.command("clean")
def clean_media() -> None:
    """Delete the uploads no update uses once MEDIA_UNUSED_TTL has passed, rows and files."""
    removed = services.clean_media(utcnow())
    click.echo(f"{len(removed)} unused upload(s) deleted.", err=True)


def init_app(app: Flask) -> None:
    from .backup import backup
    from .schema import schema_upgrade

    app.cli.add_command(editor_cli)
    app.cli.add_command(load_demo)
    app.cli.add_command(media_cli)
    app.cli.add_command(schema_upgrade)
    app.cli.add_command(backup)
