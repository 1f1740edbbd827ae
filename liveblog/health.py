"""Probes for load balancers and orchestrators: /healthz (alive) and /readyz (can serve)."""

from __future__ import annotations

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from .extensions import db

bp = Blueprint("health", __name__)
PROBE_TIMEOUT = 2.0  # seconds; a probe that hangs is as bad as one that fails
PROBE_CLIENTS = "liveblog_probe_redis"


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers, through the same WSGI stack as the pages."""
    return Response("ok", mimetype="text/plain", headers={"Cache-Control": "no-store"})


@bp.get("/readyz")
def readyz() -> Response:
    """200 when the database and Redis (when configured) answer; 503 says which does not."""
    problems = [problem for problem in (_database_problem(), _redis_problem()) if problem]
    body = "\n".join(problems) if problems else "ready"
    return Response(
        body,
        status=503 if problems else 200,
        mimetype="text/plain",
        headers={"Cache-Control": "no-store"},
    )


def _database_problem() -> str | None:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.SQLAlchemyError as error:
        current_app.logger.warning("readiness: database unavailable: %s", error.__class__.__name__)
        return f"database unavailable ({error.__class__.__name__})"
    finally:
        db.session.rollback()


def _redis_problem() -> str | None:
    url = current_app.config["REDIS_URL"]
    if not url:
        return None
    try:
        _probe_client(url).ping()
        return None
    except redis.RedisError as error:
        current_app.logger.warning("readiness: Redis unavailable: %s", error.__class__.__name__)
        return f"redis unavailable ({error.__class__.__name__})"


def _probe_client(url: str) -> redis.Redis:
    """One client per app, kept: a probe every few seconds from each load balancer must not
    cost Redis a new connection each. Made on the first probe, when REDIS_URL is final."""
    clients = current_app.extensions.setdefault(PROBE_CLIENTS, {})
    if url not in clients:  # no I/O until the first command, so no switch in between
        clients[url] = redis.Redis.from_url(
            url,
            socket_timeout=PROBE_TIMEOUT,
            socket_connect_timeout=PROBE_TIMEOUT,
            # Once, at once: the kept connection may have been dropped since the last probe
            # (Redis restarted), and a probe must answer within a few seconds, not retry on.
            retry=Retry(NoBackoff(), 1),
        )
    return clients[url]
