"""`python -m bench.pages`: a long story's page against /healthz, and a crowd arriving at it.

On this machine, against 127.0.0.1: the server (`python app.py`, gevent) in its own process
on a fresh SQLite file holding a story of --updates updates; wrk (Debian's package) for
requests per second; this process for first bytes and sizes; the crowd in --processes
processes of bench.pages_crowd, each reader loading the page and then subscribing from the
seq it names, while this process posts an update every --post-every seconds. Figures from
one run on a shared machine are noisy: compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.crowd import Editor
from bench.server import ServerProcess
from liveblog import changes, create_app
from liveblog.extensions import db
from liveblog.models import Article, Update
from liveblog.models import Editor as EditorRow
from liveblog.rendering import excerpt, render_markdown
from tests.liveserver import ROOT, prepare_database

SLUG = "long-story"
WRK = shutil.which("wrk")
SMOKE = {"updates": 300, "readers": 40, "spread": 3.0, "processes": 2, "wrk_seconds": 2}


def seed(database_url: str, count: int) -> None:
    """A story of `count` published updates, rendered as the write path renders them, one
    a minute; every 25th a key event, the first pinned. Written in bulk (the write path
    would take minutes), with the story's seq at `count` as if each had been one change."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        editor = db.session.scalar(db.select(EditorRow))
        intro = render_markdown("Hours of coverage.")
        story = Article(slug=SLUG, title="A very long story", body="Hours of coverage.",
                        html=intro, excerpt=excerpt(intro))  # fmt: skip
        db.session.add(story)
        db.session.flush()
        start = datetime.now(UTC) - timedelta(minutes=count)
        for first in range(0, count, 1000):
            batch = []
            for n in range(first, min(first + 1000, count)):
                body = f"Update **{n}**: a short paragraph, as most updates are, [with a link](https://example.org/{n})."
                html = render_markdown(body)
                batch.append(Update(
                    article_id=story.id, author_id=editor.id, body=body, html=html,
                    excerpt=excerpt(html),
                    headline=f"Headline {n}" if n % 3 == 0 else None, key_event=n % 25 == 0,
                    pinned=n == 0, published_at=start + timedelta(minutes=n), seq=n + 1,
                ))  # fmt: skip
            db.session.add_all(batch)
            db.session.flush()
            for update in batch:
                update.element = changes.render_element(update)
        story.seq = count
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def wrk(url: str, seconds: int, connections: int) -> float:
    """Requests per second wrk measures over `seconds` with `connections` connections."""
    out = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed responses from {url}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def first_byte(server_url: str, path: str) -> tuple[float, bytes]:
    """Seconds from sending a GET to its first byte, and the body."""
    host, port = server_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.connect()  # the connection is not what is measured
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    first = response.read(1)
    seconds = time.perf_counter() - started
    body = first + response.read()
    connection.close()
    assert response.status == 200, response.status
    return seconds, body


def page_table(server: ServerProcess, editor: Editor, args: argparse.Namespace) -> dict:
    path = f"/articles/{SLUG}"
    cold, body = first_byte(server.url, path)  # the first request this process serves
    body = first_byte(server.url, path)[1]
    after_change = []
    for n in range(5):  # a change makes a new seq: the next request renders afresh
        editor.post(SLUG, n)
        after_change.append(first_byte(server.url, path)[0])
    warm = statistics.median(first_byte(server.url, path)[0] for _ in range(20))
    result = {
        "first_byte_cold_ms": cold * 1000,
        "first_byte_after_change_ms": statistics.median(after_change) * 1000,
        "first_byte_cached_ms": warm * 1000,
        "page_bytes": len(body),
        "page_gzip_bytes": len(gzip.compress(body)),
        "updates_on_page": len(re.findall(rb'<article class="update', body)),
    }
    if WRK:
        result["healthz_rps"] = wrk(f"{server.url}/healthz", args.wrk_seconds, args.connections)
        result["page_rps"] = wrk(f"{server.url}{path}", args.wrk_seconds, args.connections)
    return result


def crowd(server: ServerProcess, editor: Editor, args: argparse.Namespace) -> dict:
    """--readers arriving over --spread seconds from --processes processes."""
    start = time.time() + 2.0
    share = [args.readers // args.processes + (k < args.readers % args.processes)
             for k in range(args.processes)]  # fmt: skip
    processes = []
    for k, count in enumerate(share):
        if not count:
            continue
        command = [
            sys.executable, "-m", "bench.pages_crowd", "--url", server.url, "--slug", SLUG,
            "--count", str(count), "--start", str(start), "--spread", str(args.spread),
            "--offset", str(k * args.spread / max(args.readers, 1)),
        ]  # fmt: skip
        processes.append(
            subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        )
    posted: dict[int, float] = {}  # seq -> when its post was sent
    seq = editor.http.get(f"{server.url}/api/articles/{SLUG}", timeout=30).json()["seq"]
    while time.time() < start + args.spread:
        time.sleep(max(0.0, min(args.post_every, start + args.spread - time.time())))
        sent = time.time()
        editor.post(SLUG, len(posted))
        seq += 1
        posted[seq] = sent
    arrived = [json.loads(process.stdout.readline()) for process in processes]
    sent = time.time()
    editor.post(SLUG, len(posted))  # one more once every reader is in
    seq += 1
    posted[seq] = sent
    for process in processes:
        process.stdin.write(f"final {seq}\n")
        process.stdin.flush()
    done = [json.loads(process.stdout.readline()) for process in processes]
    for process in processes:
        process.wait(30)
    pages = sorted(t for report in arrived for t in report["page_seconds"])
    last = {}
    for report in done:
        for key, moment in report["last"].items():
            last[int(key)] = max(last.get(int(key), 0.0), moment)
    delays = {s: last[s] - posted[s] for s in posted if s in last}
    return {
        "readers": args.readers,
        "arrived": sum(report["arrived"] for report in arrived),
        "errors": [e for report in arrived for e in report["errors"]][:5],
        "complete": sum(report["done"] for report in done),
        "page_p50_ms": statistics.median(pages) * 1000 if pages else None,
        "page_p99_ms": pages[int(len(pages) * 0.99) - 1] * 1000 if pages else None,
        "page_max_ms": pages[-1] * 1000 if pages else None,
        "updates_posted": len(posted),
        "last_update_to_last_reader_ms": delays.get(seq, float("nan")) * 1000,
    }


def print_report(table: dict, crowd_result: dict | None, args: argparse.Namespace) -> None:
    print(f"\nStory page, {args.updates:,} updates (one run, shared machine: noisy)")
    print("| measure | value | target |\n| --- | --- | --- |")
    if "page_rps" in table:
        share = table["page_rps"] / table["healthz_rps"] * 100
        print(f"| /healthz (wrk, {args.connections} connections, {args.wrk_seconds} s) "
              f"| {table['healthz_rps']:,.0f} req/s | |")  # fmt: skip
        print(f"| story page (wrk, same) | {table['page_rps']:,.0f} req/s ({share:.0f}% of "
              "/healthz) | 50% or more |")  # fmt: skip
    else:
        print("| requests per second | wrk not found (apt-get install wrk) | |")
    print(f"| first byte, first request of the process | {table['first_byte_cold_ms']:.1f} ms "
          "| under 50 ms |")  # fmt: skip
    print(
        f"| first byte after a change (renders anew) | "
        f"{table['first_byte_after_change_ms']:.1f} ms | under 50 ms |"
    )
    print(f"| first byte, cached | {table['first_byte_cached_ms']:.1f} ms | |")
    size, packed = table["page_bytes"] / 1024, table["page_gzip_bytes"] / 1024
    print(f"| page size | {size:.1f} KB ({packed:.1f} KB gzipped), "
          f"{table['updates_on_page']} updates | under 100 KB |")  # fmt: skip
    if crowd_result:
        c = crowd_result
        print(f"\nCrowd: {c['readers']:,} readers arriving within {args.spread:.0f} s from "
              f"{args.processes} processes, each loading the page then subscribing; "
              f"{c['updates_posted']} updates posted meanwhile")  # fmt: skip
        print(f"| got the page and subscribed | {c['arrived']:,} of {c['readers']:,} |")
        print(f"| got every update posted | {c['complete']:,} of {c['readers']:,} |")
        print(f"| page load, median / 99th percentile / slowest | {c['page_p50_ms']:.0f} / "
              f"{c['page_p99_ms']:.0f} / {c['page_max_ms']:.0f} ms |")  # fmt: skip
        print(
            "| the update posted once all were in: post to the last of them | "
            f"{c['last_update_to_last_reader_ms']:.0f} ms |"
        )
        if c["errors"]:
            print(f"errors: {c['errors']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__)
    parser.add_argument("--updates", type=int, default=10_000, help="updates in the story")
    parser.add_argument("--readers", type=int, default=5_000, help="readers in the crowd")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds they arrive over")
    parser.add_argument("--processes", type=int, default=4, help="reader processes")
    parser.add_argument("--post-every", type=float, default=2.0, help="seconds between posts")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--skip-crowd", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a small run of everything: "
                        + ", ".join(f"{k} {v}" for k, v in SMOKE.items()))  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'pages.sqlite'}"
        token = prepare_database(url)
        seed(url, args.updates)
        server = ServerProcess("gevent-websocket", url, Path(scratch) / "server.log")
        server.env["MAX_CONNECTIONS_PER_ADDRESS"] = "0"  # the whole crowd is on 127.0.0.1
        server.start(60)
        editor = Editor(server.url, token)
        try:
            table = page_table(server, editor, args)
            crowd_result = None if args.skip_crowd else crowd(server, editor, args)
        finally:
            editor.close()
            server.stop()
    print_report(table, crowd_result, args)
    if args.json:
        print(json.dumps({"page": table, "crowd": crowd_result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
