"""Header reads for images and DICOM: dimensions and identifiers from the first bytes only.

Never decodes pixels. Each reader returns None when the bytes end before the header does,
so the caller can fetch a longer range; it raises MediaError when the header is broken.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.media import DicomInfo, ImageInfo

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


def read_dicom(head: bytes, complete: bool) -> DicomInfo | None:
    """Study, series and instance identifiers from the DICOM header (no pixel data)."""
    import pydicom  # noqa: PLC0415 - heavy import, only DICOM objects pay for it
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True)
            info = DicomInfo(
                study_instance_uid=_text(ds.get("StudyInstanceUID")),
                series_instance_uid=_text(ds.get("SeriesInstanceUID")),
                sop_instance_uid=_text(ds.get("SOPInstanceUID")),
                instance_number=_number(ds.get("InstanceNumber")),
                modality=_text(ds.get("Modality")),
                series_description=_text(ds.get("SeriesDescription")),
                rows=_number(ds.get("Rows")),
                columns=_number(ds.get("Columns")),
            )
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        if not complete:
            return None
        raise MediaError(ErrorCode.CORRUPT_MEDIA, f"DICOM header unreadable: {exc}") from exc
    if not complete and info.series_instance_uid is None:
        return None  # the identifiers may lie beyond the bytes read so far
    return info


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
