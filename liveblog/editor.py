"""Editors' pages: sign in and out, the stories, and the compose page for each story."""

from __future__ import annotations

import secrets
import uuid
from functools import cache
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from . import services
from .extensions import configured_limit, db, limiter, login_manager
from .forms import ArticleForm, LoginForm, StatusForm, UpdateForm
from .models import Article, Editor

bp = Blueprint("editor", __name__, url_prefix="/editor")

login_manager.login_view = "editor.login"
login_manager.login_message = "Sign in to edit stories."


@login_manager.user_loader
def load_editor(session_id: str) -> Editor | None:
    """The editor a session names, while that session has not been ended by a logout."""
    editor_id, _, version = session_id.partition(":")
    well_formed = session_id.isascii() and editor_id.isdigit() and version.isdigit()
    if not well_formed or len(editor_id) > 10 or int(editor_id) > services.MAX_ID:
        return None  # malformed, or a session from before session versions
    editor = db.session.get(Editor, int(editor_id))
    return editor if editor is not None and str(editor.session_version) == version else None


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """Pages redirect to the sign-in form; a POST is refused outright, writing nothing."""
    if request.method == "GET":
        return redirect(url_for("editor.login", next=request.path))
    return Response("Sign in first: this action needs a logged-in editor.", 401)


def _safe_next(target: str | None) -> str:
    """Only local paths, so the sign-in page cannot be used to send editors elsewhere.

    Browsers and URL parsers drop tabs and newlines and read a backslash as a slash, so a
    slash, a tab and a slash would become "//", another site: any of those refuses it.
    """
    fallback = url_for("editor.stories")
    if not target or any(c in target for c in "\\\t\r\n") or not target.isprintable():
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or target.startswith("//"):
        return fallback
    return target


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _login_account() -> str:
    """The account a sign-in attempt is for: failures are also counted per account."""
    return "login-account:" + (request.form.get("username") or "").strip().casefold()[:64]


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def _password_matches(editor: Editor | None, password: str) -> bool:
    """Hash the password even for an unknown name, so timing does not tell which names exist."""
    if editor is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return editor.check_password(password)


@bp.route("/login", methods=["GET", "POST"])
# Only failed attempts count (a newsroom behind one address signs in freely), per address
# and per account; once either is spent, every attempt is refused until it recovers.
@limiter.limit(configured_limit("LOGIN_RATE_LIMIT"), methods=["POST"], deduct_when=_failed)
@limiter.limit(
    configured_limit("LOGIN_ACCOUNT_RATE_LIMIT"),
    methods=["POST"],
    key_func=_login_account,
    deduct_when=_failed,
)
def login() -> Response | tuple[str, int] | str:
    form = LoginForm()
    if form.validate_on_submit():
        editor = db.session.scalar(sa.select(Editor).where(Editor.username == form.username.data))
        if _password_matches(editor, form.password.data):
            login_user(editor)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("That username and password do not match.")
    status = 401 if form.is_submitted() else 200
    return render_template("editor/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    """Ends the session on the server too: a copy of the cookie no longer signs in."""
    if current_user.is_authenticated:
        db.session.execute(
            sa.update(Editor)
            .where(Editor.id == current_user.id)
            .values(session_version=Editor.session_version + 1)
        )
        db.session.commit()
    logout_user()
    return redirect(url_for("reader.index"))


@bp.get("/")
@login_required
def stories() -> str:
    return _stories_page(ArticleForm())


@bp.post("/articles")
@login_required
def start_story() -> Response | tuple[str, int]:
    form = ArticleForm()
    if not form.validate_on_submit():
        return _stories_page(form), 422
    try:
        story = services.create_article(form.title.data, body=form.body.data or "")
    except services.Invalid as error:
        form.title.errors.append(error.message)
        return _stories_page(form), 422
    flash(f"Story “{story.title}” is live.")
    return redirect(url_for("editor.compose", slug=story.slug))


@bp.post("/articles/<slug>/status")
@login_required
def set_status(slug: str) -> Response:
    story = services.get_article(slug)
    services.edit_article(story, {"status": request.form.get("status", "")})
    flash(f"Story “{story.title}” is now {story.status}.")
    return redirect(url_for("editor.compose", slug=slug))


@bp.get("/articles/<slug>")
@login_required
def compose(slug: str) -> str:
    return _compose_page(services.get_article(slug), UpdateForm(idempotency_key=uuid.uuid4().hex))


@bp.post("/articles/<slug>/updates")
@login_required
@limiter.limit(configured_limit("WRITE_RATE_LIMIT"))
def post_update(slug: str) -> Response | tuple[str, int]:
    story = services.get_article(slug)
    form = UpdateForm()
    if not form.validate_on_submit():
        return _compose_page(story, form), 422
    try:
        update = services.post_update(
            story,
            current_user._get_current_object(),  # the Editor itself, not the proxy
            body=form.body.data,
            headline=form.headline.data or None,
            key_event=form.key_event.data,
            pinned=form.pinned.data,
            idempotency_key=form.idempotency_key.data or None,
        )
    except services.Invalid as error:
        form.body.errors.append(error.message)
        return _compose_page(story, form), 422
    flash("Update published.")
    return redirect(url_for("editor.compose", slug=slug, _anchor=f"update-{update.id}"))


def _stories_page(form: ArticleForm) -> str:
    return render_template(
        "editor/stories.html", articles=Article.listing(), form=form, status_form=StatusForm()
    )


def _compose_page(story: Article, form: UpdateForm) -> str:
    return render_template(
        "editor/compose.html",
        article=story,
        updates=story.page_updates(),
        form=form,
        status_form=StatusForm(),
    )
