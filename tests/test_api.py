"""The JSON API: shapes from the contract, authentication, and every kind of bad input."""

from __future__ import annotations

import pytest

URL = "/api/articles/election-night"


def post(client, bearer, json=None, **kwargs):
    return client.post(f"{URL}/updates", json=json, headers=bearer, **kwargs)


def seq(client) -> int:
    return client.get(URL).get_json()["seq"]


def test_create_and_read_a_story(client, bearer):
    response = client.post(
        "/api/articles", json={"title": "Flood", "body": "*Rising*"}, headers=bearer
    )
    assert response.status_code == 201
    article = response.get_json()
    assert article["slug"] == "flood" and article["status"] == "live" and article["seq"] == 0
    assert article["html"] == "<p><em>Rising</em></p>"
    assert article["created_at"].endswith("Z")
    assert client.get("/api/articles/flood").get_json() == article
    listing = client.get("/api/articles").get_json()["articles"]
    assert [a["slug"] for a in listing] == ["flood"]


def test_live_stories_are_listed_first(client, bearer):
    for title in ("Old", "New"):
        client.post("/api/articles", json={"title": title}, headers=bearer)
    client.patch("/api/articles/new", json={"status": "ended"}, headers=bearer)
    listing = client.get("/api/articles").get_json()["articles"]
    assert [(a["slug"], a["status"]) for a in listing] == [("old", "live"), ("new", "ended")]


def test_taken_slug_conflicts(client, bearer, story):
    response = client.post(
        "/api/articles", json={"title": "Again", "slug": "election-night"}, headers=bearer
    )
    assert response.status_code == 409
    assert "already taken" in response.get_json()["error"]


def test_post_edit_delete_an_update(client, bearer, story):
    created = post(
        client, bearer, {"body": "Polls **close**", "headline": "8 pm", "key_event": True}
    )
    assert created.status_code == 201
    update = created.get_json()
    assert {k: update[k] for k in ("headline", "body", "key_event", "author", "edited_at")} == {
        "headline": "8 pm",
        "body": "Polls **close**",
        "key_event": True,
        "author": "alice",
        "edited_at": None,
    }
    assert update["html"] == "<p>Polls <strong>close</strong></p>"
    assert update["published_at"].endswith("Z")

    edited = client.patch(
        f"{URL}/updates/{update['id']}", json={"body": "Polls closed"}, headers=bearer
    )
    assert edited.status_code == 200
    assert edited.get_json()["html"] == "<p>Polls closed</p>"
    assert edited.get_json()["headline"] == "8 pm"  # untouched fields stay
    assert edited.get_json()["edited_at"] is not None

    listed = client.get(f"{URL}/updates").get_json()["updates"]
    assert [u["body"] for u in listed] == ["Polls closed"]

    deleted = client.delete(f"{URL}/updates/{update['id']}", headers=bearer)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(f"{URL}/updates").get_json()["updates"] == []

    changes = client.get(f"{URL}/changes?since=0").get_json()
    assert changes["seq"] == 3
    assert [(c["seq"], c["type"]) for c in changes["changes"]] == [
        (1, "created"),
        (2, "edited"),
        (3, "deleted"),
    ]
    assert changes["changes"][2]["update"]["id"] == update["id"]
    assert [c["seq"] for c in client.get(f"{URL}/changes?since=2").get_json()["changes"]] == [3]


def test_updates_are_paged_newest_first(client, bearer, story):
    ids = [post(client, bearer, {"body": f"n{i}"}).get_json()["id"] for i in range(5)]
    page = client.get(f"{URL}/updates?limit=2").get_json()["updates"]
    assert [u["id"] for u in page] == ids[:-3:-1]
    older = client.get(f"{URL}/updates?limit=2&before={page[-1]['id']}").get_json()["updates"]
    assert [u["id"] for u in older] == [ids[2], ids[1]]


def test_idempotency_key_header_publishes_once(client, bearer, story):
    headers = {**bearer, "Idempotency-Key": "retry-1"}
    first = client.post(f"{URL}/updates", json={"body": "once"}, headers=headers)
    second = client.post(f"{URL}/updates", json={"body": "once"}, headers=headers)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert seq(client) == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
)
def test_writes_without_a_valid_token_are_refused(client, story, headers):
    responses = [
        client.post("/api/articles", json={"title": "x"}, headers=headers),
        client.patch(URL, json={"title": "x"}, headers=headers),
        client.post(f"{URL}/updates", json={"body": "x"}, headers=headers),
        client.patch(f"{URL}/updates/1", json={"body": "x"}, headers=headers),
        client.delete(f"{URL}/updates/1", headers=headers),
    ]
    for response in responses:
        assert response.status_code == 401
        assert "token" in response.get_json()["error"]
    assert seq(client) == 0
    assert len(client.get("/api/articles").get_json()["articles"]) == 1


def test_a_logged_in_session_is_not_an_api_credential(client, auth, story):
    """Cookies never authorize API writes, so another site cannot post through a browser."""
    auth.login()
    assert client.post(f"{URL}/updates", json={"body": "x"}).status_code == 401


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "JSON"),
        ({"data": "body=x", "content_type": "application/x-www-form-urlencoded"}, 400, "JSON"),
        ({"json": ["a", "list"]}, 400, "object"),
        ({"json": {}}, 422, "body must be a string"),
        ({"json": {"body": ""}}, 422, "must not be empty"),
        ({"json": {"body": " \t\n"}}, 422, "must not be empty"),
        ({"json": {"body": "x" * 20_001}}, 422, "limit is 20,000"),
        ({"json": {"body": 5}}, 422, "must be a string"),
        ({"json": {"body": "ok", "key_event": "true"}}, 422, "true or false"),
        ({"json": {"body": "ok", "headline": 3}}, 422, "headline must be a string"),
        ({"json": {"body": "ok", "seq": 99}}, 422, "Unknown field"),
    ],
)
def test_bad_update_bodies_write_nothing(client, bearer, story, kwargs, status, message):
    response = client.post(f"{URL}/updates", headers=bearer, **kwargs)
    assert response.status_code == status
    assert message in response.get_json()["error"]
    assert seq(client) == 0


def test_a_request_over_the_size_limit_gets_413(client, bearer, story):
    response = post(client, bearer, {"body": "x" * 300_000})
    assert response.status_code == 413
    assert "limit" in response.get_json()["error"]
    assert seq(client) == 0


def test_bad_edits_write_nothing(client, bearer, story):
    update_id = post(client, bearer, {"body": "x"}).get_json()["id"]
    cases = [
        (client.patch(f"{URL}/updates/{update_id}", json={"body": ""}, headers=bearer), 422),
        (client.patch(f"{URL}/updates/{update_id}", json={"bogus": 1}, headers=bearer), 422),
        (client.patch(f"{URL}/updates/{update_id}", json={}, headers=bearer), 422),
        (client.patch(f"{URL}/updates/{update_id}", json=[1], headers=bearer), 400),
        (client.patch(f"{URL}/updates/{update_id + 9}", json={"body": "y"}, headers=bearer), 404),
        (client.patch(f"{URL}/updates/abc", json={"body": "y"}, headers=bearer), 404),
        (client.delete(f"{URL}/updates/{update_id + 9}", headers=bearer), 404),
        (client.patch(URL, json={"status": "paused"}, headers=bearer), 422),
        (client.patch(URL, json={"title": ""}, headers=bearer), 422),
        (client.patch(URL, json={"seq": 0}, headers=bearer), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.get_json()
        assert response.get_json()["error"]
    assert seq(client) == 1


def test_an_update_under_another_storys_slug_is_not_found(client, bearer, story):
    update_id = post(client, bearer, {"body": "x"}).get_json()["id"]
    client.post("/api/articles", json={"title": "Other"}, headers=bearer)
    for response in (
        client.patch(
            f"/api/articles/other/updates/{update_id}", json={"body": "y"}, headers=bearer
        ),
        client.delete(f"/api/articles/other/updates/{update_id}", headers=bearer),
    ):
        assert response.status_code == 404
        assert "no update" in response.get_json()["error"]
    assert client.get("/api/articles/other").get_json()["seq"] == 0
    assert client.get(f"{URL}/updates").get_json()["updates"][0]["body"] == "x"


def test_unknown_stories_and_bad_query_numbers(client, bearer, story):
    assert client.get("/api/articles/nope").status_code == 404
    assert "no story" in client.get("/api/articles/nope/changes").get_json()["error"]
    assert post(client, bearer, {"body": "x"}).status_code == 201
    assert (
        client.post("/api/articles/nope/updates", json={"body": "x"}, headers=bearer).status_code
        == 404
    )
    for query in ("since=abc", "since=-1", "since=1.5"):
        response = client.get(f"{URL}/changes?{query}")
        assert response.status_code == 400 and "since" in response.get_json()["error"]
    for query in ("limit=0", "limit=201", "before=x"):
        assert client.get(f"{URL}/updates?{query}").status_code == 400
    assert client.get("/api/nothing-here").get_json()["error"]


@pytest.mark.config(RATELIMIT_ENABLED=True, WRITE_RATE_LIMIT="3 per minute")
def test_writes_are_rate_limited(client, bearer, story):
    statuses = [post(client, bearer, {"body": f"n{i}"}).status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    assert seq(client) == 3


@pytest.mark.config(MAX_CATCH_UP=3)
def test_changes_are_paged_with_more(client, bearer, story):
    for i in range(5):
        post(client, bearer, {"body": f"n{i}"})
    first = client.get(f"{URL}/changes?since=0").get_json()
    assert (first["seq"], first["more"]) == (5, True)
    assert [c["seq"] for c in first["changes"]] == [1, 2, 3]
    rest = client.get(f"{URL}/changes?since=3").get_json()
    assert ([c["seq"] for c in rest["changes"]], rest["more"]) == ([4, 5], False)


def test_an_idempotency_key_reused_for_something_else_conflicts(client, bearer, story):
    headers = {**bearer, "Idempotency-Key": "k"}
    first = client.post(f"{URL}/updates", json={"body": "one"}, headers=headers).get_json()
    other = client.post(f"{URL}/updates", json={"body": "two"}, headers=headers)
    assert other.status_code == 409 and "idempotency key" in other.get_json()["error"]
    client.delete(f"{URL}/updates/{first['id']}", headers=bearer)
    again = client.post(f"{URL}/updates", json={"body": "one"}, headers=headers)
    assert again.status_code == 409  # the update it named is gone: say so, don't pretend
    assert seq(client) == 2
