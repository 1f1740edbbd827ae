"""Redis going away and coming back: writes still land, and readers catch up afterwards."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import skip_unless_ci
from tests.liveserver import (
    Api,
    free_port,
    live_server_on_sqlite,
    prepare_database,
    reader,
    servers,
)

pytestmark = pytest.mark.slow  # a Redis server and server processes of its own

REDIS_SERVER = shutil.which("redis-server")


class PrivateRedis:
    """A Redis server of this test's own, so stopping it disturbs nobody else."""

    def __init__(self, workdir) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if REDIS_SERVER is None:
        skip_unless_ci("redis-server is not installed on this machine")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_writes_and_readers_survive_a_redis_outage(private_redis, tmp_path):
    with live_server_on_sqlite(
        tmp_path,
        REDIS_URL=private_redis.url,
        REDIS_CHANNEL=f"outage-{uuid.uuid4().hex[:8]}",
        RATELIMIT_ENABLED="1",  # its counts live in Redis too
    ) as (server, token):
        api = Api(server.url, token)
        slug = api.new_story()
        private_redis.stop()  # down before the process's first reader connects

        with reader(server.url) as sio:
            assert sio.subscribe(slug, since=0) == {"ok": True, "seq": 0}
            first = api.post(slug, "Posted while Redis is down")  # 201, not a 500
            assert api.request("GET", f"/articles/{slug}", 200)["seq"] == 1
            # This process's own readers get it at once, without the queue.
            assert [change["seq"] for change in sio.wait_changes(1)] == [1]

            private_redis.start()
            # The relay resubscribes within a second or two; keep posting until one gets
            # through, then the reader must hold every change from 1 on, in order, once.
            deadline = time.monotonic() + 15
            while len(sio.changes()) < 2 and time.monotonic() < deadline:
                api.post(slug, "Posted after Redis came back")
                time.sleep(0.3)
            latest = api.request("GET", f"/articles/{slug}", 200)["seq"]
            changes = sio.wait_changes(latest, timeout=10)
            assert [change["seq"] for change in changes] == list(range(1, latest + 1))
            assert changes[0]["update"] == first
        assert "change 1 sent locally" in server.log()  # the outage was logged, not hidden


def test_a_process_that_missed_changes_in_an_outage_resyncs(private_redis, postgres_url, tmp_path):
    """Posted through process B while Redis is down: process A's reader still gets it, once
    A is listening again, with no further post to reveal the gap."""
    token = prepare_database(postgres_url)
    env = {"REDIS_URL": private_redis.url, "REDIS_CHANNEL": f"resync-{uuid.uuid4().hex[:8]}"}
    with servers(postgres_url, tmp_path, 2, **env) as (one, two):
        slug = Api(one.url, token).new_story()
        with reader(one.url) as sio:
            assert sio.subscribe(slug, since=0) == {"ok": True, "seq": 0}
            private_redis.stop()
            update = Api(two.url, token).post(slug, "Posted through the other process")
            private_redis.start()
            changes = sio.wait_changes(1, timeout=15)
            assert [(c["seq"], c["update"]["id"]) for c in changes] == [(1, update["id"])]
