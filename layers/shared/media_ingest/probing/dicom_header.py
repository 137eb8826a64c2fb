"""DICOM headers: study, series and instance identifiers from the first bytes only.

Never reads pixel data. Returns None when the bytes end before the identifiers do, so the
caller can fetch a longer range; raises MediaError when the header is broken.
"""

from __future__ import annotations

import io
import warnings

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.media import DicomInfo


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
