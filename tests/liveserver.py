"""A real liveblog server process on a free port, as `python app.py` runs it (gevent)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from liveblog import create_app, services, tokens
from liveblog.extensions import db

ROOT = Path(__file__).resolve().parent.parent
EDITOR = "reporter"
PASSWORD = "live server password"


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the test run dies, so no server outlives its run."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """The first truthy value `predicate` gives within `timeout` seconds, or an assertion error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_database(database_url: str) -> str:
    """Create the schema and an editor on `database_url`; returns that editor's API token."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        editor = services.create_editor(EDITOR, PASSWORD)
        token = tokens.issue(editor)
        db.session.remove()
        db.engine.dispose()
    return token


class LiveServer:
    """Start with `start()`, stop with `stop()`; `url` is where it listens."""

    command: tuple[str, ...] = (sys.executable, str(ROOT / "app.py"))

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = log_path
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "live-server-secret",
            "RATELIMIT_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> LiveServer:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/api/articles", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Api:
    """A server's JSON API as an editor's script uses it, with a token; asserts each status."""

    def __init__(self, server_url: str, token: str) -> None:
        self.url = server_url + "/api"
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = requests.request(
            method, self.url + path, headers=self.headers, timeout=20, **kwargs
        )
        assert response.status_code == expect, (method, path, response.text)
        return response.json() if response.content else None

    def create_story(self, title: str, slug: str) -> dict[str, Any]:
        story = self.request("POST", "/articles", 201, json={"title": title, "slug": slug})
        assert story["seq"] == 0
        return story

    def new_story(self, title: str = "Live story") -> str:
        """A story with a slug unique even across test runs sharing one Redis."""
        return self.create_story(title, f"story-{uuid.uuid4().hex[:12]}")["slug"]

    def story(self, slug: str) -> dict[str, Any]:
        return self.request("GET", f"/articles/{slug}", 200)

    def post(self, slug: str, body: str, **fields: Any) -> dict[str, Any]:
        return self.request("POST", f"/articles/{slug}/updates", 201, json={"body": body, **fields})

    def edit(self, slug: str, update_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/articles/{slug}/updates/{update_id}", 200, json=fields)

    def delete(self, slug: str, update_id: int) -> None:
        self.request("DELETE", f"/articles/{slug}/updates/{update_id}", 204)

    def changes(self, slug: str, since: int = 0) -> dict[str, Any]:
        return self.request("GET", f"/articles/{slug}/changes?since={since}", 200)
