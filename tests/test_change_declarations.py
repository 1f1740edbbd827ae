"""The CHANGE declarations: what each kind's payload holds, and every way a payload can be wrong.

A check that lets a wrong payload through is how a broken emitter passes the suite, so each
refusal is asserted with its own message.
"""

from __future__ import annotations

import json

import pytest

from liveblog import changes, services
from liveblog.extensions import db
from liveblog.models import Article, Editor, Update


def post(app, editor, **fields) -> int:
    with app.app_context():
        story = Article.by_slug("election-night")
        author = db.session.get(Editor, editor.id)
        return services.post_update(story, author, "Polls *close*", **fields).id


def built(app, kind: str, update_id: int | None = None) -> dict:
    with app.app_context():
        story = Article.by_slug("election-night")
        update = db.session.get(Update, update_id) if update_id else None
        change = changes.build(kind, story, 7, update)
        return json.loads(json.dumps(change))  # as it goes over the wire


def test_each_kind_is_built_with_exactly_its_declared_fields(app, editor, story):
    update_id = post(app, editor, headline="Turnout")
    for kind in ("created", "edited"):
        change = built(app, kind, update_id)
        assert sorted(change) == ["article", "html", "seq", "type", "update"]
        assert (change["article"], change["seq"], change["type"]) == ("election-night", 7, kind)
        assert change["update"]["id"] == update_id
        assert change["update"]["headline"] == "Turnout"
        assert (
            change["html"].startswith("<article") and f'id="update-{update_id}"' in change["html"]
        )
        assert changes.problems(change) == []
    deleted = built(app, "deleted", update_id)
    assert deleted == {
        "article": "election-night",
        "seq": 7,
        "type": "deleted",
        "update": {"id": update_id},
    }
    assert changes.problems(deleted) == []
    story_change = built(app, "story")
    assert sorted(story_change) == ["article", "seq", "story", "type"]
    assert story_change["story"]["title"] == "Election night"
    assert changes.problems(story_change) == []


def test_the_element_is_the_template_rendered_once(app, editor, story):
    update_id = post(app, editor)
    with app.test_request_context():
        update = db.session.get(Update, update_id)
        element = changes.render_element(update)
        assert element == update.element
        assert element == element.strip() and "<em>close</em>" in element
        assert f'href="/articles/election-night/updates/{update_id}"' in element


def test_an_undeclared_kind_is_refused_when_built(app, story):
    with app.app_context(), pytest.raises(ValueError, match="undeclared change kind 'moved'"):
        changes.build("moved", Article.by_slug("election-night"), 1)


def valid(**overrides) -> dict:
    change = {
        "article": "election-night",
        "seq": 3,
        "type": "story",
        "story": {
            "slug": "election-night",
            "title": "Election night",
            "body": "Intro",
            "html": "<p>Intro</p>",
            "status": "live",
            "seq": 3,
            "created_at": "2026-01-01T00:00:00Z",
            "ended_at": None,
        },
    }
    change.update(overrides)
    return change


def test_a_valid_payload_has_no_problems():
    assert changes.problems(valid()) == []
    assert (
        changes.problems({"article": "s", "seq": 1, "type": "deleted", "update": {"id": 4}}) == []
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ([], ["a change must be an object"]),
        ({"type": "moved"}, ["undeclared change kind 'moved'"]),
        ({"seq": 1}, ["undeclared change kind None"]),
        (valid(article=5), ["article must be the story's slug"]),
        (valid(seq=0), ["seq must be a whole number of one or more"]),
        (valid(seq=True), ["seq must be a whole number of one or more"]),
        (valid(seq="3"), ["seq must be a whole number of one or more"]),
        (valid(zeta=1, alpha=2), ["undeclared field alpha", "undeclared field zeta"]),
        ({"article": "s", "seq": 1, "type": "story"}, ["lacks story"]),
        (valid(story="x"), ["story is not an object"]),
        (
            {"article": "s", "seq": 1, "type": "deleted", "update": {"id": 4, "body": "x"}},
            ["update has undeclared body"],
        ),
        ({"article": "s", "seq": 1, "type": "deleted", "update": {}}, ["update lacks id"]),
        (
            {"article": "s", "seq": 1, "type": "deleted", "update": {"id": True}},
            ["update.id is True"],
        ),
        (
            {"article": "s", "seq": 1, "type": "deleted", "update": {"id": None}},
            ["update.id is None"],
        ),
    ],
)
def test_each_wrong_payload_is_named(change, expected):
    assert changes.problems(change) == expected


def test_a_top_level_field_of_the_wrong_type_is_named():
    update = {
        "id": 1,
        "headline": None,
        "body": "b",
        "html": "<p>b</p>",
        "key_event": False,
        "pinned": False,
        "status": "published",
        "publish_at": None,
        "author": "alice",
        "published_at": "2026-01-01T00:00:00Z",
        "edited_at": None,
        "seq": 2,
        "image": None,
    }
    change = {"article": "s", "seq": 2, "type": "created", "update": update, "html": 5}
    assert changes.problems(change) == ["html is 5"]
    assert changes.problems({**change, "html": None}) == ["html is None"]
    assert changes.problems({**change, "html": "<article></article>"}) == []
    # nullable fields take None; a flag is not a number, nor a number a flag
    assert changes.problems({**change, "html": "x", "update": {**update, "key_event": 1}}) == [
        "update.key_event is 1"
    ]
    assert changes.problems({**change, "html": "x", "update": {**update, "headline": 3}}) == [
        "update.headline is 3"
    ]


def test_wire_size_counts_compact_json():
    assert changes.wire_size({"a": [1, 2], "b": "é"}) == len('{"a":[1,2],"b":"\\u00e9"}')
