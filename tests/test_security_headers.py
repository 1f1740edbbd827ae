"""The security headers, value for value, on every kind of response, and a refusal's quote."""

from __future__ import annotations

import json

import pytest

from liveblog.security import SecureHeaders, clip

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(response) -> dict[str, list[str]]:
    names = (
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Strict-Transport-Security",
    )
    return {name: response.headers.getlist(name) for name in names}


@pytest.mark.parametrize(
    "url", ["/", "/articles/election-night", "/editor/login", "/no/such/page", "/robots.txt"]
)
def test_every_page_carries_the_exact_headers(client, story, url):
    assert security_headers(client.get(url)) == {
        "Content-Security-Policy": [CSP],
        "X-Content-Type-Options": ["nosniff"],
        "Referrer-Policy": ["strict-origin-when-cross-origin"],
        "Strict-Transport-Security": [],  # not served over TLS: no HSTS
    }


def test_socketio_answers_carry_them_too(client):
    # engine.io's handshake never reaches Flask: only the WSGI middleware can add them.
    response = client.get("/socket.io/?EIO=4&transport=polling")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    sid = json.loads(response.get_data(as_text=True)[1:])["sid"]
    # engine.io's close packet, so the session does not linger until its ping times out
    closed = client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="1")
    assert closed.status_code == 200


@pytest.mark.config(SESSION_COOKIE_SECURE=True)
def test_hsts_is_sent_when_the_site_is_served_over_tls(client):
    assert client.get("/").headers.getlist("Strict-Transport-Security") == [HSTS]


def test_the_embed_page_keeps_its_own_policy_once(client, story):
    policies = client.get("/articles/election-night/embed").headers.getlist(
        "Content-Security-Policy"
    )
    assert policies == [CSP.replace("frame-ancestors 'self'", "frame-ancestors *")]


def run(middleware: SecureHeaders, app_headers: list[tuple[str, str]], exc_info=None):
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen.update(status=status, headers=headers, exc_info=exc_info)
        return "write"

    def inner(environ, start):
        seen["returned"] = start("200 OK", list(app_headers), exc_info)
        return [b"body"]

    middleware.app = inner
    assert middleware({}, start_response) == [b"body"]
    return seen


def test_a_header_the_response_sets_in_any_case_is_left_alone():
    seen = run(SecureHeaders(None, hsts=True), [("content-security-policy", "sandbox")])
    assert seen["status"] == "200 OK"
    assert seen["returned"] == "write"  # start_response's own answer reaches the app
    assert seen["headers"] == [
        ("content-security-policy", "sandbox"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Strict-Transport-Security", HSTS),
    ]


def test_the_headers_are_added_as_named():
    assert run(SecureHeaders(None, hsts=False), [])["headers"] == [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]


def test_an_error_passes_its_exc_info_on():
    error = (ValueError, ValueError("boom"), None)
    assert run(SecureHeaders(None, hsts=False), [], exc_info=error)["exc_info"] is error


def test_a_refusal_quotes_at_most_eighty_characters():
    assert clip("a" * 80) == "a" * 80
    assert clip("a" * 81) == "a" * 79 + "…"
    assert clip("abcdef", limit=4) == "abc…"
    assert clip("abcd", limit=4) == "abcd"
