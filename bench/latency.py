"""Measurement 1: from just before an update is POSTed to each reader's `change` event."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.crowd import CrowdProcess
from bench.server import SLUG, serving
from bench.stats import summary


@dataclass
class LatencyResult:
    mode: str
    deflate: bool
    readers: int
    connected: int
    posts: int
    interval: float
    connect_seconds: float
    arrived: list[float]  # per delivery (update, reader): socket receive time minus send time
    handled: list[float]  # the same, to when the reader process handled it
    last_arrived: list[float]  # per update: until the last reader's socket had it
    post_seconds: list[float]  # each POST's response time
    unstamped: int

    def report(self) -> str:
        expected = self.connected * self.posts
        lines = [
            f"Post-to-receipt latency ({self.mode}; {self.connected}/{self.readers} readers"
            f" connected in {self.connect_seconds:.1f} s, deflate offered: {self.deflate};"
            f" {self.posts} posts, one every {self.interval * 1000:.0f} ms)",
            f"  deliveries             {len(self.arrived)} of {expected}"
            f" ({expected - len(self.arrived)} missing)",
            f"  post to receipt        {summary(self.arrived)}",
            f"  ... last reader        {summary(self.last_arrived)}  (per update)",
            f"  ... reader handled it  {summary(self.handled)}  (one process for all readers)",
            f"  POST response          {summary(self.post_seconds)}",
        ]
        if self.unstamped:
            lines.append(f"  ({self.unstamped} reads had no kernel stamp: timed when handled)")
        return "\n".join(lines)


def measure_latency(
    workdir: Path, mode: str, readers: int, posts: int, interval: float, deflate: bool
) -> LatencyResult:
    with serving(mode, workdir, deflate) as (server, editor):
        crowd = CrowdProcess(server.url, SLUG, readers, expect=posts, deflate=deflate)
        try:
            ready = crowd.ready(timeout=60 + readers * 0.1)
            sent: dict[int, float] = {}
            post_seconds = []
            start = time.monotonic()
            for n in range(1, posts + 1):
                update_id, sent_at, took = editor.post(SLUG, n)
                sent[update_id] = sent_at
                post_seconds.append(took)
                # Spaced by the clock, so a slow POST does not push the later ones back.
                time.sleep(max(0.0, start + n * interval - time.monotonic()))
            receipts, done = crowd.receipts(timeout=60 + posts * interval)
        finally:
            crowd.close()
    arrived, handled, last_arrived = [], [], []
    for update_id, sent_at in sent.items():
        delays = receipts.delays(update_id, sent_at)
        arrived += delays
        handled += receipts.delays(update_id, sent_at, handled=True)
        if delays:
            last_arrived.append(max(delays))
    return LatencyResult(
        mode=mode,
        deflate=deflate,
        readers=readers,
        connected=ready["connected"],
        posts=posts,
        interval=interval,
        connect_seconds=ready["connect_seconds"],
        arrived=arrived,
        handled=handled,
        last_arrived=last_arrived,
        post_seconds=post_seconds,
        unstamped=done["unstamped"],
    )
