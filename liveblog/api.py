"""The JSON API: public reads, token-authenticated writes, all through `services`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, g, request, url_for

from . import changes, services, tokens
from .extensions import configured_limit, limiter
from .media import upload_limit
from .models import ApiToken, Article
from .services import MAX_ID

bp = Blueprint("api", __name__, url_prefix="/api")
T = TypeVar("T")
write_limit = configured_limit("WRITE_RATE_LIMIT")

MAX_PAGE = 200  # the largest `limit` asked for that is not refused; API_PAGE_MAX are served
CHANGES_BATCH = 50  # changes read from the database at a time when answering /changes


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Writes need `Authorization: Bearer <token>`; the editor it names becomes g.editor."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        secret = tokens.bearer_token()
        token = ApiToken.find(secret) if secret else None  # revoked and expired: not found
        if token is None:
            abort(401, "Send a valid API token as 'Authorization: Bearer <token>' "
                  "(make one with: flask --app app editor token NAME).")  # fmt: skip
        tokens.touch(token)
        g.editor = token.editor
        return view(*args, **kwargs)

    return wrapper


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nesting deep enough to exhaust the parser
        abort(400, "The JSON body is nested too deeply.")
    if data is None:
        abort(400, "Send a JSON object with Content-Type: application/json.")
    if not isinstance(data, dict):
        abort(400, "The JSON body must be an object.")
    return data


def int_arg(name: str, default: int | None, low: int = 0, high: int = MAX_ID) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and low <= int(raw) <= high):
        abort(400, f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


@bp.get("/articles")
def list_articles():
    return {"articles": [story.to_dict() for story in Article.listing()]}


@bp.post("/articles")
@token_required
@limiter.limit(write_limit)
def create_article():
    data = json_body()
    story = services.create_article(data.get("title"), data.get("slug"), data.get("body", ""))
    return story.to_dict(), 201


@bp.get("/articles/<slug>")
def get_article(slug: str):
    return services.get_article(slug).to_dict()


@bp.patch("/articles/<slug>")
@token_required
@limiter.limit(write_limit)
def edit_article(slug: str):
    story = services.get_article(slug)
    return services.edit_article(story, json_body()).to_dict()


@bp.get("/articles/<slug>/updates")
def list_updates(slug: str):
    """One page of a story's updates, newest first. An answer holds at most API_PAGE_MAX of
    them and MAX_UPDATES_BYTES of JSON (but always one); `next` asks for the rest."""
    story = services.get_article(slug)
    most = current_app.config["API_PAGE_MAX"]
    before = int_arg("before", None, low=1)
    asked = int_arg("limit", most, low=1, high=MAX_PAGE)
    limit = min(asked, most)
    found = story.current_updates(before, limit + 1)
    page = within_bytes(
        [update.to_dict() for update in found[:limit]],
        current_app.config["MAX_UPDATES_BYTES"],
        changes.wire_size,
    )
    more = len(page) < len(found)
    after = page[-1]["id"] if more else None
    return {
        "updates": page,
        "more": more,
        "next": url_for("api.list_updates", slug=slug, before=after, limit=asked) if more else None,
    }


def within_bytes(items: list[T], size: int, measure: Callable[[T], int]) -> list[T]:
    """The first of `items` whose sizes add up to at most `size`, and always the first one,
    whatever its size, so a client paging on always moves."""
    used = 0
    for count, item in enumerate(items):
        used += measure(item)
        if count and used > size:
            return items[:count]
    return items


@bp.get("/articles/<slug>/changes")
def list_changes(slug: str):
    story = services.get_article(slug)
    since = int_arg("since", 0)
    payloads = _changes_within(
        story, since, current_app.config["MAX_CATCH_UP"], current_app.config["MAX_CHANGES_BYTES"]
    )
    # `more`: the answer stopped at a limit before the story's latest; ask again from the
    # last seq it holds.
    more = bool(payloads) and payloads[-1]["seq"] < story.seq
    return {"seq": story.seq, "changes": payloads, "more": more}


def _changes_within(story: Article, since: int, count: int, size: int) -> list[dict[str, Any]]:
    """The changes after `since`, oldest first, at most `count` of them and `size` bytes of
    JSON (but always the first, whatever its size, so a client can always move on).

    Read a few at a time, so a story of large changes is never loaded whole to answer.
    """
    payloads: list[dict[str, Any]] = []
    used = 0
    while len(payloads) < count:
        batch = story.changes_since(since, limit=min(CHANGES_BATCH, count - len(payloads)))
        for change in batch:
            used += changes.wire_size(change.payload)
            if payloads and used > size:
                return payloads
            payloads.append(change.payload)
            since = change.seq
        if len(batch) < CHANGES_BATCH:
            break
    return payloads


@bp.post("/articles/<slug>/updates")
@token_required
@limiter.limit(write_limit)
def post_update(slug: str):
    story = services.get_article(slug)
    data = json_body()
    unknown = set(data) - POST_FIELDS
    if unknown:
        abort(422, f"Unknown field(s): {', '.join(sorted(unknown))}.")
    update = services.post_update(
        story,
        g.editor,
        body=data.get("body"),
        headline=data.get("headline"),
        key_event=data.get("key_event", False),
        pinned=data.get("pinned", False),
        idempotency_key=request.headers.get("Idempotency-Key"),
        draft=data.get("draft", False),
        publish_at=data.get("publish_at"),
        image=data.get("image"),
    )
    return update.to_dict(), 201


POST_FIELDS = {"body", "headline", "key_event", "pinned", "draft", "publish_at", "image"}


@bp.get("/articles/<slug>/drafts")
@token_required
def list_drafts(slug: str):
    story = services.get_article(slug)
    return {"updates": [update.to_dict() for update in services.unpublished(story)]}


@bp.get("/articles/<slug>/updates/<int:update_id>/revisions")
@token_required
def list_revisions(slug: str, update_id: int):
    story = services.get_article(slug)
    return {"revisions": [rev.to_dict() for rev in services.revisions(story, update_id)]}


@bp.post("/media")
@token_required
@limiter.limit(write_limit)
@upload_limit
def upload_media():
    upload = request.files.get("file")
    if upload is None:
        abort(400, "Send the image as multipart/form-data in a field named 'file'.")
    return services.upload_image(upload.stream, request.form.get("alt"), g.editor).to_dict(), 201


@bp.patch("/articles/<slug>/updates/<int:update_id>")
@token_required
@limiter.limit(write_limit)
def edit_update(slug: str, update_id: int):
    story = services.get_article(slug)
    return services.edit_update(story, update_id, g.editor, json_body()).to_dict()


@bp.delete("/articles/<slug>/updates/<int:update_id>")
@token_required
@limiter.limit(write_limit)
def delete_update(slug: str, update_id: int):
    services.delete_update(services.get_article(slug), update_id, g.editor)
    return "", 204


@bp.after_request
def no_store(response):
    """Reads change with every post; clients and proxies must not serve stale copies."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response
