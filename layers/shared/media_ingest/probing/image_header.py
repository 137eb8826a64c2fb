"""Image headers: displayed width and height (EXIF orientation applied) from header bytes.

Never decodes pixels: the size a header declares is checked before anything else is read,
and EXIF is read only where Pillow finds it without loading the image (a PNG's eXIf chunk
after the image data would make `getexif()` decode all of it: 1 GB for a 224 KB PNG of
32000x32000 1-bit pixels). Only the formats the sniffer accepts as images are tried.
Reads through a file (probing/object_file.py fetches what is read); raises MediaError when
the header is broken.
"""

from __future__ import annotations

import warnings
from typing import IO

from PIL import Image, UnidentifiedImageError

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.media import ImageInfo

# Headers claiming more than this are refused: no platform displays them, and the claim is
# more often hostile than real. Pixels are never allocated either way.
MAX_IMAGE_PIXELS = 1 << 30
# Pillow's names of the formats sniffer.py calls images (HEIF/HEIC has no Pillow plugin).
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "AVIF")
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}
# What Pillow raises for a header it cannot read (RuntimeError: its AVIF decoder's
# "Failed to decode image", for a container whose items are broken).
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, RuntimeError)


def read_image(data: IO[bytes]) -> ImageInfo:
    """Width and height as displayed (EXIF orientation applied) from the image header."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we never decode; the size check below is ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(data, formats=FORMATS)
            width, height = image.size
            _check_size(width, height)
            orientation = _orientation(image)
            fmt = (image.format or "unknown").lower()
    except _UNREADABLE as exc:
        raise MediaError(ErrorCode.CORRUPT_MEDIA, f"image header unreadable: {exc}") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if orientation in _TRANSPOSED:
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt, orientation=orientation)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(ErrorCode.CORRUPT_MEDIA, "image header gives no size")
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"image header claims {width}x{height} pixels, over the {MAX_IMAGE_PIXELS} limit",
        )


def _orientation(image: Image.Image) -> int:
    # Pillow's PNG reader loads (decodes) the whole image to look for an eXIf chunk it has
    # not met before the image data; one there is ignored rather than paid for.
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (*_UNREADABLE, TypeError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
