"""API tokens: issued, listed (never their secrets), revoked at once, optionally expiring.

The same functions serve the command line (`flask editor token|tokens|revoke`) and the
editor's own page at /editor/tokens.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user, login_required

from .extensions import db
from .forms import StatusForm, TokenForm
from .models import ApiToken, Editor, utcnow

bp = Blueprint("tokens", __name__, url_prefix="/editor/tokens")

# Writing "last used" on every call would make each API write two; a minute is precise
# enough to tell a live token from a forgotten one.
TOUCH_EVERY = timedelta(minutes=1)


def issue(editor: Editor, expires_in_days: int | None = None) -> str:
    """Make a token; only its hash is stored, so this is the one time it is seen."""
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    db.session.add(
        ApiToken(editor_id=editor.id, token_hash=ApiToken.hash(token), expires_at=expires_at)
    )
    db.session.commit()
    return token


def listing(editor: Editor) -> list[ApiToken]:
    query = sa.select(ApiToken).where(ApiToken.editor_id == editor.id).order_by(ApiToken.id)
    return list(db.session.scalars(query))


def revoke(token_id: int, editor: Editor | None = None) -> bool:
    """Delete a token (only among `editor`'s when given); False if there was none."""
    query = sa.delete(ApiToken).where(ApiToken.id == token_id)
    if editor is not None:
        query = query.where(ApiToken.editor_id == editor.id)
    deleted = db.session.execute(query).rowcount
    db.session.commit()
    return bool(deleted)


def touch(token: ApiToken) -> None:
    """Note that the token was used now (at most once a minute)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        db.session.execute(
            sa.update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
        )
        db.session.commit()


# --- the editor's own page -----------------------------------------------------------


@bp.get("/")
@login_required
def page() -> str:
    return _page(TokenForm())


@bp.post("/")
@login_required
def create() -> tuple[str, int]:
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(form), 422
    token = issue(current_user, form.expires_in_days.data)
    # Shown in this answer only: not flashed, since the session cookie is readable.
    return _page(TokenForm(formdata=None), new_token=token), 201


@bp.post("/<int:token_id>/revoke")
@login_required
def revoke_own(token_id: int) -> str:
    # CSRFProtect has checked the form's token before this runs, as for every POST.
    if not revoke(token_id, current_user):
        abort(404, "You have no token with that id.")
    return _page(TokenForm(formdata=None), revoked=token_id)


def _page(form: TokenForm, **shown: object) -> str:
    return render_template(
        "editor/tokens.html",
        tokens=listing(current_user),
        form=form,
        revoke_form=StatusForm(),
        now=utcnow(),
        **shown,
    )


@bp.after_request
def no_store(response: Response) -> Response:
    """A new token is in the page: no cache, shared or not, may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
