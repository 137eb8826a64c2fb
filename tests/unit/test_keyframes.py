"""Key frames and the moov search of the MP4 index, against FFmpeg as the oracle, and
against hostile boxes (frame timing itself: test_frame_timing.py)."""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.errors import MediaError
from media_ingest.platforms.encord import ENCORD_BLOCK, entry_for
from media_ingest.probing import mp4_frames
from media_ingest.probing import mp4_index as keyframes
from media_ingest.probing.mp4_index import IndexUnreadable, find_moov, read_movie
from media_ingest.probing.prober import FIRST_RANGE_BYTES
from tests.support.fakes import CountingReader
from tests.support.items import video_item
from tests.support.media import MediaSet
from tests.support.mp4_boxes import box, full, moov


def mp4_keyframes(index: bytes) -> tuple[int, ...] | None:
    return mp4_frames.video_frames(read_movie(index)).keyframes


REAL = ["gop10-bf0.mp4", "gop10-bf2.mp4", "gop10-bf2-moov-end.mp4", "gop7-bf3-moov-end.mp4"]


def _first_video(path: Path, entries: str) -> dict[str, Any]:
    """ffprobe's JSON for `-show_entries entries` of the first video stream."""
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            entries,
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def packet_oracle(path: Path) -> list[int]:
    """FFmpeg's demuxer: key packets, numbered by rank of pts (no decoding)."""
    packets = _first_video(path, "packet=pts,flags")["packets"]
    order = sorted(range(len(packets)), key=lambda i: int(packets[i]["pts"]))
    rank = {sample: position for position, sample in enumerate(order)}
    return sorted(rank[i] for i, p in enumerate(packets) if "K" in p["flags"])


def frame_oracle(path: Path) -> list[int]:
    """FFmpeg's decoder (fine in a test, never in the product): output order, key_frame set."""
    frames = _first_video(path, "frame=key_frame")["frames"]
    return [i for i, f in enumerate(frames) if f["key_frame"]]


def keyframes_of(data: bytes) -> tuple[tuple[int, ...] | None, CountingReader]:
    reader = CountingReader(data)
    index = find_moov(data[:FIRST_RANGE_BYTES], len(data), reader)
    assert index is not None
    return mp4_frames.video_frames(read_movie(index, len(data))).keyframes, reader


@pytest.mark.parametrize("name", REAL)
def test_real_files_match_ffmpeg(media: MediaSet, name: str) -> None:
    found, _ = keyframes_of(media.bytes(name))
    assert found is not None and list(found) == packet_oracle(media.path(name))
    assert list(found) == frame_oracle(media.path(name))
    gop = int(name.split("-", maxsplit=1)[0][3:])
    assert found[:3] == (0, gop, 2 * gop)


def test_faststart_costs_no_read_and_moov_at_end_one(media: MediaSet) -> None:
    _, fast = keyframes_of(media.bytes("gop10-bf2.mp4"))
    data = media.bytes("gop10-bf2-moov-end.mp4")
    _, late = keyframes_of(data)
    assert len(data) > FIRST_RANGE_BYTES
    assert (fast.calls, fast.bytes) == (0, 0)
    # One GET at the moov header brings a small moov with it: exactly the moov's bytes.
    assert late.calls == 1 and late.bytes == len(data) - data.index(b"moov") + 4


def test_a_moov_longer_than_one_read_costs_a_second(
    media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tail longer than one whole read: a GET at the moov's header, one for the rest.
    monkeypatch.setattr(keyframes, "WHOLE_TAIL_BYTES", 32)
    monkeypatch.setattr(keyframes, "TAIL_READ_BYTES", 64)
    data = media.bytes("gop10-bf2-moov-end.mp4")
    found, reader = keyframes_of(data)
    assert found is not None and reader.calls == 2
    assert reader.bytes == len(data) - data.index(b"moov") + 4


# Synthetic boxes: what a real encoder rarely writes but a file may hold.


def test_sync_samples_are_numbered_in_presentation_order() -> None:
    # Decode order I(pts 0), I(pts 2), B(pts 1): the second sync sample is frame 2, not 1.
    index = moov([(3, 10)], ctts=[(1, 0), (1, 10), (1, -10)], stss=[1, 2])
    assert mp4_keyframes(index) == (0, 2)


def test_no_sync_table_means_every_frame_and_an_empty_one_unknown() -> None:
    assert mp4_keyframes(moov([(4, 1)])) == (0, 1, 2, 3)
    assert mp4_keyframes(moov([(4, 1)], stss=[])) is None


def test_sync_numbers_are_walked_as_ffmpeg_walks_them() -> None:
    # 1-based, increasing: every one; a number not above the last stops the walk (FFmpeg
    # waits for it forever); a table starting at 0 is 0-based.
    assert mp4_keyframes(moov([(8, 1)], stss=[1, 5, 3, 7])) == (0, 4)
    assert mp4_keyframes(moov([(8, 1)], stss=[1, 1, 5])) == (0,)
    assert mp4_keyframes(moov([(8, 1)], stss=[0, 2, 4])) == (0, 2, 4)


def test_audio_only_and_fragmented_files_are_unknown() -> None:
    audio = mp4_frames.video_frames(read_movie(moov([(4, 1)], handler=b"soun")))
    assert audio.keyframes is None and audio.timing.unknown == "the moov has no video track"
    fragments = moov([(4, 1)], extra=box(b"mvex", full(b"trex", b"\0" * 20)))
    fragmented = mp4_frames.video_frames(read_movie(fragments))
    assert fragmented.keyframes is None and fragmented.timing.frame_count is None
    assert "fragmented" in (fragmented.timing.unknown or "")


def test_64_bit_sizes_and_a_box_to_the_end_of_the_file() -> None:
    index = moov([(30, 1)], stss=[1, 11, 21])
    head = box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", b"\0" * 100, large=True)
    data = head + index
    assert mp4_keyframes(find_moov(data, len(data), CountingReader(data)) or b"") == (0, 10, 20)
    last = data[: len(head)] + b"\0\0\0\0" + index[4:]  # moov with size 0: to the end
    assert mp4_keyframes(find_moov(last, len(last), CountingReader(last)) or b"") == (0, 10, 20)
    fragmented = head + box(b"moof", b"\0" * 8) + index
    assert find_moov(fragmented, len(fragmented), CountingReader(fragmented)) is None


def test_a_long_moov_at_the_end_costs_one_read_of_exactly_its_bytes() -> None:
    index = moov([(3, 1)], extra=box(b"udta", b"\0" * 200_000))  # longer than a header read
    data = box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", b"\0" * 100_000) + index
    reader = CountingReader(data)
    assert find_moov(data[:FIRST_RANGE_BYTES], len(data), reader) == index
    assert (reader.calls, reader.bytes) == (1, len(index))
    assert len(index) > keyframes.TAIL_READ_BYTES


def test_moov_behind_many_boxes_gives_up_after_a_few_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keyframes, "WHOLE_TAIL_BYTES", 1024)  # the tail is longer
    filler = b"".join(box(b"free", b"\0" * 70_000) for _ in range(10))
    data = box(b"ftyp", b"isom\0\0\0\0") + filler + moov([(3, 1)])
    reader = CountingReader(data)
    assert find_moov(data[:FIRST_RANGE_BYTES], len(data), reader) is None
    assert reader.calls == keyframes.MAX_TOP_LEVEL_READS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (moov([(3, 1)])[:-6], "impossible size"),
        (moov([], raw=box(b"stts", b"\0\0\0\0")), "truncated"),
        (
            box(b"moov", box(b"trak", box(b"mdia", full(b"hdlr", b"\0\0\0\0vide", b"\0" * 12)))),
            "no sample table",
        ),
    ],
)
def test_broken_indexes_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(IndexUnreadable, match=message):
        read_movie(data)


def test_over_the_sample_cap_the_frames_are_unknown_not_an_error() -> None:
    found = mp4_frames.video_frames(read_movie(moov([(mp4_frames.MAX_SAMPLES + 1, 1)])))
    assert found.keyframes is None and found.timing.frame_count is None
    assert found.timing.unknown == f"{mp4_frames.MAX_SAMPLES + 1:,} samples; the cap is 2,000,000"


def test_an_entry_count_larger_than_the_table_is_impossible() -> None:
    lying = moov([(3, 1)])
    at = lying.index(b"stts") + 8
    lying = lying[:at] + struct.pack(">I", 0xFFFFFFFF) + lying[at + 4 :]
    with pytest.raises(MediaError, match="stts declares 4,294,967,295 entries but holds 1"):
        read_movie(lying)


def test_a_huge_moov_is_refused_before_it_is_read() -> None:
    data = box(b"ftyp", b"isom") + struct.pack(">I4s", 0xFFFFFFF0, b"moov")
    with pytest.raises(IndexUnreadable, match="cap"):
        find_moov(data, 0xFFFFFFF0 + 12, CountingReader(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_the_module_errors(data: bytes) -> None:
    for candidate in (data, box(b"moov", data)):
        with contextlib.suppress(IndexUnreadable, MediaError):
            mp4_frames.video_frames(read_movie(candidate, len(candidate)))
    with contextlib.suppress(IndexUnreadable):
        find_moov(data, len(data), CountingReader(data))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8))
def test_corrupted_real_shapes_raise_only_the_module_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(moov([(12, 512)], ctts=[(6, 1024), (6, 0)], stss=[1, 7]))
    for at, value in edits:
        data[at % len(data)] = value
    try:
        found = mp4_keyframes(bytes(data))
    except (IndexUnreadable, MediaError):
        return
    assert found is None or all(0 <= n < mp4_frames.MAX_SAMPLES for n in found)


def test_entry_carries_the_encord_block_only_when_key_frames_are_known() -> None:
    plain = video_item("v.mp4")
    assert ENCORD_BLOCK not in entry_for(plain).payload["clientMetadata"]
    video = plain.media.video
    assert video is not None
    media = plain.media.model_copy(
        update={"video": video.model_copy(update={"keyframes": (0, 10, 20)})}
    )
    client = entry_for(plain.model_copy(update={"media": media})).payload["clientMetadata"]
    assert client[ENCORD_BLOCK] == {
        "keyframes": [0, 10, 20],
        "config": {"sampling_rate": 1, "keyframe_mode": "frame"},
    }
    owned = media.model_copy(
        update={"client_metadata": {ENCORD_BLOCK: {"keyframes": [5], "frame_metadata": {}}}}
    )
    client = entry_for(plain.model_copy(update={"media": owned})).payload["clientMetadata"]
    # `$encord` is the stack's (owner_metadata.STACK_FIELDS): an owner's block never passes.
    assert client[ENCORD_BLOCK] == {
        "keyframes": [0, 10, 20],
        "config": {"sampling_rate": 1, "keyframe_mode": "frame"},
    }


def test_a_cut_mdat_is_found_from_the_first_range(media: MediaSet) -> None:
    whole = media.bytes("clip.mp4")  # faststart: ftyp, moov, then the mdat header
    assert keyframes.top_level_overrun(whole[:65536], len(whole)) is None
    for at, kind in ((1500, "moov"), (len(whole) - 1000, "mdat")):
        reason = keyframes.top_level_overrun(whole[: min(at, 65536)], at)
        assert reason is not None and f"{kind!r}" in reason and f"ends at {at:,}" in reason
    moov_end = media.bytes("clip-moov-end.mp4")
    assert keyframes.top_level_overrun(moov_end[:65536], len(moov_end)) is None


@pytest.mark.parametrize(
    ("boxes", "size", "cut"),
    [
        (struct.pack(">I4s", 0, b"mdat"), 10, False),  # size 0: to the end, whatever it is
        (struct.pack(">I4sQ", 1, b"mdat", 1 << 40), 4096, True),  # 64-bit size past the end
        (struct.pack(">I4sQ", 1, b"mdat", 4096), 4096, False),
        (b"\x00\x00\x00\x03junk", 100, False),  # not a box: ffprobe judges it
        (struct.pack(">I4s", 24, b"ftyp") + bytes(16), 24, False),
    ],
)
def test_overrun_reads_only_what_is_certain(boxes: bytes, size: int, cut: bool) -> None:
    assert (keyframes.top_level_overrun(boxes, size) is not None) is cut
