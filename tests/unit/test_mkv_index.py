"""The Matroska reader on hand-written EBML: what it may say, what it must leave unknown, and
that no input makes it raise (real files against FFmpeg: test_frame_timing.py)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.media import FrameRateMode
from media_ingest.probing import mkv_index
from tests.support.media import MediaSet


def element(ident: int, body: bytes, unknown: bool = False) -> bytes:
    raw = ident.to_bytes((ident.bit_length() + 7) // 8, "big")
    # Eight-byte sizes: the marker byte 0x01, then seven bytes (all ones: unknown).
    size = b"\x01" + (b"\xff" * 7 if unknown else len(body).to_bytes(7, "big"))
    return raw + size + body


def uint(ident: int, value: int) -> bytes:
    return element(ident, value.to_bytes(8, "big"))


def block(track: int, offset: int, key: bool, laced: int = 0) -> bytes:
    flags = (0x80 if key else 0) | (0x02 if laced else 0)
    body = bytes([0x80 | track]) + struct.pack(">hB", offset, flags)
    return element(mkv_index.SIMPLE_BLOCK, body + (bytes([laced]) if laced else b"") + b"\0" * 4)


def file(clusters: list[bytes], unknown_clusters: bool = False) -> bytes:
    ebml = element(mkv_index.EBML, element(0x4282, b"webm"))
    track = element(
        mkv_index.TRACK_ENTRY, uint(mkv_index.TRACK_NUMBER, 1) + uint(mkv_index.TRACK_TYPE, 1)
    )
    body = element(mkv_index.INFO, uint(mkv_index.TIMESTAMP_SCALE, 1_000_000))
    body += element(mkv_index.TRACKS, track)
    body += b"".join(element(mkv_index.CLUSTER, c, unknown=unknown_clusters) for c in clusters)
    return ebml + element(mkv_index.SEGMENT, body, unknown=True)


def cluster(at: int, *blocks: bytes) -> bytes:
    return uint(mkv_index.CLUSTER_TIMESTAMP, at) + b"".join(blocks)


def test_every_block_of_a_whole_file_is_counted_in_presentation_order() -> None:
    # Decode order 0, 80, 40 (a B-frame): presentation 0, 40, 80.
    data = file([cluster(0, block(1, 0, True), block(1, 80, False), block(1, 40, False))])
    timing, keys = mkv_index.video_frames(data, len(data))
    assert (timing.frame_count, timing.rate_mode, keys) == (3, FrameRateMode.CONSTANT, (0,))
    assert (timing.min_frame_duration, timing.max_frame_duration) == (0.04, 0.04)


def test_clusters_of_unknown_size_end_at_the_next_cluster() -> None:
    clusters = [cluster(0, block(1, 0, True), block(1, 40, False)), cluster(80, block(1, 0, True))]
    data = file(clusters, unknown_clusters=True)
    timing, keys = mkv_index.video_frames(data, len(data))
    assert (timing.frame_count, keys) == (3, (0, 2))


def test_other_tracks_blocks_are_not_frames() -> None:
    data = file([cluster(0, block(1, 0, True), block(2, 0, True), block(1, 40, False))])
    assert mkv_index.video_frames(data, len(data)).timing.frame_count == 2


def test_laced_video_gives_a_count_but_no_timing() -> None:
    data = file([cluster(0, block(1, 0, True, laced=2))])
    timing, keys = mkv_index.video_frames(data, len(data))
    assert (timing.frame_count, timing.rate_mode, keys) == (3, None, None)
    assert timing.unknown is not None and "laced" in timing.unknown


def test_an_object_longer_than_the_first_range_is_unknown_not_estimated() -> None:
    data = file([cluster(0, *(block(1, 40 * i, i == 0) for i in range(10)))])
    timing, keys = mkv_index.video_frames(data[:-20], len(data))
    assert (timing.frame_count, timing.rate_mode, keys) == (None, None, None)
    assert timing.unknown is not None and "every cluster" in timing.unknown


def test_a_file_without_a_video_track_says_so() -> None:
    data = element(mkv_index.EBML, b"") + element(mkv_index.SEGMENT, b"")
    timing, _ = mkv_index.video_frames(data, len(data))
    assert timing.unknown == (
        "Matroska headers not read: no video track in Tracks within the first range"
    )


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 2000))
def test_no_input_makes_it_raise(noise: bytes, extra: int) -> None:
    for data in (noise, file([noise]), file([cluster(0, noise)])):
        timing, keys = mkv_index.video_frames(data, len(data) + extra)
        assert timing.source == "matroska"
        assert keys is None or timing.frame_count is not None


def test_real_webm_fixture_is_read_from_its_first_bytes(media: MediaSet) -> None:
    data = media.bytes("clip.webm")
    assert mkv_index.video_frames(data, len(data)).timing.frame_count == 25
