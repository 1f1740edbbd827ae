"""The verify_action check, in the shape of Zulip's: take the state a reader had, do the
action, and hold each CHANGE it produced to what a fresh load of the story shows. For the
`story` fixture's story, through Flask's and Flask-SocketIO's test clients."""

from __future__ import annotations

import re

from liveblog import changes
from liveblog.relay import relay

SLUG = "election-night"
URL = f"/api/articles/{SLUG}"


def fresh_state(client) -> dict:
    """What a reader loading the story now gets: the story and each visible update's element."""
    story = client.get(URL).get_json()
    page = client.get(f"/articles/{SLUG}").get_data(as_text=True)
    ids = [update["id"] for update in client.get(f"{URL}/updates?limit=200").get_json()["updates"]]
    elements = {}
    for update_id in ids:
        match = re.search(rf'<article [^>]*id="update-{update_id}".*?</article>', page, re.S)
        assert match, f"update {update_id} is missing from the page"
        elements[update_id] = match.group(0)
    return {"story": story, "updates": elements}


def received(sio) -> list[dict]:
    """The changes the client has, once the relay has delivered all it was handed."""
    with sio.app.app_context():
        relay.drain()
    return [event["args"][0] for event in sio.get_received() if event["name"] == "change"]


def verify_action(client, sio, action, expect_kinds: list[str]) -> list[dict]:
    """Each CHANGE says what a fresh load of the story shows after it, by its declared kind
    (liveblog/changes.py), and nothing else moved. That reader.js applies them so, on a real
    page, is the browser's to show (tests/e2e/test_reader_page.py, a page kept live equals
    one loaded afresh); the order it applies them in, tests/js/stream.test.mjs."""
    before = fresh_state(client)
    action()
    got = received(sio)
    assert [change["type"] for change in got] == expect_kinds
    seq = before["story"]["seq"]
    for change in got:
        assert changes.problems(change) == [], change
        seq += 1
        assert change["seq"] == seq, "each change takes the next seq"
    after = fresh_state(client)
    assert after["story"]["seq"] == seq
    last = {change["update"]["id"]: change for change in got if "update" in change}
    for update_id, change in last.items():
        if change["type"] == "deleted":
            assert update_id not in after["updates"]
        else:
            assert after["updates"].get(update_id) == change["html"]
    stories = [change["story"] for change in got if change["type"] == "story"]
    assert {**(stories[-1] if stories else before["story"]), "seq": seq} == after["story"]
    untouched = lambda state: {k: v for k, v in state["updates"].items() if k not in last}  # noqa: E731
    assert untouched(before) == untouched(after)
    return got
