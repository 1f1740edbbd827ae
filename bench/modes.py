"""Measurement 2: memory, connect speed and one update's fan-out per WebSocket implementation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.crowd import CrowdProcess
from bench.server import SLUG, serving, websocket_handshake
from bench.stats import ms, percentile, table

SETTLE = 2.0  # seconds for the coalesced `readers` counts and freed memory to settle


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def deflate_answer(url: str) -> str:
    """'accepts' if the server agrees to permessage-deflate (wsproto does), else 'ignores'."""
    headers = websocket_handshake(url).lower()
    if not headers.startswith("http/1.1 101"):
        raise RuntimeError(f"WebSocket upgrade refused:\n{headers}")
    return "accepts" if "sec-websocket-extensions: permessage-deflate" in headers else "ignores"


@dataclass
class ModeResult:
    mode: str
    deflate: bool  # whether the readers offered permessage-deflate
    server_deflate: str  # the server's answer to such an offer: accepts or ignores
    readers: int
    connected: int
    rss_before: int  # KiB, after start and warm-up
    rss_connected: int
    rss_after_update: int
    connect_seconds: float
    connect_cpu: float  # server CPU seconds spent while they connected
    client_connect_cpu: float
    post_seconds: float
    fan_out: float  # from just before the POST until the last reader had the change
    fan_out_p50: float
    fan_out_handled: float  # the same, to when the reader process handled the last one
    fan_out_cpu: float  # server CPU seconds from the POST to the last receipt
    client_fan_out_cpu: float
    received: int

    @property
    def deflate_label(self) -> str:
        if not self.deflate:
            return "not offered"
        return "on" if self.server_deflate == "accepts" else "offered, ignored"

    @property
    def kib_per_reader(self) -> float:
        return (self.rss_connected - self.rss_before) / max(self.connected, 1)

    def row(self) -> list[str]:
        return [
            self.mode,
            self.deflate_label,
            f"{self.connected}/{self.readers}",
            f"{self.rss_before / 1024:.0f} MiB",
            f"{self.rss_connected / 1024:.0f} MiB",
            f"{self.kib_per_reader:.1f} KiB",
            f"{self.connect_seconds:.1f} s",
            ms(self.fan_out),
        ]

    def detail_row(self) -> list[str]:
        return [
            self.mode,
            self.deflate_label,
            f"{self.rss_after_update / 1024:.0f} MiB",
            f"{self.connected / max(self.connect_seconds, 1e-9):.0f}/s",
            f"{self.connect_cpu / max(self.connected, 1) * 1000:.2f} ms",
            f"{self.client_connect_cpu:.1f} s",
            ms(self.post_seconds),
            ms(self.fan_out_p50),
            ms(self.fan_out_handled),
            f"{self.received}",
            ms(self.fan_out_cpu),
            ms(self.client_fan_out_cpu),
        ]


HEADER = [
    "mode", "deflate", "readers", "RSS before", "RSS after", "per reader", "connect all",
    "fan-out (last reader)",
]  # fmt: skip
DETAIL_HEADER = [
    "mode", "deflate", "RSS after update", "connect rate", "server CPU per connect",
    "client CPU connecting", "POST", "fan-out p50", "last handled", "got it", "server CPU fan-out",
    "client CPU fan-out",
]  # fmt: skip


def report(results: list[ModeResult]) -> str:
    return "\n".join(
        [
            "Idle readers per async mode (RSS of the server process; after = all connected)",
            table(HEADER, [result.row() for result in results]),
            "",
            "Details (CPU from /proc for the server, process_time() for the reader process)",
            table(DETAIL_HEADER, [result.detail_row() for result in results]),
        ]
    )


def measure_mode(workdir: Path, mode: str, readers: int, deflate: bool) -> ModeResult:
    with serving(mode, workdir, deflate) as (server, editor):
        answer = deflate_answer(server.url)
        time.sleep(SETTLE)
        rss_before = server.rss_kib()
        cpu_before = cpu_seconds(server.pid)
        crowd = CrowdProcess(server.url, SLUG, readers, expect=1, deflate=deflate)
        try:
            ready = crowd.ready(timeout=60 + readers * 0.1)
            connect_cpu = cpu_seconds(server.pid) - cpu_before
            time.sleep(SETTLE)
            rss_connected = server.rss_kib()
            cpu_before = cpu_seconds(server.pid)
            update_id, sent_at, post_seconds = editor.post(SLUG, 1)
            receipts, done = crowd.receipts(timeout=120)
            fan_out_cpu = cpu_seconds(server.pid) - cpu_before
            time.sleep(SETTLE)
            rss_after_update = server.rss_kib()
        finally:
            crowd.close()
    times = receipts.delays(update_id, sent_at)
    handled = receipts.delays(update_id, sent_at, handled=True)
    return ModeResult(
        mode=mode,
        deflate=deflate,
        server_deflate=answer,
        readers=readers,
        connected=ready["connected"],
        rss_before=rss_before,
        rss_connected=rss_connected,
        rss_after_update=rss_after_update,
        connect_seconds=ready["connect_seconds"],
        connect_cpu=connect_cpu,
        client_connect_cpu=ready["cpu_seconds"],
        post_seconds=post_seconds,
        fan_out=max(times, default=float("nan")),
        fan_out_p50=percentile(times, 50),
        fan_out_handled=max(handled, default=float("nan")),
        fan_out_cpu=fan_out_cpu,
        client_fan_out_cpu=done["cpu_seconds"],
        received=len(times),
    )
