"""Images: checked by content, stripped of metadata, web-sized, served with long caching."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.images import image_bytes, located_jpeg

UPLOAD = "/api/media"
WHOLE = located_jpeg(size=(400, 300))
HALF_A_JPEG = WHOLE[: len(WHOLE) // 2]


def multipart(fields: dict) -> dict:
    """The request body made here, as a browser makes it: the test client spools a large
    body to a temporary file that it never closes."""
    boundary, body = encode_multipart(fields)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(client, bearer, data: bytes, name: str = "photo.png", alt: str | None = "A fire"):
    form = {"file": FileStorage(io.BytesIO(data), filename=name)}
    if alt is not None:
        form["alt"] = alt
    return client.post(UPLOAD, headers=bearer, **multipart(form))


@pytest.fixture
def media_folder(app, tmp_path):
    folder = tmp_path / "media"
    app.config["MEDIA_FOLDER"] = str(folder)
    return folder


def fetch(client, url: str):
    """A served file's response, its body read and its file closed."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def stored_files(folder) -> list:
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.both_databases
@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP", "GIF"])
def test_each_kind_is_taken_and_served(client, bearer, media_folder, kind):
    answer = upload(client, bearer, image_bytes(kind), name="whatever.bin")
    assert answer.status_code == 201, answer.get_json()
    image = answer.get_json()
    assert (image["width"], image["height"], image["alt"]) == (64, 48, "A fire")
    served = fetch(client, image["url"])
    assert served.status_code == 200
    assert "max-age=31536000" in served.headers["Cache-Control"]
    assert "immutable" in served.headers["Cache-Control"]
    assert Image.open(io.BytesIO(served.data)).size == (64, 48)


def test_metadata_is_stripped_and_large_images_are_shrunk(client, bearer, media_folder):
    original = located_jpeg(size=(3200, 1600))
    assert Image.open(io.BytesIO(original)).getexif(), "the test photo has EXIF to strip"
    image = upload(client, bearer, original, name="IMG_0001.JPG").get_json()
    assert (image["width"], image["height"]) == (1600, 800)
    data = fetch(client, image["url"]).data
    stored = Image.open(io.BytesIO(data))
    assert not stored.getexif()
    assert b"PhoneMaker" not in data and b"source's home" not in data
    assert "comment" not in stored.info and "exif" not in stored.info


@pytest.mark.parametrize(
    ("data", "name", "alt", "message"),
    [
        (b"just some text, not an image", "photo.png", "x", "not a whole JPEG"),
        (HALF_A_JPEG, "cut.jpg", "x", "not a whole JPEG"),
        (image_bytes("BMP"), "old.bmp", "x", "BMP images are not taken"),
        (image_bytes("PNG"), "photo.png", None, "alt text"),
        (image_bytes("PNG"), "photo.png", "   ", "alt text must not be empty"),
        (b"", "empty.png", "x", "empty"),
    ],
)
def test_bad_uploads_store_nothing(client, bearer, media_folder, data, name, alt, message):
    answer = upload(client, bearer, data, name=name, alt=alt)
    assert answer.status_code == 422
    assert message in answer.get_json()["error"]
    assert stored_files(media_folder) == []


def test_uploads_have_their_own_size_limit(app, client, bearer, media_folder):
    app.config["MAX_UPLOAD_BYTES"] = 400_000
    big = image_bytes("PNG", size=(800, 800), compress_level=0)  # ~2.5 MB uncompressed
    assert len(big) > 400_000
    answer = upload(client, bearer, big)
    assert answer.status_code in (413, 422)
    assert stored_files(media_folder) == []
    # A file larger than MAX_CONTENT_LENGTH but within the upload limit is taken...
    app.config["MAX_UPLOAD_BYTES"] = 10 * 1024 * 1024
    assert len(big) > app.config["MAX_CONTENT_LENGTH"]
    assert upload(client, bearer, big).status_code == 201
    # ...while every other route keeps the small limit.
    padding = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    other = client.post("/api/articles", json={"title": padding}, headers=bearer)
    assert other.status_code == 413


def test_uploading_needs_a_token_and_a_file(client, bearer, media_folder):
    assert upload(client, {}, image_bytes()).status_code == 401
    no_file = client.post(UPLOAD, data={"alt": "x"}, headers=bearer)
    assert no_file.status_code == 400
    assert stored_files(media_folder) == []


@pytest.mark.both_databases
def test_an_update_carries_its_image(client, bearer, story, media_folder):
    image = upload(client, bearer, image_bytes("PNG")).get_json()
    url = "/api/articles/election-night/updates"
    update = client.post(url, json={"body": "See", "image": image["id"]}, headers=bearer)
    assert update.status_code == 201
    assert update.get_json()["image"] == {
        k: image[k] for k in ("url", "alt", "width", "height", "id")
    }
    page = client.get("/articles/election-night").get_data(as_text=True)
    assert f'<img src="{image["url"]}" alt="A fire" width="64" height="48"' in page
