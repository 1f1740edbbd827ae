"""Every kind of CHANGE a story can have, declared once with the shape of its payload.

The services build every CHANGE here (`build`), the tests check every payload they see
against the same declaration (`problems`), and `static/js/reader.js` has one handler per
kind in this table (a test holds it to that). A kind added here and forgotten elsewhere is
how a live page silently stops applying changes, so the three are tied together.
"""

from __future__ import annotations

import json
from typing import Any

from flask import render_template

from .models import Article, Update

# A field's allowed types; `None` in the tuple means the field may be null.
Shape = dict[str, tuple[type | None, ...]]

UPDATE_SHAPE: Shape = {
    "id": (int,),
    "headline": (str, None),
    "body": (str,),
    "html": (str,),
    "key_event": (bool,),
    "pinned": (bool,),
    "status": (str,),
    "publish_at": (str, None),
    "author": (str,),
    "published_at": (str,),
    "edited_at": (str, None),
    "seq": (int,),
    # {"url", "alt", "width", "height"} of the attached image, or null
    "image": (dict, None),
}

ARTICLE_SHAPE: Shape = {
    "slug": (str,),
    "title": (str,),
    "body": (str,),
    "html": (str,),
    "status": (str,),
    "seq": (int,),
    "created_at": (str,),
    "ended_at": (str, None),
}

# kind -> the payload's fields beside "article", "seq" and "type", each with its shape
# (a nested Shape) or its allowed types.
KINDS: dict[str, dict[str, Shape | tuple[type | None, ...]]] = {
    # An update was published: `html` is its whole rendered element, to insert as it is.
    "created": {"update": UPDATE_SHAPE, "html": (str,)},
    # A published update changed (text, key event, pin): `html` replaces its element.
    "edited": {"update": UPDATE_SHAPE, "html": (str,)},
    # A published update was deleted: readers remove the element.
    "deleted": {"update": {"id": (int,)}},
    # The story itself changed (title, introduction, live or ended).
    "story": {"story": ARTICLE_SHAPE},
}
UPDATE_KINDS = ("created", "edited", "deleted")


def render_element(update: Update) -> str:
    """The update's element as readers' pages show it; rendered once per change."""
    return render_template("_update.html", update=update, article=update.article).strip()


def build(kind: str, article: Article, seq: int, update: Update | None = None) -> dict[str, Any]:
    """The CHANGE payload for `kind`, exactly as it is logged, broadcast and replayed."""
    change: dict[str, Any] = {"article": article.slug, "seq": seq, "type": kind}
    if kind == "story":
        change["story"] = article.to_dict()
    elif kind == "deleted":
        change["update"] = {"id": update.id}
    elif kind in ("created", "edited"):
        change["update"] = update.to_dict()
        change["html"] = update.element
    else:
        raise ValueError(f"undeclared change kind {kind!r}")
    return change


def shape_problems(value: Any, shape: Shape, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    found = [f"{where} lacks {name}" for name in shape if name not in value]
    found += [f"{where} has undeclared {name}" for name in value if name not in shape]
    for name, allowed in shape.items():
        if name in value and not _allowed(value[name], allowed):
            found.append(f"{where}.{name} is {value[name]!r}")
    return found


def _allowed(value: Any, allowed: tuple[type | None, ...]) -> bool:
    if value is None:
        return None in allowed
    # bool is an int in Python; a flag must not pass for a number or the other way round
    return any(t is not None and type(value) is t for t in allowed)


def problems(change: Any) -> list[str]:
    """What is wrong with a CHANGE payload against its declared kind; empty when nothing."""
    if not isinstance(change, dict):
        return ["a change must be an object"]
    kind = change.get("type")
    if kind not in KINDS:
        return [f"undeclared change kind {kind!r}"]
    found = []
    if not isinstance(change.get("article"), str):
        found.append("article must be the story's slug")
    if type(change.get("seq")) is not int or change["seq"] < 1:
        found.append("seq must be a whole number of one or more")
    fields = KINDS[kind]
    extra = set(change) - {"article", "seq", "type", *fields}
    found += [f"undeclared field {name}" for name in sorted(extra)]
    for name, shape in fields.items():
        if name not in change:
            found.append(f"lacks {name}")
        elif isinstance(shape, dict):
            found += shape_problems(change[name], shape, name)
        elif not _allowed(change[name], shape):
            found.append(f"{name} is {change[name]!r}")
    return found


def wire_size(payload: dict[str, Any]) -> int:
    """The characters (about the bytes) a CHANGE takes as JSON: what the byte caps count."""
    return len(json.dumps(payload, separators=(",", ":")))
