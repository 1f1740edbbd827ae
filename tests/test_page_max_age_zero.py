"""PAGE_MAX_AGE=0 turns shared caching of story pages off (README, "Surviving a crowd"): no
cache may hand out a copy without asking first, and asking stays cheap (a 304 for the
same seq). Set in the environment, as an operator sets it: 0 is a value, not "unset"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from liveblog import create_app, services
from liveblog.extensions import db
from tests.conftest import app_config

PAGES = ["/articles/election-night", "/articles/election-night/embed"]


@pytest.fixture
def zero_app(monkeypatch, tmp_path) -> Iterator[Flask]:
    monkeypatch.setenv("PAGE_MAX_AGE", "0")
    app = create_app(
        app_config(f"sqlite:///{tmp_path / 'zero.sqlite'}", PUBLIC_URL="https://news.example")
    )
    with app.app_context():
        db.create_all()
        services.create_article("Election night", slug="election-night")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("path", PAGES)
def test_page_max_age_zero_lets_no_cache_serve_a_copy_unasked(zero_app, path):
    assert zero_app.config["PAGE_MAX_AGE"] == 0
    client = zero_app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "public, max-age=0, s-maxage=0"
    again = client.get(path, headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
