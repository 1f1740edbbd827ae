"""Publishes scheduled updates when their time comes, from a loop in each server process.

Nothing is kept in memory: the loop asks the database every `SCHEDULER_INTERVAL` seconds
for due updates and claims each one there (`services.publish_due`), so an update is
published once even with several processes running, and one scheduled before a restart is
published after it. The clock is a parameter, so tests can move time on.

The same loop deletes unused uploads past MEDIA_UNUSED_TTL (`services.clean_media`), at
most every MEDIA_CLEAN_INTERVAL seconds, as `flask media clean` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from . import services
from .extensions import db, socketio
from .models import utcnow

Clock = Callable[[], datetime]
KEY = "liveblog.scheduler"


class Scheduler:
    def __init__(self, app: Flask, clock: Clock = utcnow) -> None:
        self.app = app
        self.clock = clock
        self.started = False
        self.stopped = False
        self.next_clean: datetime | None = None  # the first round cleans

    def run_once(self) -> list[int]:
        """Publish what is due now; the ids of the updates this call published."""
        with self.app.app_context():
            try:
                return services.publish_due(self.clock())
            finally:
                db.session.remove()

    def clean_media(self) -> list[str]:
        """Delete the unused uploads past their time, once every MEDIA_CLEAN_INTERVAL
        seconds of the clock (0: never from here); the file names deleted."""
        every = self.app.config["MEDIA_CLEAN_INTERVAL"]
        now = self.clock()
        if not every or (self.next_clean is not None and now < self.next_clean):
            return []
        self.next_clean = now + timedelta(seconds=every)
        with self.app.app_context():
            try:
                return services.clean_media(now)
            finally:
                db.session.remove()

    def start(self) -> None:
        """Start the loop in the background, once per app."""
        if self.started:
            return
        self.started = True
        socketio.start_background_task(self._loop)

    def stop(self) -> None:
        self.stopped = True

    def _loop(self) -> None:
        interval = self.app.config["SCHEDULER_INTERVAL"]
        while not self.stopped:
            try:
                self.run_once()
            except Exception:
                # A database outage must not end the loop: the next round tries again.
                self.app.logger.exception("publishing scheduled updates failed")
            try:
                self.clean_media()
            except Exception:
                self.app.logger.exception("deleting unused uploads failed")
            socketio.sleep(interval)


def init_app(app: Flask) -> None:
    """Attach the scheduler; a serving process starts it with the first request it handles.

    The first request of any kind, a page or a reconnecting reader's socket (which never
    reaches Flask's own request hooks), so a restarted server publishes what fell due while
    it was down as soon as anyone is connected again. Commands (`flask db upgrade`, `flask
    demo`) handle no request and never start it; tests do so only when they set TESTING off
    or call `get(app).run_once()`. Call after `socketio.init_app`, whose middleware this wraps.
    """
    app.extensions[KEY] = Scheduler(app)
    if app.config["SCHEDULER_ENABLED"] and not app.testing:
        app.wsgi_app = _StartOnFirstRequest(app.wsgi_app, get(app))  # type: ignore[method-assign]


class _StartOnFirstRequest:
    def __init__(self, wsgi_app: Callable[..., Any], scheduler: Scheduler) -> None:
        self.wsgi_app = wsgi_app
        self.scheduler = scheduler

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.scheduler.started:
            self.scheduler.start()
        return self.wsgi_app(environ, start_response)


def get(app: Flask) -> Scheduler:
    return app.extensions[KEY]


def start(app: Flask) -> Scheduler:
    scheduler = get(app)
    scheduler.start()
    return scheduler
