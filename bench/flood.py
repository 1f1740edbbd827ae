"""`python -m bench.flood`: what one connection sending events as fast as it can costs others.

One anonymous WebSocket sends `subscribe` events back to back (the hostile review sent 58,600
in 8 s); meanwhile a probe asks `/healthz` every 50 ms and an editor posts an update that a
reader on another connection is waiting for. Prints how long `/healthz` took during and after
the flood, how long the reader waited for the update, and whether the server closed the
flooding connection (and after how many events it had been sent).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time

import requests
from wsproto.events import TextMessage

from bench.server import scratch_server
from bench.stats import percentile
from tests.rawreader import RawReader

BATCH = 500  # events written with one sendall()


def flood(raw: RawReader, slug: str, events: int, sent: list[int]) -> None:
    """Send `events` subscribes as fast as the socket takes them; stop when the server hangs up."""
    frame = raw.ws.send(TextMessage(data="42" + json.dumps(["subscribe", {"article": slug}])))
    while sent[0] < events:
        count = min(BATCH, events - sent[0])
        try:
            raw.sock.sendall(frame * count)
        except OSError:
            return  # closed by the server
        sent[0] += count


def probe(url: str, until: threading.Event, samples: list[tuple[float, float]]) -> None:
    while not until.is_set():
        start = time.monotonic()
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{url}/healthz", timeout=60)
        samples.append((start, time.monotonic() - start))
        time.sleep(0.05)


def closed_by_server(raw: RawReader, timeout: float) -> bool:
    raw.sock.settimeout(1.0)
    return raw.drain(timeout)


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no samples"
    ms = sorted(v * 1000 for v in values)
    return (
        f"{label}: {len(ms)} requests, p50 {percentile(ms, 50):.0f} ms, "
        f"p99 {percentile(ms, 99):.0f} ms, max {ms[-1]:.0f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("--events", type=int, default=60_000, help="subscribes the flood sends")
    parser.add_argument("--after", type=float, default=5.0, help="seconds probed after the flood")
    args = parser.parse_args(argv)
    with scratch_server("flood") as (server, api, slug):
        reader = RawReader(server.url)
        assert reader.subscribe(slug, since=0)["ok"]
        flooder = RawReader(server.url)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(server.url, stop, samples), daemon=True)
        prober.start()
        time.sleep(0.5)
        sent = [0]
        flood_start = time.monotonic()
        sender = threading.Thread(target=flood, args=(flooder, slug, args.events, sent))
        sender.start()
        time.sleep(0.2)
        posted = time.monotonic()
        api.post(slug, "Posted while one connection floods the server.")
        reader.sock.settimeout(1.0)
        change = reader.wait_for(lambda text: text.startswith('42["change"'), timeout=120)
        waited = time.monotonic() - posted
        sender.join()
        flood_end = time.monotonic()
        hung_up = closed_by_server(flooder, 10.0)
        time.sleep(args.after)
        stop.set()
        prober.join()
        during = [d for start, d in samples if flood_start <= start < flood_end]
        later = [d for start, d in samples if start >= flood_end]
        print(f"flood: {sent[0]} subscribe events written in {flood_end - flood_start:.1f} s")
        print(f"flooding connection closed by the server: {'yes' if hung_up else 'NO'}")
        print(summary("/healthz during the flood", during))
        print(summary(f"/healthz in the {args.after:.0f} s after it", later))
        print(f"reader waited {waited * 1000:.0f} ms for the update ({len(change)} bytes)")
        reader.close()
        flooder.close()


if __name__ == "__main__":
    main()
