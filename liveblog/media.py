"""Images: checked by their content with Pillow, re-encoded without metadata, web-sized.

An upload is decoded whole (a truncated file fails here, not in a reader's browser), turned
upright by its EXIF orientation, shrunk to at most MEDIA_MAX_SIDE pixels a side and saved
afresh from its pixels alone, so that no EXIF (camera, GPS position), XMP or comment of the
original survives. Files get random names and never change, so they are cached for a year.

Decoding is the one CPU- and memory-heavy thing the server does for a request. Its size is
read from the header before any pixel is decoded (MAX_IMAGE_PIXELS), JPEGs are decoded at
the smallest scale that still gives MEDIA_MAX_SIDE, and the work runs one image at a time
per process in a real thread, so the event loop that serves every reader keeps answering
(Pillow lets go of the GIL while it decodes and resizes).

Uploads that no update uses are capped per editor (MEDIA_UNUSED_LIMIT) and deleted once
MEDIA_UNUSED_TTL has passed (`services.clean_media`): see `unused()` for what counts as used.
"""

from __future__ import annotations

import io
import math
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, g, request, send_from_directory
from flask_login import current_user
from PIL import Image, ImageOps, UnidentifiedImageError

from .extensions import configured_limit, db, limiter, socketio
from .models import Article, Change, Media, Revision, Update

bp = Blueprint("media", __name__)

# Pillow's format name -> how the copy is saved (GIFs keep their first frame, as PNG).
FORMATS = {"JPEG": ("JPEG", ".jpg"), "PNG": ("PNG", ".png"), "WEBP": ("WEBP", ".webp")}
FORMATS["GIF"] = FORMATS["PNG"]
# Room for the multipart framing and the other form fields around the file itself.
FORM_OVERHEAD = 256 * 1024
# Endpoints that take an upload: these get MAX_UPLOAD_BYTES, all others MAX_CONTENT_LENGTH.
UPLOAD_ENDPOINTS = {"api.upload_media", "editor.post_update"}
ONE_YEAR = 365 * 24 * 3600
KEY = "liveblog.media"
T = TypeVar("T")


class Refused(ValueError):
    """An upload we do not take; the message says why."""


class BadImage(Refused):
    """Not an image we take; the message says why."""


# --- decoding, off the event loop -------------------------------------------------------


class Decoder:
    """Runs image work one call at a time for this process.

    Under gevent, in a pool of one real thread: the greenlet that asked waits, every other
    one keeps running. Under threads, a lock is enough: each request has its thread already.
    One at a time bounds the memory decoding takes to that of the largest image allowed.
    """

    def __init__(self, gevent: bool) -> None:
        self.gevent = gevent
        self._pool: Any = None  # made on first use, on the hub of the serving thread
        self._lock = threading.Lock()

    def run(self, work: Callable[..., T], *args: Any) -> T:
        if not self.gevent:
            with self._lock:
                return work(*args)
        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(1)
        result, error = self._pool.apply(_outcome, (work, args))
        if error is not None:
            raise error
        return result


def _outcome(work: Callable[..., T], args: tuple[Any, ...]) -> tuple[T | None, Exception | None]:
    """The pool prints a traceback for anything raised in its thread: a refused image is
    no error of ours, so the exception travels back as a value and is raised by the caller."""
    try:
        return work(*args), None
    except Exception as error:
        return None, error


def _check_header(data: bytes, max_pixels: int) -> None:
    """Refuse by format and size as the header states them, before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind, (width, height) = probe.format, probe.size
    except Image.DecompressionBombError as error:
        raise BadImage(f"the image has far too many pixels; the limit is {max_pixels:,}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise BadImage(
            "the file is not a whole JPEG, PNG, WebP or GIF image (it may be truncated)"
        ) from error
    if kind not in FORMATS:
        raise BadImage(f"{kind} images are not taken: send JPEG, PNG, WebP or GIF")
    if width * height > max_pixels:
        raise BadImage(
            f"the image is {width:,} × {height:,} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,}: scale it down and send it again"
        )


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The size the stored copy will have (the long side at most `max_side`)."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _decode(data: bytes, max_side: int) -> Image.Image:
    """Every pixel decoded (a truncated file fails here); a JPEG at the smallest scale
    (1/2, 1/4, 1/8) that is still at least as large as the copy to keep."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data))
        kind = image.format
        if kind == "JPEG":
            image.draft(None, _fit(image.size, max_side))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise BadImage(
            "the file is not a whole JPEG, PNG, WebP or GIF image (it may be truncated)"
        ) from error
    image.format_name = kind  # type: ignore[attr-defined]
    return image


def _clean(image: Image.Image, max_side: int) -> Image.Image:
    """Upright, web-sized, and rebuilt from its pixels alone (no metadata at all).

    Converted to the mode it is kept in before it is shrunk, so that a palette is resized
    smoothly and not pixel by pixel; turned only once small, so that the copy it takes is small.
    """
    mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    image.thumbnail((max_side, max_side))
    image = ImageOps.exif_transpose(image)
    return Image.frombytes(mode, image.size, image.tobytes())


def _process(data: bytes, max_side: int) -> tuple[bytes, str, int, int]:
    """Decode, clean and encode one image, all in memory: bytes in, bytes out, as it runs in
    a thread; the file's contents, suffix, width and height."""
    image = _decode(data, max_side)
    save_as, suffix = FORMATS[image.format_name]  # type: ignore[attr-defined]
    clean = _clean(image, max_side)
    if save_as == "JPEG" and clean.mode == "RGBA":
        clean = clean.convert("RGB")
    out = io.BytesIO()
    clean.save(out, save_as, quality=85)
    return out.getvalue(), suffix, clean.width, clean.height


def _write(content: bytes, suffix: str, folder: str) -> str:
    name = secrets.token_hex(16) + suffix
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    partial = path / f".{name}.part"
    partial.write_bytes(content)
    os.replace(partial, path / name)  # readers never see half a file
    return name


def store(stream: IO[bytes], config: Any) -> tuple[str, int, int]:
    """Check and store an upload; its file name, width and height."""
    limit = config["MAX_UPLOAD_BYTES"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BadImage(f"the image is larger than {limit // (1024 * 1024)} MB")
    if not data:
        raise BadImage("the file is empty")
    _check_header(data, config["MAX_IMAGE_PIXELS"])
    decoder: Decoder = current_app.extensions[KEY]
    content, suffix, width, height = decoder.run(_process, data, config["MEDIA_MAX_SIDE"])
    return _write(content, suffix, config["MEDIA_FOLDER"]), width, height


# --- what is in use, and how many unused an editor may hold ------------------------------


def _unreferenced() -> sa.ColumnElement[bool]:
    """No update points at the upload: published, draft, scheduled or deleted alike (a
    deleted update keeps its image, and its history is still shown to editors)."""
    return ~sa.exists().where(Update.image_id == Media.id)


def _unmentioned() -> sa.ColumnElement[bool]:
    """No text kept names the file: not the change log, which readers catching up and API
    clients replay (an image an edit replaced stays there), nor a body or a revision."""
    texts = (sa.cast(Change.payload, sa.Text), Update.body, Revision.body, Article.body)
    return sa.and_(*(~sa.exists().where(text.contains(Media.name)) for text in texts))


def unused() -> sa.ColumnElement[bool]:
    """An upload nothing in the database can lead a reader or an editor to."""
    return sa.and_(_unreferenced(), _unmentioned())


def _count(query: sa.Select[Any]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def check_room(editor_id: int, config: Any) -> None:
    """Refuse an upload while the editor holds MEDIA_UNUSED_LIMIT uploads nothing uses.

    The cheap test (no update points at them) settles it below the limit; only at the
    limit are the texts searched for them.
    """
    limit = config["MEDIA_UNUSED_LIMIT"]
    if not limit:
        return
    mine = sa.select(Media.id).where(Media.uploaded_by_id == editor_id, _unreferenced())
    if _count(mine.limit(limit)) < limit or _count(mine.where(_unmentioned()).limit(limit)) < limit:
        return
    hours = f"{config['MEDIA_UNUSED_TTL'] / 3600:g}"
    raise Refused(
        f"you have {limit} uploaded images that no update uses, the most allowed: attach "
        f"them to updates, or wait, as unused uploads are deleted {hours} hours after upload"
    )


def unused_before(moment: Any, limit: int) -> list[int]:
    """Ids of uploads made before `moment` that nothing uses, oldest first."""
    query = sa.select(Media.id).where(Media.created_at < moment, unused())
    return list(db.session.scalars(query.order_by(Media.id).limit(limit)))


def remove_files(names: list[str], folder: str) -> None:
    for name in names:
        (Path(folder) / name).unlink(missing_ok=True)


# --- routes and limits ----------------------------------------------------------------


def _uploader() -> str:
    """Upload counts are kept per editor: by token (g.editor) or by signed-in session."""
    editor = g.get("editor") or current_user
    return f"upload:{editor.id}"


def _no_file() -> bool:
    # A browser sends an empty, nameless file part when none was chosen: not an upload.
    return not any(request.files.values())


def _too_many() -> str:
    return (
        f"Too many image uploads: the limit is {current_app.config['UPLOAD_RATE_LIMIT']} "
        "per editor. Wait a while and send it again."
    )


# One count per editor, shared by the API and the compose form, for requests with a file.
upload_limit = limiter.shared_limit(
    configured_limit("UPLOAD_RATE_LIMIT"),
    scope="upload",
    key_func=_uploader,
    exempt_when=_no_file,
    error_message=_too_many,
)


@bp.get("/media/<name>")
def serve(name: str) -> Response:
    response = send_from_directory(current_app.config["MEDIA_FOLDER"], name, max_age=ONE_YEAR)
    response.cache_control.immutable = True
    return response


def init_app(app: Flask) -> None:
    """Call after `socketio.init_app`, which settles whether this process runs on gevent."""
    app.register_blueprint(bp)
    app.extensions[KEY] = Decoder(gevent=socketio.async_mode.startswith("gevent"))

    # URL value preprocessors run before any before_request function, so the larger limit
    # is in place before the CSRF check reads the form.
    @app.url_value_preprocessor
    def _upload_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
        if endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = app.config["MAX_UPLOAD_BYTES"] + FORM_OVERHEAD
