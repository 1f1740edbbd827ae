"""liveblog: a live-update blog server. create_app() builds and wires the application."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, connections, logs, transport
from .extensions import csrf, db, limiter, login_manager, migrate, socketio


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    config.load(app, test_config)
    logs.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_middleware(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        _tune_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    from . import realtime  # handlers must exist before socketio.init_app
    from .presence import presence
    from .relay import relay

    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        message_queue=app.config["REDIS_URL"],
        channel=f"{app.config['REDIS_CHANNEL']}:socketio",
        # Readers only ever send a small `subscribe`; anything big is hostile.
        max_http_buffer_size=16 * 1024,
        # None: same origin only, so other sites cannot open sockets with a reader's cookies.
        cors_allowed_origins=None,
        # Events get their tasks from liveblog.connections, which bounds them per connection.
        async_handlers=False,
    )
    # Any frame counts against a WebSocket's allowance, pongs and junk too: twice the events'.
    transport.install(
        socketio.server.eio,
        app.config["MAX_QUEUED_BYTES"],
        frame_rate=2 * app.config["SOCKET_EVENTS_PER_SECOND"],
        frame_burst=2 * app.config["SOCKET_EVENTS_BURST"],
    )
    connections.init_app(app, socketio.server.eio)
    realtime.init_app(app)
    relay.init_app(app)
    presence.init_app(app)
    from . import media, scheduler

    media.init_app(app)
    scheduler.init_app(app)


def _tune_sqlite(engine: sa.Engine) -> None:
    """WAL lets pages be read while an update is written; foreign keys are off by default."""
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Waiting on another process's write blocks this process's event loop, so keep the
        # wait well under the 20-second ping timeout that would drop every reader.
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def register_blueprints(app: Flask) -> None:
    from . import api, editor, health, metrics, reader, tokens

    app.register_blueprint(reader.bp)
    app.register_blueprint(editor.bp)
    app.register_blueprint(tokens.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    csrf.exempt(api.bp)  # the API authenticates with bearer tokens, never with cookies


def register_errorhandlers(app: Flask) -> None:
    from . import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    from . import cli

    cli.init_app(app)


def register_middleware(app: Flask) -> None:
    """Around everything, Socket.IO included: its requests get logs, headers and addresses too."""
    from . import hosts, security

    hosts.init_app(app)  # innermost, so refusals are logged and get the security headers
    logs.init_middleware(app)
    security.init_app(app)
    if hops := app.config["TRUSTED_PROXIES"]:  # outermost, so every layer sees the client
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
