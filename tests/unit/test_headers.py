from __future__ import annotations

import io
import struct
import types
import zlib

import pytest

from media_ingest.errors import ErrorCode, MediaError, permanent
from media_ingest.probing.dicom_header import read_dicom
from media_ingest.probing.image_header import read_image
from media_ingest.probing.object_file import BLOCK_BYTES, ObjectFile
from tests.support import hostile
from tests.support.corpus import pillow_error
from tests.support.media import MediaSet, dicom, jpeg_with_orientation
from tests.support.memory import peak_rss_mb


def test_exif_orientation_swaps_displayed_size() -> None:
    info = read_image(io.BytesIO(jpeg_with_orientation(6, (64, 48))))
    assert info is not None
    assert (info.width, info.height, info.orientation, info.format) == (48, 64, 6, "jpeg")


def test_upright_jpeg_keeps_its_size() -> None:
    info = read_image(io.BytesIO(jpeg_with_orientation(1, (64, 48))))
    assert info is not None and (info.width, info.height) == (64, 48)


def test_png_size(media: MediaSet) -> None:
    info = read_image(io.BytesIO(media.bytes("plain.png")))
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
        read_image(io.BytesIO(_png_header(100_000, 100_000)))
    assert caught.value.code is ErrorCode.IMAGE_TOO_LARGE


def test_large_but_plausible_image_is_accepted() -> None:
    info = read_image(io.BytesIO(_png_header(30_000, 20_000)))
    assert info is not None and info.width == 30_000


def test_a_cut_header_is_corrupt() -> None:
    with pytest.raises(MediaError) as caught:
        read_image(io.BytesIO(jpeg_with_orientation(1)[:20]))
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA


def test_dicom_identifiers_from_the_header() -> None:
    info = read_dicom(io.BytesIO(dicom(series_uid="1.2.3.4", instance=7)))
    assert info is not None
    assert (info.series_instance_uid, info.instance_number, info.modality) == ("1.2.3.4", 7, "CT")
    assert info.study_instance_uid == "1.2.826.0.1.3680043.8.498.9"
    assert (info.rows, info.columns, info.series_description) == (4, 4, "chest")


def test_dicom_cut_before_its_identifiers_has_none() -> None:
    info = read_dicom(io.BytesIO(dicom()[:150]))
    assert (info.series_instance_uid, info.sop_instance_uid, info.modality) == (None, None, None)


# -- bounded readers (issue 11) ------------------------------------------------------------
class _Ranges:
    """`read_at` over bytes, counting what is fetched (as the S3 range reads would)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fetched = 0

    def file(self, first: int = 64 * 1024, budget: int = 8 * 1024 * 1024) -> io.BufferedReader:
        raw = ObjectFile(self.data[:first], len(self.data), self.read_at, budget)
        return io.BufferedReader(raw, BLOCK_BYTES)

    def read_at(self, start: int, length: int) -> bytes:
        self.fetched += length
        return self.data[start : start + length]


def test_a_png_header_claiming_a_gigapixel_is_read_without_decoding_it() -> None:
    # 32000x32000 1-bit: under the pixel limit, 125 KB compressed, 128 MB once decoded.
    # Pillow's getexif() on a PNG decodes the image to look for an eXIf chunk: over 1 GB.
    before, after = peak_rss_mb(
        """
        info = read_image(io.BytesIO(data))
        assert (info.width, info.height) == (32000, 32000), info
        """,
        baseline="""
        import io
        from media_ingest.probing.image_header import read_image
        from tests.support.hostile import png_1bit
        data = png_1bit(32000, 32000)
        """,
    )
    assert after - before < 50, f"reading the header took {after - before:.0f} MB"


def test_exif_orientation_of_a_png_is_read_when_it_precedes_the_image_data() -> None:
    info = read_image(io.BytesIO(hostile.png_with_exif(6, (40, 30))))
    assert (info.width, info.height, info.orientation) == (30, 40, 6)


def test_a_tiff_whose_ifd_lies_megabytes_in_is_read_there_and_nowhere_else() -> None:
    ranges = _Ranges(hostile.tiff_ifd_at_end(2000, 1500))  # 9 MB, its IFD at the end
    info = read_image(ranges.file())
    assert (info.width, info.height, info.format) == (2000, 1500, "tiff")
    assert ranges.fetched <= 128 * 1024


def test_a_header_that_needs_more_than_the_budget_is_corrupt_not_a_download() -> None:
    # A PNG whose reader must read 9 MB of one chunk to reach the image header's end.
    png = b"\x89PNG\r\n\x1a\n" + hostile.png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    )
    png += struct.pack(">I", 9_000_000) + b"zTXt" + b"\x00" * 9_000_000
    big = _Ranges(png)
    with pytest.raises(MediaError) as caught:
        read_image(big.file(budget=1024 * 1024))
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA
    assert big.fetched <= 1024 * 1024


def test_a_dicom_file_is_read_up_to_its_identifiers_only() -> None:
    # 20 MB of pixel data after the header; a 5 MB private element before the identifiers.
    for data in (hostile.dicom_large(20 * 1024 * 1024, 0), hostile.dicom_large(0, 5 * 1024 * 1024)):
        ranges = _Ranges(data)
        info = read_dicom(ranges.file())
        assert info.series_instance_uid == "1.2.826.0.1.3680043.8.498.6"
        assert (info.rows, info.modality) == (info.columns, "CT")
        assert ranges.fetched <= 256 * 1024


def test_dicom_without_its_preamble_is_read() -> None:
    data = dicom(series_uid="1.2.3.9")[132:]
    assert read_dicom(io.BytesIO(data)).series_instance_uid == "1.2.3.9"


@pytest.mark.parametrize(
    ("element", "says"),
    [
        (hostile.dicom_element(0x0008, 0x0060, b"ZZ", b"CT"), "Unknown Value Representation"),
        (hostile.dicom_element(0x0028, 0x0010, b"US", b"\x01\x02\x03"), "BytesLengthException"),
        (hostile.dicom_element(0x0020, 0x000E, b"UI", b"1." * 30_000), "60,000 bytes long"),
        (None, "nested too deeply"),
    ],
    ids=["unknown-vr", "odd-length-us", "60kb-uid", "nested-3000"],
)
def test_what_pydicom_raises_on_corrupt_headers_is_corrupt_media(
    element: bytes | None, says: str
) -> None:
    meta = hostile.dicom_file_meta(dicom())
    data = hostile.dicom_nested(meta, 3000) if element is None else meta + element
    with pytest.raises(MediaError) as caught:
        read_dicom(io.BytesIO(data))
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA and says in caught.value.message


def test_a_broken_avif_is_corrupt_media_not_a_crash() -> None:
    # Pillow's AVIF decoder raises RuntimeError ("Failed to decode image") for broken items.
    avif = hostile.image("AVIF", (64, 48))
    broken = hostile.mutated(avif, avif.find(b"meta"), lambda d: pillow_error(d) == "RuntimeError")
    assert broken is not None
    with pytest.raises(MediaError) as caught:
        read_image(io.BytesIO(broken))
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA


def test_an_exception_no_reader_expects_names_the_reader_and_the_library_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A library function raising what its caller never expects: its frames carry the
    # library's module name, as Pillow's or pydicom's would.
    library = types.ModuleType("somelib")
    exec("def open(fp, formats=None):\n    raise LookupError('no such box')", library.__dict__)
    monkeypatch.setattr("media_ingest.probing.image_header.Image.open", library.open)
    with pytest.raises(LookupError) as raised:
        read_image(io.BytesIO(b"\x89PNG\r\n\x1a\n"))
    error = permanent(raised.value)
    assert error is not None and error.code is ErrorCode.PARSER_ERROR
    assert error.parser == "probing.image_header (somelib)"
    assert error.message == "probing.image_header (somelib) raised LookupError: no such box"
