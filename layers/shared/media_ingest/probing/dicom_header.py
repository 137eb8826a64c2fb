"""DICOM headers: study, series and instance identifiers, reading no further than they lie.

Reading stops at the first top-level element past the last identifier (Columns, 0028,0011),
so pixel data and whatever follows it is never read; a value longer than DEFER_BYTES is
skipped, not read (pydicom seeks past it), and an identifier longer than MAX_VALUE_BYTES is
refused unread. A file without the 128-byte preamble and `DICM` (what older modalities and
some exports write) is read from its first element. What pydicom raises on corrupt input
(unknown value representations, values of the wrong length, sequences nested past the
interpreter's depth) is CORRUPT_MEDIA. Reads through a file (probing/object_file.py).
"""

from __future__ import annotations

import struct
import warnings
from typing import IO, Any

from media_ingest.errors import ErrorCode, MediaError, printable
from media_ingest.media import DicomInfo

# The last identifier read (Columns); reading stops at the first top-level tag past it.
LAST_TAG = 0x00280011
# Values longer than this are skipped unread (private blobs, embedded thumbnails, overlays).
DEFER_BYTES = 64 * 1024
# An identifier is at most 64 characters by the standard (UI, LO); far more is hostile.
MAX_VALUE_BYTES = 1024
_TAGS = {
    "study_instance_uid": 0x0020000D,
    "series_instance_uid": 0x0020000E,
    "sop_instance_uid": 0x00080018,
    "instance_number": 0x00200013,
    "modality": 0x00080060,
    "series_description": 0x0008103E,
    "rows": 0x00280010,
    "columns": 0x00280011,
}
_NUMBERS = {"instance_number", "rows", "columns"}


def read_dicom(data: IO[bytes]) -> DicomInfo:
    """Study, series and instance identifiers from the DICOM header (no pixel data)."""
    from pydicom.errors import BytesLengthException, InvalidDicomError  # noqa: PLC0415
    from pydicom.filereader import read_partial  # noqa: PLC0415 - heavy: DICOM objects only

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = read_partial(
                data,  # type: ignore[arg-type]
                stop_when=lambda tag, _vr, _length: tag > LAST_TAG,
                defer_size=DEFER_BYTES,
                force=True,
            )
            values = {name: _value(dataset, name, tag) for name, tag in _TAGS.items()}
    except RecursionError as exc:
        raise MediaError(
            ErrorCode.CORRUPT_MEDIA, "DICOM header unreadable: sequences nested too deeply"
        ) from exc
    except (
        InvalidDicomError,
        BytesLengthException,
        NotImplementedError,  # pydicom: an unknown value representation
        EOFError,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        struct.error,  # a value shorter than its declared length, at the end of the data
    ) as exc:
        raise MediaError(
            ErrorCode.CORRUPT_MEDIA,
            f"DICOM header unreadable: {type(exc).__name__}: {printable(str(exc), 200)}",
        ) from exc
    return DicomInfo(**values)


def _value(dataset: Any, name: str, tag: int) -> str | int | None:
    found = dataset.get_item(tag, keep_deferred=True)
    if found is None:
        return None
    length = getattr(found, "length", 0) or 0
    if length > MAX_VALUE_BYTES:
        raise MediaError(
            ErrorCode.CORRUPT_MEDIA,
            f"DICOM header: {name} is {length:,} bytes long (at most {MAX_VALUE_BYTES:,} read)",
        )
    value = dataset.get(tag)
    value = getattr(value, "value", value)
    return _number(value) if name in _NUMBERS else _text(value)


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
