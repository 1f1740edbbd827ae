"""Editors' pages: sign in and out, the stories, and the compose page for each story."""

from __future__ import annotations

import secrets
import uuid
from functools import cache, wraps
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from markupsafe import Markup
from werkzeug.security import check_password_hash, generate_password_hash

from . import changes, services, signin
from .api import int_arg
from .errors import MESSAGES, error_response
from .extensions import configured_limit, db, limiter, login_manager
from .forms import ArticleForm, EditForm, FlagForm, LoginForm, NewEditorForm, StatusForm, UpdateForm
from .media import upload_limit
from .models import DRAFT, PUBLISHED, SCHEDULED, Article, Editor, Media, Update
from .reader import StoryView
from .rendering import render_markdown

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
    if editor is None or not editor.is_active:  # a disabled editor stops here, at once
        return None
    return editor if str(editor.session_version) == version else None


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
@signin.limited
def login() -> Response | tuple[str, int] | str:
    form = LoginForm()
    if form.validate_on_submit():
        editor = db.session.scalar(sa.select(Editor).where(Editor.username == form.username.data))
        if _password_matches(editor, form.password.data) and editor.is_active:
            session.clear()  # nothing planted before sign-in, such as a CSRF token, carries over
            login_user(editor)
            response = redirect(_safe_next(request.args.get("next")))
            return signin.remember_device(response, editor.username)
        form.password.errors.append("That username and password do not match.")
    status = 401 if form.is_submitted() else 200
    return render_template("editor/login.html", form=form), status


@bp.errorhandler(RateLimitExceeded)
def rate_limited(error: RateLimitExceeded) -> Response | tuple[Response | str, int]:
    """A limit that built its own answer (the sign-in form, saying why) gets it sent."""
    if error.response is not None:
        return error.response
    return error_response(429, error.description or MESSAGES[429])


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
    session.clear()  # a fresh session: the signed-in one's CSRF token ends with it
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
    return _compose_page(services.get_article(slug))


@bp.post("/articles/<slug>/updates")
@login_required
@limiter.limit(configured_limit("WRITE_RATE_LIMIT"))
@upload_limit
def post_update(slug: str) -> Response | tuple[str, int]:
    story = services.get_article(slug)
    form = UpdateForm()
    if not form.validate_on_submit():
        return _compose_page(story, form), 422
    try:
        image = _upload(form)
        update = services.post_update(
            story,
            _me(),
            body=form.body.data,
            headline=form.headline.data or None,
            key_event=form.key_event.data,
            pinned=form.pinned.data,
            idempotency_key=form.idempotency_key.data or None,
            draft=form.draft.data,
            publish_at=form.publish_at.data or None,
            image=image.id if image else None,
        )
    except services.ServiceError as error:
        return _compose_page(story, form, error=error.message), error.status
    flash(NEXT_STEP[update.status])
    return redirect(url_for("editor.compose", slug=slug, _anchor=f"update-{update.id}"))


NEXT_STEP = {
    PUBLISHED: "Update published.",
    DRAFT: "Draft saved: only editors see it until you publish it.",
    SCHEDULED: "Update scheduled: it will publish itself at its time.",
}


def _me() -> Editor:
    return current_user._get_current_object()  # the Editor itself, not the proxy


def _upload(form: UpdateForm) -> Media | None:
    if not form.image.data:
        return None
    return services.upload_image(form.image.data.stream, form.image_alt.data, _me())


@bp.post("/articles/<slug>/updates/<int:update_id>")
@login_required
@limiter.limit(configured_limit("WRITE_RATE_LIMIT"))
def edit_update(slug: str, update_id: int) -> Response | tuple[str, int]:
    story = services.get_article(slug)
    form = EditForm()
    if not form.validate_on_submit():
        return _compose_page(story, error=_first_error(form)), 422
    fields = {name: form[name].data for name in ("body", "key_event", "pinned")}
    fields["headline"] = form.headline.data or None
    return _act(story, "Update saved.", services.edit_update, update_id, fields)


@bp.post("/articles/<slug>/updates/<int:update_id>/flag")
@login_required
@limiter.limit(configured_limit("WRITE_RATE_LIMIT"))
def flag_update(slug: str, update_id: int) -> Response | tuple[str, int]:
    story = services.get_article(slug)
    form = FlagForm()
    if not form.validate_on_submit():
        return _compose_page(story, error=_first_error(form)), 422
    fields = {form.name.data: form.value.data == "on"}
    return _act(story, "Update saved.", services.edit_update, update_id, fields)


@bp.post("/articles/<slug>/updates/<int:update_id>/delete")
@login_required
@limiter.limit(configured_limit("WRITE_RATE_LIMIT"))
def delete_update(slug: str, update_id: int) -> Response | tuple[str, int]:
    story = services.get_article(slug)
    return _act(story, "Update deleted.", services.delete_update, update_id)


@bp.post("/articles/<slug>/updates/<int:update_id>/publish")
@login_required
@limiter.limit(configured_limit("WRITE_RATE_LIMIT"))
def publish_update(slug: str, update_id: int) -> Response | tuple[str, int]:
    story = services.get_article(slug)
    return _act(story, "Update published.", services.publish_update, update_id)


def _act(story: Article, done: str, action: Any, update_id: int, *args: Any):
    """Run one service action on an update; its error is shown on the compose page."""
    try:
        action(story, update_id, _me(), *args)
    except services.ServiceError as error:
        return _compose_page(story, error=error.message), error.status
    flash(done)
    return redirect(url_for("editor.compose", slug=story.slug, _anchor=f"update-{update_id}"))


def _first_error(form: Any) -> str:
    for name, errors in form.errors.items():
        label = form[name].label.text if name in form else name
        return f"{label}: {errors[0]}"
    return "The form could not be read."


@bp.get("/articles/<slug>/updates/<int:update_id>/revisions")
@login_required
def revisions(slug: str, update_id: int) -> str:
    story = services.get_article(slug)
    update = services.get_update(story, update_id, readers=False)
    history = services.revisions(story, update_id)
    return render_template("editor/revisions.html", article=story, update=update, history=history)


def _editor_key() -> str:
    return f"editor:{current_user.id}"


@bp.post("/preview")
@login_required
# Per editor, not per address: a newsroom behind one address types in many compose pages.
@limiter.limit(
    configured_limit("PREVIEW_RATE_LIMIT"),
    key_func=_editor_key,
    error_message="Too many previews in a short time; the preview resumes in a moment.",
)
def preview() -> dict[str, str]:
    """The sanitized HTML an update's Markdown would get, from the renderer posts use."""
    body = request.form.get("body", "")[: current_app.config["MAX_BODY_CHARS"]]
    return {"html": render_markdown(body)}


# --- editors and admins -------------------------------------------------------------


def admin_required(view: Any) -> Any:
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403, "Only admins manage editor accounts.")
        return view(*args, **kwargs)

    return wrapper


@bp.route("/editors", methods=["GET", "POST"])
@admin_required
def editors() -> Response | tuple[str, int]:
    form = NewEditorForm()
    if form.validate_on_submit():
        try:
            made = services.create_editor(
                form.username.data, form.password.data, admin=form.admin.data
            )
        except services.ServiceError as error:
            form.username.errors.append(error.message)
            return _editors_page(form), error.status
        flash(f"Editor {made.username} created.")
        return redirect(url_for("editor.editors"))
    return _editors_page(form), 422 if form.is_submitted() else 200


@bp.post("/editors/<int:editor_id>/<any(disable, enable):action>")
@admin_required
def set_editor_access(editor_id: int, action: str) -> Response | tuple[str, int]:
    editor = db.session.get(Editor, editor_id) if editor_id <= services.MAX_ID else None
    if editor is None:
        abort(404, f"no editor has the id {editor_id}")
    held = 0
    try:
        if action == "disable":
            held = services.disable_editor(editor, by=_me())
        else:
            services.enable_editor(editor)
    except services.ServiceError as error:
        return _editors_page(NewEditorForm(formdata=None), error=error.message), error.status
    flash(f"{editor.username} is {action}d.{_held_note(held)}")
    return redirect(url_for("editor.editors"))


def _held_note(held: int) -> str:
    if not held:
        return ""
    what = "1 scheduled update is" if held == 1 else f"{held} scheduled updates are"
    return f" {what} held as drafts until another editor publishes or deletes them."


def _editors_page(form: NewEditorForm, error: str | None = None) -> str:
    everyone = db.session.scalars(sa.select(Editor).order_by(Editor.username))
    held: dict[int, list[services.Held]] = {}
    for item in services.held_updates():
        held.setdefault(item.author_id, []).append(item)
    return render_template(
        "editor/editors.html", form=form, editors=list(everyone), error=error,
        status_form=StatusForm(), held=held,
    )  # fmt: skip


def _stories_page(form: ArticleForm) -> str:
    return render_template(
        "editor/stories.html", articles=Article.listing(), form=form, status_form=StatusForm()
    )


def with_controls(update: Update) -> Markup:
    """The update's element as readers get it, with the editor's controls inside it."""
    element = update.element or changes.render_element(update)
    controls = render_template("editor/_controls.html", update=update, article=update.article)
    head, _, _ = element.rpartition("</article>")
    # Both parts are ours: the element was rendered from sanitized HTML at write time, the
    # controls by an autoescaping template; nothing a request sent is joined in raw.
    return Markup(head + controls + "</article>")  # nosec B704


# What editor.js fills in for an update that arrives live over the socket.
CONTROLS_TEMPLATE = SimpleNamespace(
    id="__ID__", headline="", body="", key_event=False, pinned=False, status=PUBLISHED,
    publish_at=None, edited_at=None,
)  # fmt: skip


def _compose_page(story: Article, form: UpdateForm | None = None, error: str | None = None) -> str:
    """One page of the story, as readers page it (`?before=`), each update with its forms;
    and one page of its drafts and scheduled updates (`?drafts=`)."""
    view = StoryView(before=int_arg("before", None, low=1))
    view.load(story, current_app.config["PAGE_SIZE"])
    older = view.updates[-1].id if view.more and view.updates else None
    return render_template(
        "editor/compose.html",
        article=story,
        view=view,
        updates=[with_controls(update) for update in (*view.pinned, *view.updates)],
        older_url=url_for("editor.compose", slug=story.slug, before=older) if older else None,
        drafts=_drafts_page(story),
        controls_template=CONTROLS_TEMPLATE,
        form=form or UpdateForm(idempotency_key=uuid.uuid4().hex),
        status_form=StatusForm(),
        error=error,
    )


def _drafts_page(story: Article) -> SimpleNamespace:
    """PAGE_SIZE of the drafts and scheduled updates, from `?drafts=` (an offset: they are
    few and reordered by rescheduling, so no cursor would hold still)."""
    size = current_app.config["PAGE_SIZE"]
    start = int_arg("drafts", 0)
    found = services.unpublished(story, offset=start, limit=size + 1)

    def link(offset: int) -> str:
        return url_for(
            "editor.compose", slug=story.slug, drafts=offset or None, _anchor="unpublished"
        )

    return SimpleNamespace(
        elements=[with_controls(update) for update in found[:size]],
        start=start,
        first_url=link(0) if start else None,
        more_url=link(start + size) if len(found) > size else None,
    )
