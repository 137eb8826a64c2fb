from __future__ import annotations

import struct
import zlib

import pytest

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.probing.dicom_header import read_dicom
from media_ingest.probing.image_header import read_image
from tests.support.media import MediaSet, dicom, jpeg_with_orientation


def test_exif_orientation_swaps_displayed_size() -> None:
    info = read_image(jpeg_with_orientation(6, (64, 48)), complete=True)
    assert info is not None
    assert (info.width, info.height, info.orientation, info.format) == (48, 64, 6, "jpeg")


def test_upright_jpeg_keeps_its_size() -> None:
    info = read_image(jpeg_with_orientation(1, (64, 48)), complete=True)
    assert info is not None and (info.width, info.height) == (64, 48)


def test_png_size(media: MediaSet) -> None:
    info = read_image(media.bytes("plain.png"), complete=True)
    assert info is not None and (info.width, info.height, info.format) == (40, 30, "png")


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims any size, followed by a few bytes of image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_enormous_claimed_dimensions_are_refused_without_allocating() -> None:
    with pytest.raises(MediaError) as caught:
        read_image(_png_header(100_000, 100_000), complete=True)
    assert caught.value.code is ErrorCode.IMAGE_TOO_LARGE


def test_large_but_plausible_image_is_accepted() -> None:
    info = read_image(_png_header(30_000, 20_000), complete=True)
    assert info is not None and info.width == 30_000


def test_cut_header_asks_for_more_then_fails_when_complete() -> None:
    data = jpeg_with_orientation(1)[:20]
    assert read_image(data, complete=False) is None
    with pytest.raises(MediaError) as caught:
        read_image(data, complete=True)
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA


def test_dicom_identifiers_from_the_header() -> None:
    info = read_dicom(dicom(series_uid="1.2.3.4", instance=7), complete=True)
    assert info is not None
    assert (info.series_instance_uid, info.instance_number, info.modality) == ("1.2.3.4", 7, "CT")
    assert info.study_instance_uid == "1.2.826.0.1.3680043.8.498.9"
    assert (info.rows, info.columns, info.series_description) == (4, 4, "chest")


def test_dicom_cut_before_its_identifiers_asks_for_more() -> None:
    assert read_dicom(dicom()[:200], complete=False) is None
