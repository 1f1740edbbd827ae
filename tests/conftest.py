"""Fixtures: an app on a fresh database per test, its clients, and a signed-in editor."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import jinja2
import jinja2.bccache
import psycopg
import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from liveblog import create_app, models, services, tokens
from liveblog import editor as editor_views
from liveblog.extensions import db, socketio
from liveblog.models import Editor

POSTGRES_ADMIN = "postgresql://127.0.0.1:5432/test"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes() -> Iterator[None]:
    """Passwords hashed with scrypt at a 32nd of its work factor, in tests only.

    Every `editor` costs a hash and every sign-in a check; at the full factor they were a
    third of the suite's time. The check reads the factor from the stored hash, so the code
    that hashes and checks is the same either way.
    """
    quick = partial(generate_password_hash, method="scrypt:1024:8:1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "generate_password_hash", quick)
        patch.setattr(editor_views, "generate_password_hash", quick)
        yield


def app_config(database_url: str, **overrides) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SOCKETIO_ASYNC_MODE": "threading",
        "RATELIMIT_ENABLED": False,
        **overrides,
    }


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own (its psycopg 3 URL), dropped at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    with fresh_postgres_database("liveblog_test") as url:
        yield url


class CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once for the whole run, not once per test's app; jinja2 still
    compares each template's source with what was compiled, so an edited one is compiled anew.
    """

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory) -> Path:
    """An SQLite file holding the empty schema, made once: each test gets a copy of it."""
    path = tmp_path_factory.mktemp("schema") / "schema.sqlite"
    app = create_app(app_config(f"sqlite:///{path}"))
    with app.app_context():
        db.create_all()
        db.engine.dispose()  # the last connection to close folds the WAL into the file
    return path


def _empty_postgres_tables() -> None:
    """What drop_all and create_all leave, at a tenth of the cost: the schema, every table
    empty and every id counting from 1 again."""
    db.create_all()  # checks first: makes only what is missing (a test may have dropped it)
    tables = [table.name for table in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as connection:
        sequences = connection.execute(
            sa.text("SELECT sequence_name FROM information_schema.sequences")
        ).scalars()
        restart = [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]
        connection.exec_driver_sql("; ".join([f'DELETE FROM "{t}"' for t in tables] + restart))


@pytest.fixture
def app(request, tmp_path) -> Iterator[Flask]:
    """The app on a fresh SQLite file; tests marked with `both_databases` also run on PostgreSQL."""
    marker = request.node.get_closest_marker("config")
    overrides = marker.kwargs if marker else {}
    if getattr(request, "param", "sqlite") == "postgresql":
        app = create_app(app_config(request.getfixturevalue("postgres_url"), **overrides))
        with app.app_context():
            _empty_postgres_tables()
    else:
        database = shutil.copy(request.getfixturevalue("sqlite_schema"), tmp_path / "test.sqlite")
        app = create_app(app_config(f"sqlite:///{database}", **overrides))
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("app", ["sqlite", "postgresql"], indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_databases: run the test on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "config(**settings): app settings for this test")
    config.addinivalue_line("markers", "browser: drives Chromium (everything under tests/e2e)")
    config.addinivalue_line("markers", "deploy: runs nginx or gunicorn")
    config.addinivalue_line("markers", "slow: starts server processes of its own, or takes seconds")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def editor(app: Flask) -> SimpleNamespace:
    """The editor alice (id and username; load the row inside an app context when needed)."""
    with app.app_context():
        editor = services.create_editor("alice", PASSWORD)
        return SimpleNamespace(id=editor.id, username=editor.username)


@pytest.fixture
def story(app: Flask) -> SimpleNamespace:
    """A live story at seq 0 (id and slug)."""
    with app.app_context():
        article = services.create_article("Election night", slug="election-night", body="Intro")
        return SimpleNamespace(id=article.id, slug=article.slug)


@pytest.fixture
def token(app: Flask, editor: Editor) -> str:
    with app.app_context():
        return tokens.issue(db.session.get(Editor, editor.id))


@pytest.fixture
def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def skip_unless_ci(reason: str) -> None:
    """Skip, saying why, where a tool is truly absent; in CI its absence is a failure."""
    print(reason)
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it (.ci/run)")
    pytest.skip(reason)


LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def local_redis(url: str = LOCAL_REDIS) -> redis.Redis:
    """A connection to the Redis server the tests use, or a skip saying it is not running
    (a failure in CI, which starts it)."""
    connection = redis.Redis.from_url(url)
    try:
        connection.ping()
    except redis.RedisError:
        skip_unless_ci("Redis is not running on 127.0.0.1:6379")
    return connection


@pytest.fixture
def socketio_left_as_found() -> Iterator[None]:
    """Flask-SocketIO keeps one set of options per process, and an app made with REDIS_URL
    leaves its message queue in them: the apps of later tests would get it too."""
    saved = dict(socketio.server_options)
    yield
    socketio.server_options.clear()
    socketio.server_options.update(saved)


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token from a form page, as a browser would read it."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no csrf_token on {url}"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str, address: str = "203.0.113.5"):
    """The sign-in form sent as a browser at `address` sends it, CSRF token and all."""
    token = csrf_token(client, "/editor/login")
    return client.post(
        "/editor/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def sign_in_admin(app: Flask, client: FlaskClient) -> str:
    """The admin root, made and signed in on `client`; a CSRF token of its session."""
    with app.app_context():
        services.create_editor("root", PASSWORD, admin=True)
    sign_in(client, "root", PASSWORD, address="127.0.0.1")
    return csrf_token(client, "/editor/editors")


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, username: str = "alice", password: str = PASSWORD):
        return sign_in(self.client, username, password, address="127.0.0.1")


@pytest.fixture
def auth(client: FlaskClient, editor: Editor) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def socket_client(app: Flask, client: FlaskClient):
    """A Socket.IO test client sharing the HTTP client's cookies (and so its login)."""
    sio = socketio.test_client(app, flask_test_client=client)
    yield sio
    if sio.is_connected():
        sio.disconnect()


@pytest.fixture
def live_server(tmp_path):
    """A real server (python app.py, gevent) on SQLite, with an editor and an API token.

    Yields (server, token). Tests that need more servers use tests.liveserver directly.
    """
    from tests.liveserver import live_server_on_sqlite

    with live_server_on_sqlite(tmp_path) as running:
        yield running
