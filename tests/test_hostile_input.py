"""Input meant to break things gets a clear 4xx, never a 500, and writes nothing.

Run on SQLite and PostgreSQL: PostgreSQL refuses some text (NUL) and numbers (past 2^31)
that SQLite takes, and each must be caught before it reaches the database.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, csrf_token

pytestmark = pytest.mark.both_databases
API = "/api/articles/election-night"


def seq(client) -> int:
    return client.get(API).get_json()["seq"]


@pytest.mark.parametrize(
    "fields",
    [
        {"body": "nul \x00 byte"},
        {"body": "bell \x07"},
        {"body": "lone \ud800 surrogate"},
        {"body": "ok", "headline": "vertical \x0b tab"},
    ],
)
def test_control_characters_are_refused(client, bearer, story, fields):
    response = client.post(f"{API}/updates", json=fields, headers=bearer)
    assert response.status_code == 422
    assert "control characters" in response.get_json()["error"]
    assert seq(client) == 0


def test_tabs_and_newlines_are_fine(client, bearer, story):
    response = client.post(f"{API}/updates", json={"body": "a\tb\r\nc"}, headers=bearer)
    assert response.status_code == 201


def test_nul_in_a_story_title_is_refused(client, bearer):
    response = client.post("/api/articles", json={"title": "bad\x00title"}, headers=bearer)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/articles/a%00b",
        "/api/articles/a%00b",
        "/articles/a%00b/feed.atom",
        "/articles/election-night/updates/2147483648",
        "/articles/election-night/updates/99999999999999999999999",
        "/articles/" + "x" * 5000,
    ],
)
def test_impossible_addresses_are_404(client, story, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_update_ids_past_the_column_are_404(client, bearer, story, method):
    for update_id in ("2147483648", "99999999999999999999999"):
        url = f"{API}/updates/{update_id}"
        response = getattr(client, method)(url, json={"body": "x"}, headers=bearer)
        assert response.status_code == 404


@pytest.mark.parametrize(
    "query",
    ["changes?since=2147483648", "changes?since=99999999999999999999", "changes?since=²",
     "updates?before=2147483648", "updates?limit=٣"],
)  # fmt: skip
def test_numbers_out_of_range_are_400(client, story, query):
    response = client.get(f"{API}/{query}")
    assert response.status_code == 400
    assert "whole number" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (API, {"article": 1}),
        (API, {"fields": {}}),
        (f"{API}/updates/1", {"editor": "x"}),
        (f"{API}/updates/1", {"update_id": 5}),
        (f"{API}/updates/1", {"article": "x"}),
    ],
)
def test_unexpected_fields_are_422(client, bearer, story, url, body):
    client.post(f"{API}/updates", json={"body": "first"}, headers=bearer)
    response = client.patch(url, json=body, headers=bearer)
    assert response.status_code == 422
    assert "unknown field" in response.get_json()["error"]


def test_deeply_nested_json_is_400(client, bearer, story):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(
        f"{API}/updates", data=body, content_type="application/json", headers=bearer
    )
    assert response.status_code == 400
    assert seq(client) == 0


def test_nul_in_a_login_name_is_refused(client, editor):
    token = csrf_token(client, "/editor/login")
    response = client.post(
        "/editor/login", data={"username": "ali\x00ce", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 401
    assert b"control characters" in response.data


def test_compose_form_with_nul_shows_the_form_again(client, auth, story):
    auth.login()
    token = csrf_token(client, "/editor/articles/election-night")
    response = client.post(
        "/editor/articles/election-night/updates", data={"body": "a\x00b", "csrf_token": token}
    )
    assert response.status_code == 422
    assert b"control characters" in response.data
    assert seq(client) == 0
