"""Fan-out against the peer: one story, N readers, a few updates; liveblog and Node side by side.

A round: start a server pinned to one core, connect N readers from several processes pinned
to the other core, each subscribing to the story; read the server's memory; post updates one
`interval` apart through the JSON API; collect when every reader's socket had each one.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.crowd import CrowdProcess, Receipts
from bench.server import SLUG, serving_many
from bench.stats import ms, percentile, table

SETTLE = 2.0  # seconds for the coalesced `readers` counts and freed memory to settle
READERS_PER_PROCESS = 2500  # one asyncio process of more readers becomes the bottleneck
NAMES = {"gevent-websocket": "liveblog", "peer": "node"}
QUIET = "bench-quiet"  # a second story, with no readers


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    server: str  # "liveblog" or "node"
    readers: int
    connected: int = 0
    failed: int = 0
    subscribe_seconds: float = 0.0  # until the last reader had its subscribe ack
    connect_cpu: float = 0.0  # server CPU seconds while they connected
    rss_before_kib: int = 0
    rss_connected_kib: int = 0
    posts: int = 0
    delays: list[float] = field(default_factory=list)  # one per delivery (update, reader)
    post_seconds: list[float] = field(default_factory=list)
    quiet_post_seconds: list[float] = field(default_factory=list)  # to a story nobody reads
    update_cpu: float = 0.0  # server CPU seconds from the first POST to the last receipt

    @property
    def expected(self) -> int:
        return self.connected * self.posts

    @property
    def kib_per_reader(self) -> float:
        return (self.rss_connected_kib - self.rss_before_kib) / max(self.connected, 1)

    @property
    def cpu_per_delivery(self) -> float:
        return self.update_cpu / max(len(self.delays), 1)

    def p(self, rank: float) -> float:
        return percentile(self.delays, rank)


def _crowds(
    urls: list[str], readers: int, posts: int, cpus: str | None, connects: int
) -> list[CrowdProcess]:
    """Reader processes, spread over the servers in turn."""
    processes = max(2, math.ceil(readers / READERS_PER_PROCESS)) if readers >= 100 else 1
    processes = max(processes, len(urls))
    shares = [readers // processes + (i < readers % processes) for i in range(processes)]
    # Each reader subscribes as a page just loaded does: from the story's seq (the warm-up
    # posted one update), with permessage-deflate offered as browsers offer it.
    return [
        CrowdProcess(urls[i % len(urls)], SLUG, share, posts, True, connects, cpus=cpus, since=1)
        for i, share in enumerate(shares)
    ]


def measure_round(
    workdir: Path,
    mode: str,
    readers: int,
    posts: int,
    interval: float,
    server_cpus: str | None,
    reader_cpus: str | None,
    processes: int = 1,
    connects: int = 64,
) -> Round:
    """One round; with `processes` > 1, that many servers behind Redis share the readers
    (memory and CPU are then the sums over them). `connects`: connects in flight per reader
    process, so a crowd arrives at that many times the processes at once."""
    result = Round(server=NAMES[mode], readers=readers, posts=posts)
    with serving_many(mode, workdir, True, server_cpus, reader_cpus, processes) as (
        servers,
        editor,
    ):

        def rss() -> int:
            return sum(server.rss_kib() for server in servers)

        def cpu() -> float:
            return sum(cpu_seconds(server.pid) for server in servers)

        time.sleep(SETTLE)
        result.rss_before_kib = rss()
        cpu_before = cpu()
        urls = [server.url for server in servers]
        crowds = _crowds(urls, readers, posts, reader_cpus, connects)
        try:
            for crowd in crowds:
                ready = crowd.ready(timeout=120 + readers * 0.01)
                result.connected += ready["connected"]
                result.failed += ready["failed"]
                # The processes start together: the slowest one's time is the crowd's.
                result.subscribe_seconds = max(result.subscribe_seconds, ready["connect_seconds"])
            result.connect_cpu = cpu() - cpu_before
            time.sleep(SETTLE)
            result.rss_connected_kib = rss()
            cpu_before = cpu()
            sent: dict[int, float] = {}
            editor.create_story(QUIET)
            start = time.monotonic()
            for n in range(1, posts + 1):
                update_id, sent_at, took = editor.post(SLUG, n)
                sent[update_id] = sent_at
                result.post_seconds.append(took)
                # Half an interval later, the same POST to a story nobody reads: what the
                # audience costs the editor. (Straight after another request it would wait
                # for that request's fan-out, which is not the editor's own.)
                time.sleep(max(0.0, start + (n - 0.5) * interval - time.monotonic()))
                result.quiet_post_seconds.append(editor.post(QUIET, n)[2])
                time.sleep(max(0.0, start + n * interval - time.monotonic()))
            receipts = [crowd.receipts(timeout=150)[0] for crowd in crowds]
            result.update_cpu = cpu() - cpu_before
        finally:
            for crowd in crowds:
                crowd.close()
    result.delays = _delays(receipts, sent)
    return result


def _delays(receipts: list[Receipts], sent: dict[int, float]) -> list[float]:
    return [
        delay
        for crowd in receipts
        for update_id, sent_at in sent.items()
        for delay in crowd.delays(update_id, sent_at)
    ]


def _ratio(ours: float, theirs: float) -> str:
    if math.isnan(ours) or math.isnan(theirs) or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}"


def _rows(ours: Round, peer: Round) -> list[list[str]]:
    def row(name: str, a: float, b: float, show) -> list[str]:
        return [str(ours.readers), name, show(a), show(b), _ratio(a, b)]

    def count(value: float) -> str:
        return f"{value:.0f}"

    return [
        row("post to receipt p50", ours.p(50), peer.p(50), ms),
        row("post to receipt p99", ours.p(99), peer.p(99), ms),
        row("post to receipt max", ours.p(100), peer.p(100), ms),
        [
            str(ours.readers),
            "deliveries made / expected",
            f"{len(ours.delays)}/{ours.expected}",
            f"{len(peer.delays)}/{peer.expected}",
            "",
        ],
        row("readers that could not connect", ours.failed, peer.failed, count),
        row("all subscribed after", ours.subscribe_seconds, peer.subscribe_seconds,
            lambda s: f"{s:.1f} s"),
        row("memory per reader", ours.kib_per_reader, peer.kib_per_reader,
            lambda k: f"{k:.1f} KiB"),
        row("server CPU per delivery", ours.cpu_per_delivery * 1e6, peer.cpu_per_delivery * 1e6,
            lambda us: f"{us:.1f} µs"),
        row("server CPU, all connecting", ours.connect_cpu, peer.connect_cpu,
            lambda s: f"{s:.1f} s"),
        row("editor's POST p50", percentile(ours.post_seconds, 50),
            percentile(peer.post_seconds, 50), ms),
        row("... to a story nobody reads", percentile(ours.quiet_post_seconds, 50),
            percentile(peer.quiet_post_seconds, 50), ms),
    ]  # fmt: skip


HEADER = ["readers", "", "liveblog", "node socket.io", "ratio"]


def report(pairs: list[tuple[Round, Round]]) -> str:
    rows = [row for ours, peer in pairs for row in _rows(ours, peer)]
    return table(HEADER, rows)


def plot(pairs: list[tuple[Round, Round]], path: Path, title: str) -> None:
    """p99 post-to-receipt against readers, both servers, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=110)
    sizes = [ours.readers for ours, _peer in pairs]
    for index, label in ((0, "liveblog (Python, gevent)"), (1, "node socket.io")):
        p99 = [pair[index].p(99) * 1000 for pair in pairs]
        p50 = [pair[index].p(50) * 1000 for pair in pairs]
        line = axes.plot(sizes, p99, marker="o", label=f"{label} p99")[0]
        axes.plot(sizes, p50, marker=".", linestyle=":", color=line.get_color(),
                  label=f"{label} p50")  # fmt: skip
    axes.set_xlabel("readers subscribed to one story (one server process)")
    axes.set_ylabel("post to receipt (ms)")
    axes.set_title(title, fontsize=9)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
