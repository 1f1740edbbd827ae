"""The security headers, value for value, once each, on every kind of answer: pages, the
embed, API answers, refusals of every layer and Socket.IO's own polling answers. A weaker
value (`Referrer-Policy: unsafe-url`, a CSP that allows inline scripts) must fail here, not
only a missing header. The values are written out, not imported, so a change to the
policy in the code is a change a test notices."""

from __future__ import annotations

import pytest

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)
# The embed may be framed by any site; everything else about its policy is the site's.
EMBED_CSP = CSP.replace("frame-ancestors 'self'", "frame-ancestors *")
EXPECTED = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
HSTS = "max-age=31536000; includeSubDomains"

STORY = "/articles/election-night"
API = "/api/articles/election-night"
ANSWERS = {
    "index": ("GET", "/", 200),
    "story page": ("GET", STORY, 200),
    "story page, bad order": ("GET", f"{STORY}?order=sideways", 400),
    "sign-in page": ("GET", "/editor/login", 200),
    "sign-in refused without CSRF": ("POST", "/editor/login", 400),
    "editor page, signed out": ("GET", "/editor/", 302),
    "feed": ("GET", f"{STORY}/feed.atom", 200),
    "robots": ("GET", "/robots.txt", 200),
    "static file": ("GET", "/static/js/reader.js", 200),
    "API answer": ("GET", API, 200),
    "API list": ("GET", "/api/articles", 200),
    "API 404": ("GET", "/api/articles/no-such-story", 404),
    "API 401": ("POST", f"{API}/updates", 401),
    "API method not allowed": ("PUT", "/api/articles", 405),
    "page 404": ("GET", "/no-such-page", 404),
    "Socket.IO handshake": ("GET", "/socket.io/?EIO=4&transport=polling", 200),
    "Socket.IO refusal": ("GET", "/socket.io/?EIO=3&transport=polling", 400),
    "Socket.IO unknown session": ("GET", "/socket.io/?EIO=4&transport=polling&sid=x", 400),
}


def headers_of(response) -> dict[str, list[str]]:
    names = [*EXPECTED, "Strict-Transport-Security"]
    return {name: response.headers.getlist(name) for name in names}


def answer(client, method: str, path: str, status: int):
    response = client.open(path, method=method)
    response.close()  # a static file's answer holds the file open until closed
    assert response.status_code == status, (path, response.status_code)
    return response


@pytest.mark.parametrize("name", ANSWERS)
def test_exact_security_headers_and_no_hsts_without_tls(client, story, name):
    response = answer(client, *ANSWERS[name])
    assert headers_of(response) == {
        **{header: [value] for header, value in EXPECTED.items()},
        "Strict-Transport-Security": [],
    }


@pytest.mark.config(SESSION_COOKIE_SECURE=True)
@pytest.mark.parametrize("name", ANSWERS)
def test_exact_security_headers_and_hsts_behind_tls(client, story, name):
    response = answer(client, *ANSWERS[name])
    assert headers_of(response) == {
        **{header: [value] for header, value in EXPECTED.items()},
        "Strict-Transport-Security": [HSTS],
    }


def embed_headers(client) -> dict[str, list[str]]:
    response = client.get(f"{STORY}/embed")
    assert response.status_code == 200
    # The story page itself may only be framed by the site.
    assert client.get(STORY).headers.getlist("Content-Security-Policy") == [CSP]
    return headers_of(response)


def test_the_embed_differs_only_in_who_may_frame_it(client, story):
    assert embed_headers(client) == {
        **{header: [value] for header, value in EXPECTED.items()},
        "Content-Security-Policy": [EMBED_CSP],
        "Strict-Transport-Security": [],
    }


@pytest.mark.config(SESSION_COOKIE_SECURE=True)
def test_the_embed_behind_tls_keeps_hsts(client, story):
    assert embed_headers(client) == {
        **{header: [value] for header, value in EXPECTED.items()},
        "Content-Security-Policy": [EMBED_CSP],
        "Strict-Transport-Security": [HSTS],
    }


def test_a_page_whose_story_is_gone_keeps_the_embed_policy_off(client):
    """An embed of no story is a refusal, with the site's own policy, not the embed's."""
    response = client.get("/articles/no-such-story/embed")
    assert response.status_code == 404
    assert response.headers.getlist("Content-Security-Policy") == [CSP]


def test_socket_io_long_polling_answers_carry_them_too(client):
    """Beyond the handshake: a poll and a post on an open session, which never reach Flask."""
    handshake = client.get("/socket.io/?EIO=4&transport=polling")
    sid = handshake.get_data(as_text=True).split('"sid":"', 1)[1].split('"', 1)[0]
    url = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    posted = client.post(url, data="40")  # connect to the default namespace
    assert posted.status_code == 200
    polled = client.get(url)
    assert polled.status_code == 200 and polled.get_data(as_text=True).startswith("40")
    for response in (posted, polled):
        assert headers_of(response) == {
            **{header: [value] for header, value in EXPECTED.items()},
            "Strict-Transport-Security": [],
        }
