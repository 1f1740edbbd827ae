"""Images made with Pillow for the tests: real files of each kind, and a located photo."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (64, 48), **save: object) -> bytes:
    out = io.BytesIO()
    # Noise, so that the file is as big as a photo and cutting it short loses pixels.
    image = Image.merge("RGB", [Image.effect_noise(size, 60)] * 3)
    if kind != "JPEG":
        image = image.convert("RGBA")
    image.save(out, kind, **save)
    return out.getvalue()


def located_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG whose EXIF names a camera and a GPS position, as phone photos do."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (40.0, 26.0, 46.0), 3: "E", 4: (49.0, 52.0, 1.0)}  # GPSInfo
    return image_bytes("JPEG", size, exif=exif.tobytes(), comment=b"taken at the source's home")
