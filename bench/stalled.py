"""`python -m bench.stalled`: the memory that readers who stop reading cost the server.

Five readers subscribe and then never read again, answering nothing but a bare pong every
10 s (what the hostile review did); an editor posts a large update (about 40 KB on the wire)
ten times a second for a minute. Prints the server's resident memory as it goes, and
whether each stalled reader was still connected at the end.
"""

from __future__ import annotations

import argparse
import time

from bench.server import scratch_server
from tests.rawreader import RawReader, rss_kib


def big_body(n: int) -> str:
    return f"Update {n}. " + "A long paragraph of a large update. " * 540


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stalled", description=__doc__)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between posts")
    args = parser.parse_args(argv)
    with scratch_server("stalled") as (server, api, slug):
        stalled = [RawReader(server.url) for _ in range(args.readers)]
        for raw in stalled:
            raw.subscribe(slug, since=0)
        start = time.monotonic()
        before = peak = rss_kib(server.pid)
        print(f"RSS {before / 1024:.0f} MiB with {args.readers} stalled readers subscribed")
        posts, next_pong, next_print = 0, start + 10, start + 10
        while time.monotonic() - start < args.seconds:
            api.post(slug, big_body(posts))
            posts += 1
            peak = max(peak, rss_kib(server.pid))
            now = time.monotonic()
            if now >= next_pong:
                for raw in stalled:
                    raw.pong()
                next_pong = now + 10
            if now >= next_print:
                print(f"  {now - start:4.0f} s: {posts} posts, RSS {peak / 1024:.0f} MiB")
                next_print = now + 10
            time.sleep(max(0.0, start + posts * args.interval - time.monotonic()))
        after = rss_kib(server.pid)
        dropped = sum(raw.drain(timeout=2) for raw in stalled)
        print(
            f"after {posts} posts: RSS {after / 1024:.0f} MiB (peak {peak / 1024:.0f} MiB,"
            f" {(peak - before) / 1024:.0f} MiB above the start);"
            f" {dropped} of {args.readers} stalled readers were dropped"
        )
        for raw in stalled:
            raw.close()


if __name__ == "__main__":
    main()
