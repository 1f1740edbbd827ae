"""Sign-in limits that bound password guessing without letting anyone lock an editor out.

Usernames are public (every byline shows one), so a limit on failures per account alone
would let anyone keep an editor from signing in. A browser that has signed in to an account
before carries a signed "device cookie" naming that account and a random nonce (OWASP's
lockout-resistant scheme). Its attempts at that account are counted per cookie, and are
exempt from the limits per address and per account, which then hold back only browsers the
account has never been used on. The counts live in Flask-Limiter's storage, so Redis shares
them between processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import reduce
from typing import Any

from flask import Response, current_app, render_template, request, url_for
from flask_limiter import RequestLimit
from itsdangerous import BadData, URLSafeTimedSerializer

from .extensions import configured_limit, limiter
from .forms import LoginForm
from .models import MAX_USERNAME

DEVICE_COOKIE = "device"
# Keeps the cookie's signature apart from the session's and any other use of SECRET_KEY.
SALT = "liveblog.signin.device"

ATTACKED = (
    "Too many wrong passwords have been tried for this account from elsewhere, so it is "
    "paused on browsers it has not signed in with before. Try again later, from a browser "
    "you have signed in with before, or ask an admin."
)
BUSY_ADDRESS = (
    "Too many failed sign-ins from your network. Wait a few minutes, or sign in from a "
    "browser you have signed in with before."
)
BUSY_DEVICE = "Too many wrong passwords from this browser. Wait a few minutes and try again."


def account(username: str) -> str:
    """The account a name means to the limits: spaces and case do not make a new one."""
    return username.strip().casefold()[:MAX_USERNAME]


def _attempted() -> str:
    return account(request.form.get("username") or "")


def _serializer() -> URLSafeTimedSerializer:
    # Oldest first, newest last, as itsdangerous expects: a rotated key keeps cookies valid.
    keys = [*(current_app.config.get("SECRET_KEY_FALLBACKS") or []), current_app.secret_key]
    return URLSafeTimedSerializer(keys, salt=SALT)


def _max_age() -> int:
    return current_app.config["LOGIN_DEVICE_DAYS"] * 24 * 3600


def _device_nonce() -> str | None:
    """The nonce of this browser's device cookie if it names the account being signed in to."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        name, nonce = _serializer().loads(cookie, max_age=_max_age())
    except (BadData, TypeError, ValueError):  # forged, expired, or not ours
        return None
    wanted = _attempted()
    return str(nonce) if wanted and name == wanted else None


def trusted() -> bool:
    return _device_nonce() is not None


def untrusted() -> bool:
    return _device_nonce() is None


def account_key() -> str:
    return "login-account:" + _attempted()


def device_key() -> str:
    return f"login-device:{_device_nonce()}"


def remember_device(response: Response, username: str) -> Response:
    """Mark this browser as one the account signed in with; a fresh nonce each time."""
    value = _serializer().dumps([account(username), secrets.token_urlsafe(16)])
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=_max_age(),
        path=url_for("editor.login"),  # only the sign-in form reads it
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _refusal(message: str) -> Callable[[RequestLimit], Response]:
    """The sign-in form again, saying why it refused, rather than a bare error page."""

    def page(_limit: RequestLimit) -> Response:
        html = render_template("editor/login.html", form=LoginForm(), refusal=message)
        return Response(html, 429)

    return page


def _limit(setting: str, message: str, **how: Any) -> Any:
    # Only failed attempts count (a newsroom behind one address signs in freely); once a
    # limit is spent, every attempt it covers is refused until it recovers.
    return limiter.limit(
        configured_limit(setting),
        methods=["POST"],
        deduct_when=_failed,
        error_message=message,
        on_breach=_refusal(message),
        **how,
    )


def limited(view: Callable[..., Any]) -> Callable[..., Any]:
    """The sign-in view under its three limits: per address and per account for browsers
    without a device cookie for the account, per device cookie for those with one."""
    limits = [
        _limit("LOGIN_RATE_LIMIT", BUSY_ADDRESS, exempt_when=trusted),
        _limit("LOGIN_ACCOUNT_RATE_LIMIT", ATTACKED, key_func=account_key, exempt_when=trusted),
        _limit("LOGIN_DEVICE_RATE_LIMIT", BUSY_DEVICE, key_func=device_key, exempt_when=untrusted),
    ]
    return reduce(lambda wrapped, limit: limit(wrapped), limits, view)
