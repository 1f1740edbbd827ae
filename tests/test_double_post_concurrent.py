"""A double-clicked compose form, sent twice at the same moment to a real server: one
update, and both requests answered as the first was (the same redirect to it), on SQLite
and on PostgreSQL. The form carries a fresh idempotency key; the service takes the story's
lock before looking for an earlier post with that key, so the second waits and finds it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests

from tests.conftest import fresh_postgres_database
from tests.liveserver import EDITOR, PASSWORD, Api, LiveServer, prepare_database

pytestmark = pytest.mark.slow

AT_ONCE = 2  # a double click
ROUNDS = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, tmp_path) -> Iterator[tuple[LiveServer, str]]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'double.sqlite'}"
        else:
            url = stack.enter_context(fresh_postgres_database("liveblog_double"))
        token = prepare_database(url)
        live = LiveServer(url, tmp_path / "server.log")
        stack.callback(live.stop)  # before the database is dropped
        yield live.start(), token


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', page)
    assert match, f"no {name} on the page"
    return match.group(1)


def signed_in(url: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{url}/editor/login", timeout=20).text
    answer = browser.post(
        f"{url}/editor/login",
        data={"username": EDITOR, "password": PASSWORD, "csrf_token": hidden(page, "csrf_token")},
        allow_redirects=False,
        timeout=20,
    )
    assert answer.status_code == 302, answer.text
    return browser


def send_together(url: str, cookies: requests.cookies.RequestsCookieJar, form: dict) -> list:
    """The same form from the same browser, by AT_ONCE threads let go at one moment."""
    barrier = threading.Barrier(AT_ONCE)
    answers: list = [None] * AT_ONCE

    def send(n: int) -> None:
        with requests.Session() as tab:  # a Session is not for sharing between threads
            tab.cookies.update(cookies)
            barrier.wait()
            answers[n] = tab.post(url, data=form, allow_redirects=False, timeout=30)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_a_form_sent_twice_at_once_publishes_one_update(server):
    live, token = server
    api = Api(live.url, token)
    slug = api.new_story()
    browser = signed_in(live.url)
    compose = f"{live.url}/editor/articles/{slug}"
    for round_ in range(1, ROUNDS + 1):
        page = browser.get(compose, timeout=20).text
        form = {
            "csrf_token": hidden(page, "csrf_token"),
            "idempotency_key": hidden(page, "idempotency_key"),
            "body": f"Round {round_}: polls have closed.",
        }
        answers = send_together(f"{compose}/updates", browser.cookies, form)
        statuses = [answer.status_code for answer in answers]
        assert statuses == [302] * AT_ONCE, [answer.text[:500] for answer in answers]
        locations = {answer.headers["Location"] for answer in answers}
        assert len(locations) == 1, locations  # both sent to the one update
        changes = api.changes(slug)["changes"]
        assert [change["type"] for change in changes] == ["created"] * round_
        update_id = changes[-1]["update"]["id"]
        assert locations.pop().endswith(f"#update-{update_id}")
    bodies = [change["update"]["body"] for change in api.changes(slug)["changes"]]
    assert bodies == [f"Round {n}: polls have closed." for n in range(1, ROUNDS + 1)]
