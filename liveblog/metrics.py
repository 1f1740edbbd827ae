"""Prometheus metrics of this process, at /metrics when METRICS_ENABLED=1 (404 otherwise).

Each server process counts its own readers and deliveries; scrape every process directly,
not through the load balancer (README, "Scraping metrics"). Counters and histograms are
updated where things happen; the gauges of the live state (subscriptions per story, queued
packets) are read from the Socket.IO server when scraped, so nothing is kept twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

bp = Blueprint("metrics", __name__)

CONNECTED = Gauge("liveblog_connections", "Socket.IO (Engine.IO) connections open now")
CHANGES_DELIVERED = Counter(
    "liveblog_changes_delivered_total", "Changes emitted to a story's room in this process"
)
DELIVERIES = Counter(
    "liveblog_change_deliveries_total", "Changes emitted, counted once per reader in the room"
)
POST_TO_BROADCAST = Histogram(
    "liveblog_post_to_broadcast_seconds",
    "From a write request reaching the application to its changes handed to the readers",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def changes_delivered(change: dict[str, Any]) -> None:
    """Count one change emitted to its story's room here (called by the relay)."""
    CHANGES_DELIVERED.inc()
    DELIVERIES.inc(_room_size(f"article:{change['article']}"))


def observe_post_to_broadcast(changes: list[dict[str, Any]]) -> None:
    """Record how long the current write request took to hand its changes to the readers."""
    from .logs import STARTED

    if changes and has_request_context() and STARTED in request.environ:
        POST_TO_BROADCAST.observe(time.perf_counter() - request.environ[STARTED])


def _rooms() -> dict[str, dict[str, Any]]:
    from .extensions import socketio

    server = socketio.server
    return server.manager.rooms.get("/", {}) if server is not None else {}


def _room_size(name: str) -> int:
    return len(_rooms().get(name, ()))


class LiveState(Collector):
    """Subscriptions per story and the packets waiting in each connection's queue."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from .extensions import socketio

        subscriptions = GaugeMetricFamily(
            "liveblog_subscriptions", "Connections following each story here", labels=["story"]
        )
        for name, members in list(_rooms().items()):
            if name and name.startswith("article:"):
                subscriptions.add_metric([name.removeprefix("article:")], len(members))
        yield subscriptions
        server = socketio.server
        sockets = list(server.eio.sockets.values()) if server is not None else []
        depths = [socket.queue.qsize() for socket in sockets]
        yield GaugeMetricFamily(
            "liveblog_queued_packets", "Packets waiting to be sent, all connections", sum(depths)
        )
        yield GaugeMetricFamily(
            "liveblog_queued_packets_max", "Packets waiting on the most behind connection",
            max(depths, default=0),
        )  # fmt: skip


REGISTRY.register(LiveState())


@bp.get("/metrics")
def scrape() -> Response:
    if not current_app.config["METRICS_ENABLED"]:
        abort(404)
    return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
