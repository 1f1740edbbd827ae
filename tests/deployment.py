"""A server process run as `make serve` runs it: gunicorn with deploy/gunicorn.conf.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.liveserver import ROOT, _die_with_parent, free_port, wait_for

GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "--config", "deploy/gunicorn.conf.py"]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or its worker still starting
        return False


class Backend:
    """One server process, run as `make serve` runs it: gunicorn with deploy/gunicorn.conf.py."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> Backend:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                GUNICORN,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: master and worker together
                preexec_fn=_die_with_parent,
            )
        wait_for(lambda: self._exited() or answers(self.url + "/readyz"), what=f"{self.name}")
        return self

    def _exited(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log()[-3000:]}")
        return False

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines (LOG_FORMAT=json) written so far."""
        lines = (line for line in self.log().splitlines() if line.startswith("{"))
        return [json.loads(line) for line in lines]

    def has_socket(self, sid: str) -> bool:
        return any(record.get("sid") == sid for record in self.records())
