"""Uploads cannot stall readers or fill the disk: decoding runs off the event loop under a
pixel cap read from the header, uploads have a rate limit of their own per editor, and
uploads no update uses are capped per editor and deleted after MEDIA_UNUSED_TTL."""

from __future__ import annotations

import io
import socket
import struct
import threading
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from PIL import Image, ImageFile
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from liveblog import media, scheduler, services, tokens
from liveblog.extensions import db
from liveblog.models import Media, utcnow
from tests.conftest import csrf_token
from tests.images import image_bytes, located_jpeg
from tests.liveserver import live_server_on_sqlite, wait_for

UPLOAD = "/api/media"
UPDATES = "/api/articles/election-night/updates"
COMPOSE = "/editor/articles/election-night"


def multipart(fields: dict) -> tuple[bytes, str]:
    boundary, body = encode_multipart(fields)
    return body, f"multipart/form-data; boundary={boundary}"


def upload(client, bearer, data: bytes | None = None, name: str = "photo.png"):
    body, content_type = multipart(
        {"file": FileStorage(io.BytesIO(data or image_bytes()), filename=name), "alt": "A fire"}
    )
    return client.post(UPLOAD, headers=bearer, data=body, content_type=content_type)


@pytest.fixture
def media_folder(app, tmp_path) -> Path:
    folder = tmp_path / "media"
    app.config["MEDIA_FOLDER"] = str(folder)
    return folder


def stored(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def large_png(size: tuple[int, int]) -> bytes:
    """Many pixels in a small file, as a hostile upload makes them: gradients compress well."""
    ramp = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGBA", [ramp, ramp.transpose(Image.Transpose.ROTATE_90), ramp, ramp])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that states its size and has no pixel data at all: only a header can be read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


# --- decoding stays off the event loop ---------------------------------------------------


def _send_upload(url: str, token: str, data: bytes, sent: threading.Event, done: list) -> None:
    """POST the upload on a raw socket, so the moment it is all sent is known."""
    body, content_type = multipart(
        {"file": FileStorage(io.BytesIO(data), filename="big.png"), "alt": "Big"}
    )
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(head.encode() + body)
        sent.set()
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    done.append(answer)


@pytest.mark.slow
def test_readers_are_answered_while_a_large_image_decodes(tmp_path):
    """A real gevent server: /healthz keeps answering, one request after another, after the
    upload was sent and before its answer came, so the decode did not hold the loop."""
    big = large_png((4800, 4800))  # 23 megapixels, just under the default cap, in ~100 KB
    sent, done = threading.Event(), []
    with live_server_on_sqlite(tmp_path, MEDIA_FOLDER=str(tmp_path / "media")) as (server, token):
        uploader = threading.Thread(target=_send_upload, args=(server.url, token, big, sent, done))
        uploader.start()
        assert sent.wait(30), "the upload was not sent"
        answered_during = 0
        with requests.Session() as probe:
            while not done:
                answer = probe.get(server.url + "/healthz", timeout=30)
                assert answer.status_code == 200
                if not done:
                    answered_during += 1
        uploader.join(60)
        assert done and done[0].startswith(b"HTTP/1.1 201"), done[:1] or server.log()
        # A refusal from the decoding thread is an answer, not a traceback in the log.
        broken = image_bytes("PNG")[:-200]
        form = {"file": ("cut.png", broken), "alt": (None, "Cut")}
        headers = {"Authorization": f"Bearer {token}"}
        refused = requests.post(server.url + UPLOAD, files=form, headers=headers, timeout=30)
        assert refused.status_code == 422 and "not a whole" in refused.json()["error"]
    assert "Traceback" not in server.log()
    assert answered_during >= 3, f"/healthz answered {answered_during} time(s) during the decode"


# --- the pixel cap, from the header ------------------------------------------------------


def test_the_pixel_cap_is_checked_from_the_header(app, client, bearer, media_folder):
    """Just over the default cap: refused by the size its header states. The file holds no
    pixels, so had it been decoded it would be refused as a broken image instead."""
    cap = app.config["MAX_IMAGE_PIXELS"]
    assert 12_000_000 < cap <= 24_000_000
    over = png_header_only(4900, 4900)
    assert cap < 4900 * 4900
    answer = upload(client, bearer, over)
    assert answer.status_code == 422
    message = answer.get_json()["error"]
    assert "4,900 × 4,900" in message and f"the limit is {cap:,}" in message, message
    assert stored(media_folder) == set()


def test_a_phone_photo_is_taken_and_a_jpeg_is_decoded_at_a_reduced_scale(
    client, bearer, media_folder, monkeypatch
):
    """A 12 MP photo passes the cap; its pixels are decoded at half size, the smallest scale
    that still gives the 1600-pixel copy, not at full size."""
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def recording_load(image):
        if image.format == "JPEG":
            decoded.append(image.size)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    answer = upload(client, bearer, located_jpeg(size=(4000, 3000)), name="IMG_0002.JPG")
    assert answer.status_code == 201, answer.get_json()
    assert (answer.get_json()["width"], answer.get_json()["height"]) == (1600, 1200)
    assert decoded and max(decoded) == (2000, 1500), decoded


# --- the upload rate limit --------------------------------------------------------------


def form_upload(client, token: str, with_image: bool):
    fields = {"csrf_token": token, "body": "The scene", "image_alt": "A street"}
    if with_image:
        fields["image"] = FileStorage(io.BytesIO(image_bytes("JPEG")), filename="scene.jpg")
    else:
        fields["image"] = FileStorage(io.BytesIO(b""), filename="")  # what a browser sends
    body, content_type = multipart(fields)
    return client.post(f"{COMPOSE}/updates", data=body, content_type=content_type)


@pytest.mark.config(RATELIMIT_ENABLED=True, UPLOAD_RATE_LIMIT="2 per hour")
def test_uploads_have_a_rate_limit_per_editor(app, client, auth, bearer, story, media_folder):
    assert upload(client, bearer).status_code == 201
    auth.login()
    token = csrf_token(client, COMPOSE)
    assert form_upload(client, token, with_image=True).status_code == 302
    # The count is the editor's, API and form together.
    refused = upload(client, bearer)
    assert refused.status_code == 429
    assert "Too many image uploads" in refused.get_json()["error"]
    assert "2 per hour" in refused.get_json()["error"]
    page = form_upload(client, token, with_image=True)
    assert page.status_code == 429
    assert "Too many image uploads" in page.get_data(as_text=True)
    # Posts without an image are not uploads, and other editors have their own count.
    assert form_upload(client, token, with_image=False).status_code == 302
    with app.app_context():
        bob = services.create_editor("bob", "another password")
        other = {"Authorization": f"Bearer {tokens.issue(bob)}"}
    assert upload(client, other).status_code == 201


# --- unused uploads: a cap per editor, and the clean-up ----------------------------------


def image_ids(client, bearer, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        answer = upload(client, bearer)
        assert answer.status_code == 201, answer.get_json()
        ids.append(answer.get_json()["id"])
    return ids


@pytest.mark.both_databases
@pytest.mark.config(MEDIA_UNUSED_LIMIT=2)
def test_an_editor_holds_only_so_many_unused_uploads(app, client, bearer, story, media_folder):
    first, _second = image_ids(client, bearer, 2)
    refused = upload(client, bearer)
    assert refused.status_code == 422
    message = refused.get_json()["error"]
    assert "2 uploaded images that no update uses" in message and "24 hours" in message
    assert len(stored(media_folder)) == 2
    # A draft uses its image too: there is room again.
    draft = client.post(
        UPDATES, json={"body": "Soon", "draft": True, "image": first}, headers=bearer
    )
    assert draft.status_code == 201
    assert upload(client, bearer).status_code == 201
    assert upload(client, bearer).status_code == 422


def _age(app, ids: list[int], by: timedelta) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(Media).where(Media.id.in_(ids)).values(created_at=utcnow() - by)
        )
        db.session.commit()


def _remaining(app) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(sa.select(Media.id)))


@pytest.fixture
def uploads(app, client, bearer, story, media_folder) -> dict[str, int]:
    """One upload in each situation an upload can be in, all made 25 hours ago but `fresh`."""
    names = ["unused", "published", "draft", "scheduled", "deleted", "replaced", "linked", "fresh"]
    ids = dict(zip(names, image_ids(client, bearer, len(names)), strict=True))

    def post(image: str, **fields) -> int:
        answer = client.post(
            UPDATES, json={"body": "x", "image": ids[image], **fields}, headers=bearer
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["id"]

    post("published")
    post("draft", draft=True)
    post("scheduled", publish_at=(utcnow() + timedelta(days=3)).isoformat())
    gone = post("deleted")
    assert client.delete(f"{UPDATES}/{gone}", headers=bearer).status_code == 204
    # Published with one image, then given another: the first stays in the change log.
    swapped = post("replaced")
    assert (
        client.patch(
            f"{UPDATES}/{swapped}", json={"image": ids["published"]}, headers=bearer
        ).status_code
        == 200
    )
    # Linked from a draft's earlier text only: its revision keeps the name.
    with app.app_context():
        link = f"[photo](/media/{db.session.get(Media, ids['linked']).name})"
    draft = client.post(UPDATES, json={"body": link, "draft": True}, headers=bearer)
    edit = client.patch(
        f"{UPDATES}/{draft.get_json()['id']}", json={"body": "no link"}, headers=bearer
    )
    assert edit.status_code == 200
    _age(app, [id_ for name, id_ in ids.items() if name != "fresh"], timedelta(hours=25))
    return ids


@pytest.mark.both_databases
def test_the_clean_up_command_deletes_only_what_nothing_uses(app, runner, uploads, media_folder):
    files_before = stored(media_folder)
    with app.app_context():
        unused_file = db.session.get(Media, uploads["unused"]).name
    result = runner.invoke(args=["media", "clean"])
    assert result.exit_code == 0, result.output
    assert "1 unused upload(s) deleted" in result.output
    assert _remaining(app) == set(uploads.values()) - {uploads["unused"]}
    assert stored(media_folder) == files_before - {unused_file}
    again = runner.invoke(args=["media", "clean"])
    assert "0 unused upload(s) deleted" in again.output


@pytest.mark.both_databases
def test_the_server_cleans_up_every_interval(app, client, bearer, uploads, media_folder):
    app.config["MEDIA_CLEAN_INTERVAL"] = 600
    now = utcnow()
    clock = lambda: now  # noqa: E731 - a clock the test moves
    loop = scheduler.Scheduler(app, clock)
    assert len(loop.clean_media()) == 1
    assert uploads["unused"] not in _remaining(app)
    # Within the interval nothing runs, even with a stale upload waiting.
    (late,) = image_ids(client, bearer, 1)
    _age(app, [late], timedelta(hours=25))
    now += timedelta(minutes=9)
    assert loop.clean_media() == []
    assert late in _remaining(app)
    now += timedelta(minutes=2)
    assert len(loop.clean_media()) == 1
    assert late not in _remaining(app)
    # Publishing scheduled updates goes on as before.
    assert loop.run_once() == []


@pytest.mark.slow
def test_a_running_server_deletes_unused_uploads(tmp_path):
    """The scheduler loop of a real server runs the clean-up by itself."""
    folder = tmp_path / "media"
    env = {"MEDIA_FOLDER": str(folder), "MEDIA_UNUSED_TTL": "0", "MEDIA_CLEAN_INTERVAL": "1"}
    with live_server_on_sqlite(tmp_path, **env) as (server, token):
        form = {"file": ("photo.png", image_bytes("PNG")), "alt": (None, "A fire")}
        headers = {"Authorization": f"Bearer {token}"}
        answer = requests.post(server.url + UPLOAD, files=form, headers=headers, timeout=30)
        assert answer.status_code == 201, answer.text
        image_url = server.url + answer.json()["url"]
        wait_for(lambda: requests.get(image_url, timeout=5).status_code == 404, what="clean-up")
        assert stored(folder) == set()


@pytest.mark.both_databases
def test_an_upload_attached_after_it_was_picked_stays(
    app, client, bearer, story, media_folder, monkeypatch
):
    """The delete checks again: an upload attached between the clean-up's pick and its
    delete is kept, row and file."""
    (image,) = image_ids(client, bearer, 1)
    _age(app, [image], timedelta(hours=25))
    with app.app_context():
        picked = media.unused_before(utcnow(), 10)
    assert picked == [image]
    answer = client.post(UPDATES, json={"body": "Now", "image": image}, headers=bearer)
    assert answer.status_code == 201
    monkeypatch.setattr(media, "unused_before", lambda *_: picked)
    with app.app_context():
        assert services.clean_media(utcnow()) == []
    assert image in _remaining(app)
    assert len(stored(media_folder)) == 1
