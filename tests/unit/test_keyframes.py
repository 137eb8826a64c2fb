"""Key frames from the MP4 index, against FFmpeg as the oracle, and against hostile boxes."""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.platforms.encord import ENCORD_BLOCK, entry_for
from media_ingest.probing import mp4_index as keyframes
from media_ingest.probing.mp4_index import KeyframeIndexError, find_moov, mp4_keyframes
from media_ingest.probing.prober import FIRST_RANGE_BYTES
from tests.support.items import video_item
from tests.support.media import MediaSet

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


class CountingReader:
    """read_at over bytes, counting GETs and bytes like the S3 adapter's calls would."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0
        self.bytes = 0

    def __call__(self, start: int, length: int) -> bytes:
        self.calls += 1
        got = self.data[start : start + length]
        self.bytes += len(got)
        return got


def keyframes_of(data: bytes) -> tuple[tuple[int, ...] | None, CountingReader]:
    reader = CountingReader(data)
    moov = find_moov(data[:FIRST_RANGE_BYTES], len(data), reader)
    assert moov is not None
    return mp4_keyframes(moov), reader


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
    monkeypatch.setattr(keyframes, "TAIL_READ_BYTES", 64)
    data = media.bytes("gop10-bf2-moov-end.mp4")
    found, reader = keyframes_of(data)
    assert found is not None and reader.calls == 2
    assert reader.bytes == len(data) - data.index(b"moov") + 4


# Synthetic boxes: what a real encoder rarely writes but a file may hold.


def box(kind: bytes, *parts: bytes, large: bool = False) -> bytes:
    body = b"".join(parts)
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, *parts: bytes) -> bytes:
    return box(kind, b"\0\0\0\0", *parts)


def table(kind: bytes, fmt: str, rows: Sequence[tuple[int, ...]]) -> bytes:
    return full(kind, struct.pack(">I", len(rows)), *(struct.pack(fmt, *r) for r in rows))


def moov(
    stts: list[tuple[int, int]],
    *,
    ctts: list[tuple[int, int]] | None = None,
    stss: list[int] | None = None,
    handler: bytes = b"vide",
    extra: bytes = b"",
    raw: bytes | None = None,
) -> bytes:
    tables = [table(b"stts", ">II", stts) if raw is None else raw]
    if ctts is not None:
        tables.append(table(b"ctts", ">Ii", ctts))
    if stss is not None:
        tables.append(table(b"stss", ">I", [(n,) for n in stss]))
    hdlr = full(b"hdlr", b"\0\0\0\0", handler, b"\0" * 12)
    trak = box(b"trak", box(b"mdia", hdlr, box(b"minf", box(b"stbl", *tables))))
    return box(b"moov", full(b"mvhd", b"\0" * 96), trak, extra)


def test_sync_samples_are_numbered_in_presentation_order() -> None:
    # Decode order I(pts 0), I(pts 2), B(pts 1): the second sync sample is frame 2, not 1.
    index = moov([(3, 10)], ctts=[(1, 0), (1, 10), (1, -10)], stss=[1, 2])
    assert mp4_keyframes(index) == (0, 2)


def test_no_sync_table_means_every_frame_and_an_empty_one_unknown() -> None:
    assert mp4_keyframes(moov([(4, 1)])) == (0, 1, 2, 3)
    assert mp4_keyframes(moov([(4, 1)], stss=[])) is None


def test_audio_only_and_fragmented_files_are_unknown() -> None:
    assert mp4_keyframes(moov([(4, 1)], handler=b"soun")) is None
    assert mp4_keyframes(moov([(4, 1)], extra=box(b"mvex", full(b"trex", b"\0" * 20)))) is None


def test_64_bit_sizes_and_a_box_to_the_end_of_the_file() -> None:
    index = moov([(30, 1)], stss=[1, 11, 21])
    head = box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", b"\0" * 100, large=True)
    data = head + index
    assert mp4_keyframes(find_moov(data, len(data), CountingReader(data)) or b"") == (0, 10, 20)
    last = data[: len(head)] + b"\0\0\0\0" + index[4:]  # moov with size 0: to the end
    assert mp4_keyframes(find_moov(last, len(last), CountingReader(last)) or b"") == (0, 10, 20)
    fragmented = head + box(b"moof", b"\0" * 8) + index
    assert find_moov(fragmented, len(fragmented), CountingReader(fragmented)) is None


def test_moov_behind_many_boxes_gives_up_after_a_few_reads() -> None:
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
        (moov([(keyframes.MAX_SAMPLES + 1, 1)]), "cap"),
        (
            box(b"moov", box(b"trak", box(b"mdia", full(b"hdlr", b"\0\0\0\0vide", b"\0" * 12)))),
            "no sample table",
        ),
    ],
)
def test_broken_indexes_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(KeyframeIndexError, match=message):
        mp4_keyframes(data)


def test_an_entry_count_larger_than_the_table_is_refused() -> None:
    lying = moov([(3, 1)])
    at = lying.index(b"stts") + 8
    lying = lying[:at] + struct.pack(">I", 0xFFFFFFFF) + lying[at + 4 :]
    with pytest.raises(KeyframeIndexError, match="does not hold"):
        mp4_keyframes(lying)


def test_a_huge_moov_is_refused_before_it_is_read() -> None:
    data = box(b"ftyp", b"isom") + struct.pack(">I4s", 0xFFFFFFF0, b"moov")
    with pytest.raises(KeyframeIndexError, match="cap"):
        find_moov(data, 0xFFFFFFF0 + 12, CountingReader(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_the_module_error(data: bytes) -> None:
    for candidate in (data, box(b"moov", data)):
        with contextlib.suppress(KeyframeIndexError):
            mp4_keyframes(candidate)
    with contextlib.suppress(KeyframeIndexError):
        find_moov(data, len(data), CountingReader(data))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8))
def test_corrupted_real_shapes_raise_only_the_module_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(moov([(12, 512)], ctts=[(6, 1024), (6, 0)], stss=[1, 7]))
    for at, value in edits:
        data[at % len(data)] = value
    try:
        found = mp4_keyframes(bytes(data))
    except KeyframeIndexError:
        return
    assert found is None or all(0 <= n < keyframes.MAX_SAMPLES for n in found)


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
    for at, box in ((1500, "moov"), (len(whole) - 1000, "mdat")):
        reason = keyframes.top_level_overrun(whole[: min(at, 65536)], at)
        assert reason is not None and f"{box!r}" in reason and f"ends at {at:,}" in reason
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
