"""The benchmark's side of a reader crowd (bench.readers) and of the editor posting updates."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from tests.liveserver import ROOT


@dataclass
class Receipts:
    """Times (time.time()) by update id, one per reader that received it.

    `arrived`: the kernel's receive stamp on the reader's socket. `handled`: when the reader
    process got round to it, later by however long it spent on the readers before it.
    """

    arrived: dict[int, list[float]]
    handled: dict[int, list[float]]

    def delays(self, update_id: int, sent_at: float, handled: bool = False) -> list[float]:
        times = (self.handled if handled else self.arrived).get(update_id, [])
        return [received - sent_at for received in times]


def _by_id(times: dict[str, list[float]]) -> dict[int, list[float]]:
    return {int(update_id): values for update_id, values in times.items()}


class CrowdProcess:
    """`python -m bench.readers` in a process of its own; its JSON lines arrive on a queue."""

    def __init__(
        self,
        url: str,
        slug: str,
        count: int,
        expect: int,
        deflate: bool,
        concurrency: int = 64,
        cpus: str | None = None,
        since: int | None = None,
    ) -> None:
        # `cpus`: a taskset CPU list, so the readers do not compete with the server's core.
        pinned = ["taskset", "-c", cpus] if cpus else []
        command = [
            *pinned, sys.executable, "-m", "bench.readers", "--url", url, "--slug", slug,
            "--count", str(count), "--expect", str(expect), "--concurrency", str(concurrency),
        ]  # fmt: skip
        if deflate:
            command.append("--deflate")
        if since is not None:
            command += ["--since", str(since)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.reading = threading.Thread(target=self._read, daemon=True)
        self.reading.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)  # the process has ended

    def wait_for(self, key: str, timeout: float) -> dict[str, Any]:
        """The next message carrying `key`; raises if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"readers sent no {key!r} within {timeout:.0f} s")
            try:
                message = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if message is None:
                raise RuntimeError(f"the reader process ended before {key!r}")
            if key in message:
                return message

    def ready(self, timeout: float) -> dict[str, Any]:
        message = self.wait_for("ready", timeout)
        if message["failed"]:
            print(f"  {message['failed']} readers failed to connect: {message['errors']}")
        return message

    def receipts(self, timeout: float) -> tuple[Receipts, dict[str, Any]]:
        """Receipt times, and the rest of the message (unfinished, unstamped, cpu_seconds)."""
        message = self.wait_for("receipts", timeout)
        receipts = message.pop("receipts")
        return Receipts(_by_id(receipts["arrived"]), _by_id(receipts["handled"])), message

    def close(self, timeout: float = 30.0) -> None:
        """Disconnect every reader and end the process (killed if it does not end in time)."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("close\n")
                self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.reading.join(10)  # it ends at the end of the process's output
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


class Editor:
    """Posts updates through the JSON API, keeping one HTTP connection open as a client would."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def create_story(self, slug: str) -> None:
        response = self.http.post(
            f"{self.url}/api/articles", json={"title": "Benchmark story", "slug": slug}, timeout=30
        )
        response.raise_for_status()

    def post(self, slug: str, n: int) -> tuple[int, float, float]:
        """Post update `n`: its id, the time just before sending, and the response time."""
        body = {"body": f"Benchmark update **{n}**: a short paragraph, as most updates are."}
        sent = time.time()
        response = self.http.post(f"{self.url}/api/articles/{slug}/updates", json=body, timeout=60)
        answered = time.time()
        response.raise_for_status()
        return response.json()["id"], sent, answered - sent

    def close(self) -> None:
        self.http.close()
