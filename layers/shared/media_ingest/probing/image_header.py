"""Image headers: displayed width and height (EXIF orientation applied) from the first bytes.

Never decodes pixels. Returns None when the bytes end before the header does, so the
caller can fetch a longer range; raises MediaError when the header is broken.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.media import ImageInfo

# Headers claiming more than this are refused: no platform displays them, and the claim is
# more often hostile than real. Pixels are never allocated either way.
MAX_IMAGE_PIXELS = 1 << 30
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}


def read_image(head: bytes, complete: bool) -> ImageInfo | None:
    """Width and height as displayed (EXIF orientation applied) from the image header."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we never decode; the size check below is ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(head))
            width, height = image.size
            orientation = _orientation(image)
            fmt = (image.format or "unknown").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        if not complete:
            return None
        raise MediaError(ErrorCode.CORRUPT_MEDIA, f"image header unreadable: {exc}") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if width <= 0 or height <= 0:
        raise MediaError(ErrorCode.CORRUPT_MEDIA, "image header gives no size")
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"image header claims {width}x{height} pixels, over the {MAX_IMAGE_PIXELS} limit",
        )
    if orientation in _TRANSPOSED:
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt, orientation=orientation)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
