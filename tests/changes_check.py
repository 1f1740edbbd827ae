"""The verify_action check, in the shape of Zulip's: take the state a reader had, do the
action, apply the CHANGEs it produced to that old state, and compare with the state fetched
afresh. For the `story` fixture's story, through Flask's and Flask-SocketIO's test clients."""

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


def apply(state: dict, change: dict) -> dict:
    """What reader.js does with each kind, on a plain copy of the state."""
    state = {"story": dict(state["story"]), "updates": dict(state["updates"])}
    kind = change["type"]
    if kind in ("created", "edited"):
        state["updates"][change["update"]["id"]] = change["html"]
    elif kind == "deleted":
        state["updates"].pop(change["update"]["id"], None)
    elif kind == "story":
        state["story"] = change["story"]
    state["story"]["seq"] = change["seq"]
    return state


def received(sio) -> list[dict]:
    """The changes the client has, once the relay has delivered all it was handed."""
    with sio.app.app_context():
        relay.drain()
    return [event["args"][0] for event in sio.get_received() if event["name"] == "change"]


def verify_action(client, sio, action, expect_kinds: list[str]) -> list[dict]:
    before = fresh_state(client)
    action()
    got = received(sio)
    assert [change["type"] for change in got] == expect_kinds
    seq = before["story"]["seq"]
    state = before
    for change in got:
        assert changes.problems(change) == [], change
        seq += 1
        assert change["seq"] == seq, "each change takes the next seq"
        state = apply(state, change)
    after = fresh_state(client)
    assert state == after
    return got
