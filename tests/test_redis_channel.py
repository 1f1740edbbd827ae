"""REDIS_CHANNEL keeps a deployment to its own names on a shared Redis: every channel it
publishes on and every key it writes starts with it (README's settings table).

A real server with REDIS_URL, a reader and an editor's post; meanwhile the test listens to
every channel of the Redis server and reads back the keys under the prefix.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from tests.conftest import local_redis
from tests.liveserver import Api, LiveServer, prepare_database, wait_for
from tests.rawreader import RawReader

pytestmark = pytest.mark.slow

REDIS = "redis://127.0.0.1:6379/0"


def test_a_deployment_publishes_and_keeps_only_under_its_channel(tmp_path):
    connection = local_redis(REDIS)
    channel = f"deployment-{uuid.uuid4().hex[:10]}"
    heard: list[tuple[str, bytes]] = []  # (channel, message) of every message published
    listening = threading.Event()
    done = threading.Event()

    def listen() -> None:
        pubsub = connection.pubsub()
        pubsub.psubscribe("*")
        listening.set()
        while not done.is_set():
            message = pubsub.get_message(timeout=0.2)
            if message and message["type"] == "pmessage":
                heard.append((message["channel"].decode(), message["data"]))
        pubsub.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert listening.wait(10)
    url = f"sqlite:///{tmp_path / 'channel.sqlite'}"
    token = prepare_database(url)
    server = LiveServer(url, tmp_path / "server.log", REDIS_URL=REDIS, REDIS_CHANNEL=channel)
    server.start()
    try:
        api = Api(server.url, token)
        slug = api.new_story()
        reader = RawReader(server.url)
        try:
            assert reader.subscribe(slug, since=0)["ok"]
            api.post(slug, "Heard on the deployment's own channel.")
            change = reader.wait_for(lambda text: text.startswith('42["change"'), timeout=30)
            assert json.loads(change[2:])[1]["article"] == slug
            wait_for(
                lambda: any(name == f"{channel}:changes" for name, _ in heard),
                what="the change published on the deployment's channel",
            )
            keys = [key.decode() for key in connection.scan_iter(match=f"{channel}:*")]
            assert keys, "the reader count and pages live under the prefix"
        finally:
            reader.close()
    finally:
        server.stop()
        done.set()
        listener.join(10)
        for key in connection.scan_iter(match=f"{channel}:*"):
            connection.delete(key)
    # Other deployments may share this Redis (other test runs do): what names this story was
    # published by this deployment, and none of it outside the prefix.
    about_the_story = [name for name, data in heard if slug.encode() in data]
    assert about_the_story
    assert all(name.startswith(f"{channel}:") for name in about_the_story), about_the_story
