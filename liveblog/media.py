"""Images: checked by their content with Pillow, re-encoded without metadata, web-sized.

An upload is decoded whole (a truncated file fails here, not in a reader's browser), turned
upright by its EXIF orientation, shrunk to at most MEDIA_MAX_SIDE pixels a side and saved
afresh from its pixels alone, so that no EXIF (camera, GPS position), XMP or comment of the
original survives. Files get random names and never change, so they are cached for a year.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Flask, Response, current_app, request, send_from_directory
from PIL import Image, ImageOps, UnidentifiedImageError

bp = Blueprint("media", __name__)

# Pillow's format name -> how the copy is saved (GIFs keep their first frame, as PNG).
FORMATS = {"JPEG": ("JPEG", ".jpg"), "PNG": ("PNG", ".png"), "WEBP": ("WEBP", ".webp")}
FORMATS["GIF"] = FORMATS["PNG"]
# Room for the multipart framing and the other form fields around the file itself.
FORM_OVERHEAD = 256 * 1024
# Endpoints that take an upload: these get MAX_UPLOAD_BYTES, all others MAX_CONTENT_LENGTH.
UPLOAD_ENDPOINTS = {"api.upload_media", "editor.post_update"}
ONE_YEAR = 365 * 24 * 3600


class BadImage(ValueError):
    """Not an image we take; the message says why."""


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            if probe.width * probe.height > max_pixels:
                raise BadImage("the image has too many pixels")
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()  # decodes every pixel: a truncated file fails here
    except Image.DecompressionBombError as error:
        raise BadImage("the image has too many pixels") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise BadImage(
            "the file is not a whole JPEG, PNG, WebP or GIF image (it may be truncated)"
        ) from error
    if kind not in FORMATS:
        raise BadImage(f"{kind} images are not taken: send JPEG, PNG, WebP or GIF")
    image.format_name = kind  # type: ignore[attr-defined]
    return image


def _clean(image: Image.Image, max_side: int) -> Image.Image:
    """Upright, web-sized, and rebuilt from its pixels alone (no metadata at all)."""
    image = ImageOps.exif_transpose(image)
    mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
    image = image.convert(mode)
    image.thumbnail((max_side, max_side))
    return Image.frombytes(mode, image.size, image.tobytes())


def store(stream: IO[bytes], config: Any) -> tuple[str, int, int]:
    """Check and store an upload; its file name, width and height."""
    limit, folder = config["MAX_UPLOAD_BYTES"], config["MEDIA_FOLDER"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BadImage(f"the image is larger than {limit // (1024 * 1024)} MB")
    if not data:
        raise BadImage("the file is empty")
    image = _decode(data, config["MAX_IMAGE_PIXELS"])
    save_as, suffix = FORMATS[image.format_name]  # type: ignore[attr-defined]
    clean = _clean(image, config["MEDIA_MAX_SIDE"])
    if save_as == "JPEG" and clean.mode == "RGBA":
        clean = clean.convert("RGB")
    name = secrets.token_hex(16) + suffix
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    partial = path / f".{name}.part"
    clean.save(partial, save_as, quality=85)
    os.replace(partial, path / name)  # readers never see half a file
    return name, clean.width, clean.height


@bp.get("/media/<name>")
def serve(name: str) -> Response:
    response = send_from_directory(current_app.config["MEDIA_FOLDER"], name, max_age=ONE_YEAR)
    response.cache_control.immutable = True
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    # URL value preprocessors run before any before_request function, so the larger limit
    # is in place before the CSRF check reads the form.
    @app.url_value_preprocessor
    def _upload_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
        if endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = app.config["MAX_UPLOAD_BYTES"] + FORM_OVERHEAD
