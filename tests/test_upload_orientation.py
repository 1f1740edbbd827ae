"""A photo whose EXIF says "rotate 90° to show" (how phones store portrait shots) is kept
upright: its pixels turned, the tag gone with the rest of the metadata, its width and
height those of the upright picture, small or shrunk."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

ORIENTATION = 0x0112
ROTATE_90_CLOCKWISE = 6  # EXIF: the picture is shown turned a quarter clockwise
RED, BLUE = (220, 30, 30), (30, 30, 220)


def sideways_jpeg(width: int, height: int) -> bytes:
    """Stored landscape, left half red and right half blue, tagged to be shown turned a
    quarter clockwise: upright, it is portrait with red on top and blue below."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[ORIENTATION] = ROTATE_90_CLOCKWISE
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(pixel, colour, strict=False))


@pytest.mark.parametrize(
    ("stored", "upright"),
    [((64, 48), (48, 64)), ((3200, 1600), (800, 1600))],
    ids=["small", "shrunk"],
)
def test_a_sideways_photo_is_stored_upright(app, client, bearer, tmp_path, stored, upright):
    app.config["MEDIA_FOLDER"] = str(tmp_path / "media")
    original = sideways_jpeg(*stored)
    assert Image.open(io.BytesIO(original)).getexif()[ORIENTATION] == ROTATE_90_CLOCKWISE
    boundary, body = encode_multipart(
        {"file": FileStorage(io.BytesIO(original), filename="IMG_0002.JPG"), "alt": "A queue"}
    )
    answer = client.post(
        "/api/media",
        headers=bearer,
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert answer.status_code == 201, answer.get_json()
    media = answer.get_json()
    assert (media["width"], media["height"]) == upright
    served = client.get(media["url"])
    data = served.get_data()
    served.close()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.size == upright
    assert ORIENTATION not in image.getexif()  # turned once, by us, not again by a browser
    width, height = image.size
    assert near(image.getpixel((width // 2, height // 8)), RED), "the top is not red"
    assert near(image.getpixel((width // 2, height * 7 // 8)), BLUE), "the bottom is not blue"
