"""Backup and restore as the README tells an operator to do them: a story backed up (SQLite:
`flask backup`; PostgreSQL: pg_dump), restored into a fresh database, and served from it
exactly as before: the story, its updates and change log, the editor's sign-in and token.
What was written after the backup is not in it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from flask import Flask

from liveblog import create_app, services, tokens
from liveblog.extensions import db
from liveblog.models import Article, Editor
from tests.conftest import PASSWORD, app_config, csrf_token, fresh_postgres_database

pytestmark = pytest.mark.slow  # pg_dump and pg_restore, two databases of its own

API = "/api/articles/election-night"


def build(url: str, create: bool = False) -> Flask:
    app = create_app(app_config(url))
    if create:
        with app.app_context():
            db.create_all()
    return app


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def write_story(app: Flask) -> str:
    """A story with published, edited, pinned, deleted and draft updates; a token."""
    with app.app_context():
        alice = services.create_editor("alice", PASSWORD)
        story = services.create_article("Election night", slug="election-night", body="Intro")
        first = services.post_update(story, alice, "Polls *open*.", headline="Open")
        services.post_update(story, alice, "Turnout is high.", key_event=True)
        services.edit_update(story, first.id, alice, {"body": "Polls **open** at seven."})
        gone = services.post_update(story, alice, "A mistake.")
        services.delete_update(story, gone.id, alice)
        services.post_update(story, alice, "Unfinished.", draft=True)
        services.post_update(story, alice, "Pinned note.", pinned=True)
        return tokens.issue(alice)


def what_readers_and_editors_see(app: Flask, token: str) -> dict:
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    seen = {
        "story": client.get(API).get_json(),
        "updates": client.get(f"{API}/updates").get_json(),
        "changes": client.get(f"{API}/changes?since=0").get_json(),
        "page": client.get("/articles/election-night").status_code,
        "token works": client.get(f"{API}/updates?limit=1", headers=bearer).status_code,
    }
    login = client.post(
        "/editor/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/editor/login"),
        },
    )
    seen["sign-in"] = login.status_code
    seen["compose"] = client.get("/editor/articles/election-night").status_code
    return seen


def write_after_backup(app: Flask) -> None:
    with app.app_context():
        alice = db.session.scalar(db.select(Editor).where(Editor.username == "alice"))
        services.post_update(Article.by_slug("election-night"), alice, "After the backup.")


def test_sqlite_backup_restored_into_a_fresh_file_serves_the_same_story(tmp_path):
    live = build(f"sqlite:///{tmp_path / 'live.sqlite'}", create=True)
    token = write_story(live)
    before = what_readers_and_editors_see(live, token)
    result = live.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup.sqlite")])
    assert result.exit_code == 0, result.output
    write_after_backup(live)
    dispose(live)

    # The README's restore: the copy in place of the database file, no -wal or -shm beside.
    restored_path = tmp_path / "restored" / "liveblog.sqlite"
    restored_path.parent.mkdir()
    shutil.copy(tmp_path / "backup.sqlite", restored_path)
    restored = build(f"sqlite:///{restored_path}")
    try:
        after = what_readers_and_editors_see(restored, token)
    finally:
        dispose(restored)
    assert after == before
    assert before["story"]["seq"] == 6 and len(before["updates"]["updates"]) == 3
    assert (before["sign-in"], before["compose"], before["token works"]) == (302, 200, 200)
    assert "After the backup." not in str(after)


def pg(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for pg_dump and pg_restore."""
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def two_postgres_databases() -> Iterator[tuple[str, str]]:
    with (
        fresh_postgres_database("liveblog_live") as live,
        fresh_postgres_database("liveblog_restored") as restored,
    ):
        yield live, restored


def test_postgresql_pg_dump_restored_into_a_fresh_database_serves_the_same_story(
    two_postgres_databases, tmp_path
):
    live_url, restored_url = two_postgres_databases
    live = build(live_url, create=True)
    token = write_story(live)
    before = what_readers_and_editors_see(live, token)
    dump = tmp_path / "liveblog.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump}", pg(live_url)], check=True, timeout=120
    )
    write_after_backup(live)
    dispose(live)

    subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={pg(restored_url)}",
         str(dump)],
        check=True,
        timeout=120,
    )  # fmt: skip
    restored = build(restored_url)
    try:
        after = what_readers_and_editors_see(restored, token)
        # Sequences came along: the next write takes the next ids, not ones already used.
        write_after_backup(restored)
        assert restored.test_client().get(API).get_json()["seq"] == before["story"]["seq"] + 1
    finally:
        dispose(restored)
    assert after == before
    assert "After the backup." not in str(after)
