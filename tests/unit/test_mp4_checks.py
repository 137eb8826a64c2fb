"""The MP4 index refused before ffprobe trusts it: declarations no object of its size could
hold (CORRUPT_MEDIA), and samples kept in another file (INDIRECTION_REFUSED)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.probing.mp4_index import read_movie
from tests.support.media import MediaSet
from tests.support.mp4_boxes import box, dref, find, full, inside, moov, replace, table, url

SIZE = 50_000  # the object the synthetic moovs claim to be part of


def refused(index: bytes, size: int = SIZE) -> MediaError:
    with pytest.raises(MediaError) as caught:
        read_movie(index, size)
    return caught.value


def test_a_plain_index_passes() -> None:
    assert read_movie(moov([(30, 1)]), SIZE).first_video() is not None


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (
            moov([(30, 1)], sizes=full(b"stsz", struct.pack(">II", 1, 30_000_000))),
            "track 1 declares 30,000,000 samples, more than the object's 50,000 bytes",
        ),
        (
            moov([(30, 1)], sizes=full(b"stsz", struct.pack(">II", 4000, 30))),
            "track 1 declares 120,000 bytes of samples",
        ),
        (
            moov([(40_000_000, 1)], sizes=full(b"stsz", struct.pack(">II", 1, 30))),
            "track 1 declares 40,000,000 timed samples (stts)",
        ),
        (
            moov([(3, 1)], sizes=full(b"stsz", struct.pack(">III", 0, 9, 5))),
            "track 1's stsz declares 9 samples but holds 1",
        ),
        (
            moov([(3, 1)], sizes=full(b"stz2", struct.pack(">III", 8, 200, 0))),
            "track 1's stz2 declares 200 samples but holds 4",
        ),
        (moov([(3, 1)], chunks=[8, SIZE + 10]), "truncated: track 1 has a chunk at byte 50,010"),
    ],
)
def test_impossible_declarations_are_corrupt_media(index: bytes, message: str) -> None:
    error = refused(index)
    assert error.code is ErrorCode.CORRUPT_MEDIA
    assert error.message.startswith("impossible MP4 index: ") and message in error.message


def test_the_sizes_a_table_holds_are_summed_and_compact_sizes_read() -> None:
    sizes = full(b"stsz", struct.pack(">II", 0, 3), struct.pack(">III", 10, 20, 30))
    assert read_movie(moov([(3, 1)], sizes=sizes), 60).first_video() is not None
    assert refused(moov([(3, 1)], sizes=sizes), 59).code is ErrorCode.CORRUPT_MEDIA
    nibbles = full(b"stz2", struct.pack(">III", 4, 3, 0xF1F0_0000)[:14])  # 15, 1, 15
    assert read_movie(moov([(3, 1)], sizes=nibbles), 31).first_video() is not None
    assert refused(moov([(3, 1)], sizes=nibbles), 30).code is ErrorCode.CORRUPT_MEDIA


@pytest.mark.parametrize(
    ("references", "where"),
    [
        (dref(url(b"file:///Volumes/Media/take1.mov", self_contained=False)), "take1.mov"),
        (dref(url(b"http://127.0.0.1:9/clip.mp4", self_contained=False)), "127.0.0.1:9"),
        (dref(full(b"alis", b"\0" * 40)), "'alis'"),  # a QuickTime alias, not self-contained
        (dref(box(b"rsrc", b"\0" * 8)), "'rsrc'"),  # an unknown kind of reference
    ],
)
def test_samples_in_another_file_are_refused(references: bytes, where: str) -> None:
    error = refused(moov([(3, 1)], references=references))
    assert error.code is ErrorCode.INDIRECTION_REFUSED
    assert "samples are in another file" in error.message and where in error.message


def test_self_contained_references_pass_and_only_used_ones_count() -> None:
    alias = full(b"alis", flags=1)  # QuickTime's own "this file"
    assert read_movie(moov([(3, 1)], references=dref(alias)), SIZE).tracks
    unused = dref(url(), url(b"file:///elsewhere.mov", self_contained=False))
    assert read_movie(moov([(3, 1)], references=unused), SIZE).tracks  # stsd uses entry 1


def test_a_printed_reference_is_cut_and_cleaned() -> None:
    long = b"file:///" + b"x" * 300 + b"\x1b[31m"
    error = refused(moov([(3, 1)], references=dref(url(long, self_contained=False))))
    assert "\x1b" not in error.message and "..." in error.message and len(error.message) < 300


def test_tables_are_checked_in_every_track_not_only_the_video() -> None:
    hostile = full(b"stsz", struct.pack(">II", 1, 10**8))
    audio = inside(moov([(3, 1)], handler=b"soun", sizes=hostile), [b"moov", b"trak"])
    error = refused(moov([(3, 1)], extra=audio))
    assert "track 2 declares 100,000,000 samples" in error.message


# -- on real files: what ffprobe would trust --------------------------------------------


def test_a_real_file_claiming_tens_of_millions_of_samples_is_refused(media: MediaSet) -> None:
    data = bytearray(media.bytes("rate-25-moov-end.mp4"))
    at = find(bytes(data), [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"])
    struct.pack_into(">II", data, at + 12, 1, 30_000_000)  # constant size 1, 30M samples
    index = inside(bytes(data), [b"moov"])
    error = refused(index, len(data))
    assert error.code is ErrorCode.CORRUPT_MEDIA
    assert f"30,000,000 samples, more than the object's {len(data):,} bytes" in error.message


def test_a_reference_movie_is_refused_although_ffprobe_opens_it(
    media: MediaSet, tmp_path: Path
) -> None:
    source = media.bytes("vfr-phone.mov")  # QuickTime, moov at the end
    path = [b"moov", b"trak", b"mdia", b"minf", b"dinf"]
    external = dref(url(b"file:///Volumes/Capture/clip.mov", self_contained=False))
    data = replace(source, path, external)
    movie = tmp_path / "reference.mov"
    movie.write_bytes(data)
    # What the product would do without the check: ffprobe reports an ordinary video.
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv", movie],
        capture_output=True,
        check=True,
    )
    assert b"stream,video" in probed.stdout
    error = refused(inside(data, [b"moov"]), len(data))
    assert (
        error.code is ErrorCode.INDIRECTION_REFUSED and "/Volumes/Capture/clip.mov" in error.message
    )


def test_table_entries_a_box_cannot_hold_are_impossible() -> None:
    index = moov([(3, 1)], stss=[1])
    at = index.index(b"stss") + 8
    lying = index[:at] + struct.pack(">I", 10**6) + index[at + 4 :]
    assert table(b"stss", ">I", [(1,)]) in index  # the box the edit lies about
    assert "stss declares 1,000,000 entries but holds 1" in refused(lying).message
