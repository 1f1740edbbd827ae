"""The write path: validation, seq allocation, the change log, and broadcasting after commit."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from liveblog import services
from liveblog.extensions import db
from liveblog.models import Article, Change, Editor, Update
from liveblog.relay import relay


@pytest.fixture
def ctx(app, editor, story):
    """Inside an app context, with the story and its editor loaded."""
    with app.app_context():
        yield db.session.get(Article, story.id), db.session.get(Editor, editor.id)


@pytest.fixture
def published(monkeypatch):
    """Every CHANGE the services hand to the broadcaster, in the order handed."""
    sent: list[dict] = []
    original = relay.publish
    monkeypatch.setattr(relay, "publish", lambda change: (sent.append(change), original(change)))
    return sent


def log(article: Article) -> list[tuple[int, str, int]]:
    rows = db.session.execute(
        sa.select(Change.seq, Change.type, Change.update_id)
        .where(Change.article_id == article.id)
        .order_by(Change.seq)
    )
    return [tuple(row) for row in rows]


@pytest.mark.both_databases
def test_each_change_takes_the_next_seq(ctx, published):
    article, editor = ctx
    first = services.post_update(article, editor, "First", headline="One")
    second = services.post_update(article, editor, "Second", key_event=True)
    services.edit_update(article, first.id, editor, {"body": "First, corrected"})
    services.delete_update(article, second.id, editor)

    assert log(article) == [
        (1, "created", first.id),
        (2, "created", second.id),
        (3, "edited", first.id),
        (4, "deleted", second.id),
    ]
    assert db.session.get(Article, article.id).seq == 4
    assert [change["seq"] for change in published] == [1, 2, 3, 4]
    assert published[2]["update"]["body"] == "First, corrected"
    assert published[2]["update"]["edited_at"] is not None
    assert published[3]["update"] == {"id": second.id}


@pytest.mark.both_databases
def test_broadcast_payload_is_the_logged_change_and_the_api_shape(ctx, published):
    article, editor = ctx
    update = services.post_update(article, editor, "Hello *world*", headline="Hi")
    stored = db.session.scalar(sa.select(Change).where(Change.seq == 1))
    assert published == [stored.payload]
    assert stored.payload == {
        "article": "election-night",
        "seq": 1,
        "type": "created",
        "update": update.to_dict(),
        "html": update.element,
    }
    assert stored.payload["update"]["html"] == "<p>Hello <em>world</em></p>"
    assert stored.payload["html"].startswith(f'<article class="update" id="update-{update.id}"')
    assert "<p>Hello <em>world</em></p>" in stored.payload["html"]
    assert stored.payload["update"]["author"] == "alice"


@pytest.mark.both_databases
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body": ""}, "body must not be empty"),
        ({"body": "   \n "}, "body must not be empty"),
        ({"body": "x" * 20_001}, "the limit is 20,000"),
        ({"body": 42}, "body must be a string"),
        ({"body": "ok", "headline": "h" * 201}, "headline is 201"),
        ({"body": "ok", "headline": ["list"]}, "headline must be a string"),
        ({"body": "ok", "key_event": "yes"}, "key_event must be true or false"),
        ({"body": "ok", "pinned": 1}, "pinned must be true or false"),
    ],
)
def test_invalid_update_writes_nothing(ctx, published, fields, message):
    article, editor = ctx
    with pytest.raises(services.Invalid, match=message):
        services.post_update(article, editor, **fields)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Update)) == 0
    assert log(article) == []
    assert db.session.get(Article, article.id).seq == 0
    assert published == []


@pytest.mark.both_databases
def test_edit_or_delete_of_a_missing_update_gives_the_seq_back(ctx, app, published):
    article, editor = ctx
    update = services.post_update(article, editor, "Kept")
    other = services.create_article("Another story")
    with pytest.raises(services.NotFound):
        services.edit_update(article, update.id + 100, editor, {"body": "x"})
    with pytest.raises(services.NotFound):  # an update addressed under another story's slug
        services.delete_update(other, update.id, editor)
    services.delete_update(article, update.id, editor)
    with pytest.raises(services.NotFound):  # already deleted
        services.edit_update(article, update.id, editor, {"body": "back from the dead"})
    assert [seq for seq, _, _ in log(article)] == [1, 2]
    assert db.session.get(Article, other.id).seq == 0
    assert [change["seq"] for change in published] == [1, 2]


def test_edit_rejects_unknown_and_empty_changes(ctx):
    article, editor = ctx
    update = services.post_update(article, editor, "Body")
    with pytest.raises(services.Invalid, match="unknown field"):
        services.edit_update(article, update.id, editor, {"author": "mallory"})
    with pytest.raises(services.Invalid, match="nothing to change"):
        services.edit_update(article, update.id, editor, {})
    assert db.session.get(Article, article.id).seq == 1


@pytest.mark.both_databases
def test_same_idempotency_key_publishes_once(ctx, published):
    article, editor = ctx
    first = services.post_update(article, editor, "Once", idempotency_key="k-1")
    again = services.post_update(article, editor, "Once", idempotency_key="k-1")
    assert again.id == first.id
    assert db.session.get(Article, article.id).seq == 1
    assert len(published) == 1


@pytest.mark.both_databases
def test_pinning_one_update_unpins_the_other_as_its_own_change(ctx, published):
    article, editor = ctx
    first = services.post_update(article, editor, "First", pinned=True)
    second = services.post_update(article, editor, "Second", pinned=True)
    assert db.session.get(Update, first.id).pinned is False
    assert db.session.get(Update, second.id).pinned is True
    # seq 2 is the new update, seq 3 the unpinning of the first; sent in seq order.
    assert [(c["seq"], c["type"], c["update"]["id"]) for c in published] == [
        (1, "created", first.id),
        (2, "created", second.id),
        (3, "edited", first.id),
    ]
    assert published[2]["update"]["pinned"] is False


@pytest.mark.both_databases
def test_concurrent_posts_get_seqs_without_gap_or_duplicate(app, editor, story):
    """Many threads posting at once to one story: seqs 1..N, and no 'database is locked'."""
    threads, per_thread = 8, 6
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def poster(n: int) -> None:
        try:
            with app.app_context():
                article = db.session.get(Article, story.id)
                author = db.session.get(Editor, editor.id)
                start.wait()
                for i in range(per_thread):
                    services.post_update(article, author, f"thread {n} post {i}")
        except BaseException as error:  # collected and re-raised below
            errors.append(error)

    workers = [threading.Thread(target=poster, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    with app.app_context():
        article = db.session.get(Article, story.id)
        assert [seq for seq, _, _ in log(article)] == list(range(1, threads * per_thread + 1))
        assert article.seq == threads * per_thread
        seqs = db.session.scalars(sa.select(Update.seq).where(Update.article_id == article.id))
        assert sorted(seqs) == list(range(1, threads * per_thread + 1))


def test_create_article_generates_a_free_slug(app):
    with app.app_context():
        first = services.create_article("Storm hits coast")
        second = services.create_article("Storm hits coast!")
        third = services.create_article("Ünïcode — storm")
        assert (first.slug, second.slug, third.slug) == (
            "storm-hits-coast",
            "storm-hits-coast-2",
            "unicode-storm",
        )
        assert first.status == "live" and first.seq == 0


@pytest.mark.parametrize("slug", ["Upper", "two--hyphens", "-lead", "sp ace", "x" * 81, 7])
def test_create_article_rejects_bad_slugs(app, slug):
    with app.app_context(), pytest.raises(services.Invalid, match="slug"):
        services.create_article("Title", slug=slug)


def test_create_article_with_a_taken_slug_conflicts(app, story):
    with app.app_context(), pytest.raises(services.Conflict):
        services.create_article("Other", slug="election-night")


def test_edit_article_validates_status_and_renders_body(app, story):
    with app.app_context():
        article = db.session.get(Article, story.id)
        with pytest.raises(services.Invalid, match="status"):
            services.edit_article(article, {"status": "paused"})
        services.edit_article(article, {"status": "ended", "body": "**Over**"})
        article = db.session.get(Article, story.id)
        assert (article.status, article.html) == ("ended", "<p><strong>Over</strong></p>")


def test_editor_passwords_are_hashed(app):
    with app.app_context():
        editor = services.create_editor("bob", "a long password")
        assert "a long password" not in editor.password_hash
        assert editor.check_password("a long password")
        assert not editor.check_password("wrong")
        with pytest.raises(services.Invalid, match="at least 8"):
            services.create_editor("carol", "short")
        with pytest.raises(services.Conflict):
            services.create_editor("bob", "another long one")


def test_pinning_or_flagging_is_not_an_edit_of_the_text(ctx):
    article, editor = ctx
    update = services.post_update(article, editor, "Text")
    services.edit_update(article, update.id, editor, {"pinned": True, "key_event": True})
    assert db.session.get(Update, update.id).edited_at is None
    services.edit_update(article, update.id, editor, {"headline": "Now with a headline"})
    assert db.session.get(Update, update.id).edited_at is not None
