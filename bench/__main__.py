"""`python -m bench`: liveblog against the Node socket.io peer, one story, many readers.

For each size, a round with liveblog (`python app.py`) and a round with the peer
(bench/peer, Node.js and the socket.io package), the server pinned to one core and the
reader processes to the other. Prints the table and draws p99 against readers into bench/.
The earlier per-transport measurements are `python -m bench.transports`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import tempfile
from pathlib import Path

from bench.fanout import Round, measure_round, plot, report
from bench.transports import load_average, raise_open_files_limit

SIZES = [1000, 5000, 10_000, 15_000]
QUICK_SIZES = [1000, 5000]
PLOT = Path(__file__).resolve().parent / "fanout.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="readers per round")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} only")
    parser.add_argument("--posts", type=int, default=5, help="updates per round")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between posts")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="rounds per size and server, alternating; the round with the median p99 is shown",
    )  # fmt: skip
    parser.add_argument("--servers", nargs="+", choices=["liveblog", "node"],
                        default=["liveblog", "node"])  # fmt: skip
    parser.add_argument(
        "--processes", type=int, default=1,
        help="liveblog server processes behind Redis sharing the readers (the peer stays one)",
    )  # fmt: skip
    parser.add_argument(
        "--connects", type=int, default=64,
        help="connects in flight per reader process (a crowd arriving at once: try 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--no-pin", action="store_true",
        help="servers and readers share every core (several servers need more than one)",
    )  # fmt: skip
    parser.add_argument("--plot", type=Path, default=PLOT, help="where the PNG goes")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = QUICK_SIZES
    if not all(1 <= size <= 40_000 for size in args.sizes):
        parser.error("--sizes must be between 1 and 40000")
    if not 1 <= args.processes <= 4:
        parser.error("--processes must be between 1 and 4")
    if not 1 <= args.posts <= 100 or not 0 <= args.interval <= 10:
        parser.error("--posts 1..100, --interval 0..10 s")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be between 1 and 10")
    return args


def pinning() -> tuple[str | None, str | None]:
    """Server on CPU 0, readers on the rest: neither takes the other's core."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return None, None
    return "0", f"1-{os.cpu_count() - 1}"


def median_round(rounds: list[Round]) -> Round:
    by_p99 = sorted(rounds, key=lambda r: r.p(99))
    return by_p99[len(by_p99) // 2]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    open_files = raise_open_files_limit()
    server_cpus, reader_cpus = (None, None) if args.no_pin else pinning()
    started = datetime.datetime.now().astimezone()
    print(
        f"liveblog bench against node socket.io, {started:%Y-%m-%d %H:%M %Z},"
        f" {os.cpu_count()} cores, Python {platform.python_version()}, open files {open_files},"
        f" server on CPU {server_cpus}, readers on CPU {reader_cpus},"
        f" {args.posts} posts {args.interval:g} s apart, liveblog processes {args.processes},"
        f" load average {load_average()}",
        flush=True,
    )
    modes = {"liveblog": "gevent-websocket", "node": "peer"}
    pairs: list[tuple[Round, Round]] = []
    with tempfile.TemporaryDirectory(prefix="liveblog-bench-") as tmp:
        for size in args.sizes:
            rounds: dict[str, list[Round]] = {name: [] for name in modes}
            for _ in range(args.repeat):
                for name in args.servers:
                    processes = args.processes if name == "liveblog" else 1
                    result = measure_round(
                        Path(tmp), modes[name], size, args.posts, args.interval,
                        server_cpus, reader_cpus, processes, args.connects,
                    )  # fmt: skip
                    rounds[name].append(result)
                    print(
                        f"  {name} {size}: p99 {result.p(99) * 1000:.0f} ms,"
                        f" {len(result.delays)}/{result.expected} delivered,"
                        f" subscribed in {result.subscribe_seconds:.1f} s",
                        flush=True,
                    )
            empty = Round(server="-", readers=size)
            pairs.append(
                tuple(median_round(rounds[name]) if rounds[name] else empty for name in modes)
            )
    print("\n" + report(pairs), flush=True)
    if not args.no_plot and len(args.servers) == 2:
        title = f"{args.posts} updates to one story, {started:%Y-%m-%d}, {os.cpu_count()} cores"
        plot(pairs, args.plot, title)
        print(f"\nplot: {args.plot}")
    elapsed = datetime.datetime.now().astimezone() - started
    print(f"took {elapsed.total_seconds():.0f} s; load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
