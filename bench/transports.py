"""`python -m bench.transports`: latency, then idle readers per WebSocket implementation.

Everything runs on this machine against 127.0.0.1: each server in its own process on a fresh
SQLite file, the readers in another (bench.readers), this process posting as the editor.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import tempfile
from pathlib import Path

from bench.latency import measure_latency
from bench.modes import measure_mode, report
from bench.server import MODES as ALL_MODES

# The two ways of serving liveblog itself (the Node peer is compared in `python -m bench`).
MODES = {name: command for name, command in ALL_MODES.items() if name != "peer"}
QUICK = {"readers": 50, "posts": 10, "idle_readers": 300}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__)
    parser.add_argument("--readers", type=int, default=200, help="readers for the latency run")
    parser.add_argument("--posts", type=int, default=50, help="updates posted in the latency run")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between posts")
    parser.add_argument(
        "--latency-mode", choices=sorted(MODES), default="gevent-websocket",
        help="server for the latency run (default: as app.py serves)",
    )  # fmt: skip
    parser.add_argument(
        "--idle-readers", type=int, default=2000, help="idle readers per mode (try 5000)"
    )
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument(
        "--deflate", choices=["both", "on", "off"], default="both",
        help="whether readers offer permessage-deflate, as browsers do (on) or as python-socketio"
        " does not (off); both: each mode twice. The latency run offers it unless off.",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true",
        help="a small run of everything, about a minute: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in QUICK.items()),
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each idle-reader case this many times"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-modes", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    for name in ("readers", "posts", "idle_readers"):
        if not 1 <= getattr(args, name) <= 20_000:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 20000")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be between 1 and 10")
    if not 0 <= args.interval <= 10:
        parser.error("--interval must be between 0 and 10 seconds")
    return args


def raise_open_files_limit() -> int:
    """Servers started from here inherit it: each reader is a socket (simple-websocket: two)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def load_average() -> str:
    """Other work on the two cores skews every figure; this shows whether there was any."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    open_files = raise_open_files_limit()
    deflate = args.deflate != "off"
    variants = {"both": [True, False], "on": [True], "off": [False]}[args.deflate]
    print(
        f"liveblog bench, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z},"
        f" {os.cpu_count()} cores, Python {platform.python_version()},"
        f" open files limit {open_files}, load average {load_average()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="liveblog-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_latency:
            result = measure_latency(
                workdir, args.latency_mode, args.readers, args.posts, args.interval, deflate
            )
            print("\n" + result.report(), flush=True)
        if not args.skip_modes:
            results = []
            for _ in range(args.repeat):
                for mode in args.modes:
                    for offer in variants:
                        results.append(measure_mode(workdir, mode, args.idle_readers, offer))
                        print(f"  ({mode}, deflate offered: {offer}: done)", flush=True)
            print("\n" + report(results), flush=True)
    print(f"\nload average at the end: {load_average()} (over 1, 5, 15 minutes)")


if __name__ == "__main__":
    main()
