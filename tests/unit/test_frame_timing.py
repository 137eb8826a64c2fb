"""Frame timing from the container index, against FFmpeg decoding every frame.

Generated videos whose truth is known by construction (constant 25, 29.97 and 59.94 fps;
two rates by edited timestamps; a phone-like capture with dropped frames; B-frames with an
edit list that delays the start or hides leading frames; one frame; one hour; moov at the
start and at the end; Matroska/WebM), each field compared with the oracle
(tests/support/frame_oracle.py); then hand-made edit lists on a real file, and random
stts/ctts/elst tables against a plain reference implementation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.media import FrameRateMode, FrameTiming
from media_ingest.probing import frame_timing, mkv_index, mp4_frames, mp4_index
from media_ingest.probing.prober import FIRST_RANGE_BYTES
from tests.support.fakes import CountingReader
from tests.support.frame_oracle import Oracle, constant_rate, decode
from tests.support.media import MediaSet
from tests.support.mp4_boxes import elst, inside, moov, replace

CONSTANT, VARIABLE = FrameRateMode.CONSTANT, FrameRateMode.VARIABLE


def read(data: bytes) -> tuple[FrameTiming, tuple[int, ...] | None, CountingReader]:
    """What the probe learns from an object's bytes: the first range, plus range reads."""
    reader = CountingReader(data)
    head = data[:FIRST_RANGE_BYTES]
    if data[4:8] != b"ftyp":
        timing, keys = mkv_index.video_frames(head, len(data))
        return timing, keys, reader
    index = mp4_index.find_moov(head, len(data), reader)
    assert index is not None
    timing, keys = mp4_frames.video_frames(mp4_index.read_movie(index, len(data)))
    return timing, keys, reader


@dataclass(frozen=True)
class Truth:
    mode: FrameRateMode
    frames: int
    start: float = 0.0
    reads: int = 0  # extra GETs past the first range


CASES = {
    "rate-25.mp4": Truth(CONSTANT, 50),
    "rate-25-moov-end.mp4": Truth(CONSTANT, 50, reads=0),  # 17 KB: moov in the first range
    "rate-ntsc.mp4": Truth(CONSTANT, 60),
    "rate-ntsc-moov-end.mp4": Truth(CONSTANT, 60),
    "rate-5994.mp4": Truth(CONSTANT, 120),
    "rate-5994-moov-end.mp4": Truth(CONSTANT, 120),
    "gop10-bf2-moov-end.mp4": Truth(CONSTANT, 240, reads=1),  # moov past the first range
    "vfr-edited.mp4": Truth(VARIABLE, 90),  # 30 frames at 30 fps, then 60 at 15 fps
    "vfr-edited-moov-end.mp4": Truth(VARIABLE, 90),
    "vfr-phone.mov": Truth(VARIABLE, 85),  # 90 frames captured, every 17th dropped
    "bframes-delayed.mp4": Truth(CONSTANT, 50, start=0.5),
    "bframes-cut.mp4": Truth(CONSTANT, 37),  # 1.5 s left of 2 s: 37 whole frames shown
    "one-frame.mp4": Truth(CONSTANT, 1),
    "hour.mp4": Truth(CONSTANT, 36_000, reads=1),  # a 150 KB moov, longer than the range
    "rate-ntsc.mkv": Truth(CONSTANT, 60),  # 1 ms ticks: 33, 33, 34, ... ms is rounding
    "vfr-edited.mkv": Truth(VARIABLE, 90),
    "clip.webm": Truth(CONSTANT, 25, start=0.007),
    "live.webm": Truth(CONSTANT, 25),  # Segment and Clusters of unknown size
}


@pytest.fixture(scope="module")
def oracles(media: MediaSet) -> dict[str, Oracle]:
    return {}


def oracle_of(media: MediaSet, oracles: dict[str, Oracle], name: str) -> Oracle:
    if name not in oracles:
        oracles[name] = decode(media.path(name))
    return oracles[name]


@pytest.mark.parametrize("name", CASES)
def test_every_field_equals_the_decoding_oracle(
    media: MediaSet, oracles: dict[str, Oracle], name: str
) -> None:
    truth = CASES[name]
    timing, keys, reader = read(media.bytes(name))
    seen = oracle_of(media, oracles, name)
    # The oracle agrees with itself: decoded frames are the packets FFmpeg does not discard.
    assert seen.frames == sorted(seen.frames) == seen.shown_packets
    assert timing.unknown is None
    assert timing.frame_count == seen.count == len(seen.frames) == truth.frames
    expected_mode = CONSTANT if constant_rate(seen.frames) else VARIABLE
    assert timing.rate_mode == expected_mode == truth.mode
    steps = seen.steps or [seen.lone_duration or 0]
    assert (timing.min_frame_duration, timing.max_frame_duration) == (
        seen.seconds(min(steps)),
        seen.seconds(max(steps)),
    )
    assert timing.start_time == float(seen.start_time or 0) == truth.start
    if timing.source == "mp4":
        assert timing.presentation_duration == seen.presentation_duration
    assert keys is not None and list(keys) == seen.keyframes
    assert reader.calls == truth.reads


def test_an_edit_list_that_hides_leading_frames_starts_on_a_frame_that_is_not_a_key_frame(
    media: MediaSet,
) -> None:
    data = media.bytes("bframes-cut.mp4")
    timing, keys, _ = read(data)
    assert keys is not None and keys[0] > 0  # the key frame before the cut is never shown
    stored = mp4_index.read_movie(inside(data, [b"moov"])).first_video()
    assert stored is not None and stored.sample_count > (timing.frame_count or 0)


def test_a_long_matroska_file_says_why_its_count_is_unknown(media: MediaSet) -> None:
    data = media.bytes("long.mkv")
    assert len(data) > FIRST_RANGE_BYTES
    timing, keys, reader = read(data)
    assert (timing.frame_count, timing.rate_mode, keys, reader.calls) == (None, None, None, 0)
    assert timing.unknown is not None and "every cluster" in timing.unknown
    assert decode(media.path("long.mkv")).count == 500  # the count exists: we do not guess it


# -- edit lists written by hand into a real file, FFmpeg still the oracle -----------------
# rate-25-moov-end.mp4: 25 fps in 1/12800 s ticks (512 a frame), B-frames: its own edit
# starts at 1024 (two frames of decode delay). Movie ticks: 1/1000 s.
DELAY = 1024
FRAME = 512
EDITED = {
    # frames 0-24 (0 to 1 s), then frames 37-49 (1.5 s to the end)
    "two-edits": [(1000, DELAY, 1), (500, DELAY + 37 * FRAME, 1)],
    # starts 300 ticks into frame 0: frame 0 is on screen then, but FFmpeg drops it
    "mid-frame": [(1500, DELAY + 300, 1)],
    # a quarter second of nothing, then from frame 5 (between key frames)
    "empty-then-mid-gop": [(250, -1, 1), (1000, DELAY + 5 * FRAME, 1)],
}


def edited(media: MediaSet, tmp_path: Path, edits: Sequence[tuple[int, int, float]]) -> Path:
    source = media.bytes("rate-25-moov-end.mp4")
    path = tmp_path / "edited.mp4"
    path.write_bytes(replace(source, [b"moov", b"trak", b"edts"], elst(edits)))
    return path


@pytest.mark.parametrize("case", EDITED)
def test_hand_made_edit_lists_match_ffmpeg(media: MediaSet, tmp_path: Path, case: str) -> None:
    path = edited(media, tmp_path, EDITED[case])
    timing, keys, _ = read(path.read_bytes())
    seen = decode(path)
    assert seen.frames == seen.shown_packets and seen.edits  # FFmpeg read our edit list
    assert timing.unknown is None
    assert timing.frame_count == seen.count == len(seen.frames)
    assert timing.rate_mode == (CONSTANT if constant_rate(seen.frames) else VARIABLE)
    assert timing.min_frame_duration == seen.seconds(min(seen.steps))
    assert timing.max_frame_duration == seen.seconds(max(seen.steps))
    assert timing.start_time == float(seen.start_time or 0)
    assert timing.presentation_duration == seen.presentation_duration
    assert keys is not None and list(keys) == seen.keyframes


def test_the_edit_list_is_read_from_the_real_file_first(media: MediaSet) -> None:
    # What EDITED builds on: the generated file's own single edit.
    track = mp4_index.read_movie(inside(media.bytes("rate-25-moov-end.mp4"), [b"moov"]))
    video = track.first_video()
    assert video is not None and video.timescale == 12800 and video.edits is not None
    assert [(e.media_time, e.duration) for e in video.edits] == [(DELAY, 2000)]


def test_an_edit_at_another_rate_is_unknown_not_guessed(media: MediaSet, tmp_path: Path) -> None:
    path = edited(media, tmp_path, [(1000, DELAY, 2)])
    timing, keys, _ = read(path.read_bytes())
    assert (timing.frame_count, timing.rate_mode, keys) == (None, None, None)
    assert timing.unknown == "an edit plays at rate 2, not 1"


# -- the rule ------------------------------------------------------------------------------


def timing_of(times: list[int], lone: int | None = 1) -> frame_timing.Cadence | None:
    return frame_timing.cadence(lambda: iter(times), lone)


def test_rounding_of_a_constant_rate_is_constant_and_anything_more_is_not() -> None:
    ntsc_ms = [round(i * 1001 / 30) for i in range(300)]  # 29.97 fps in milliseconds
    assert {b - a for a, b in itertools.pairwise(ntsc_ms)} == {33, 34}
    assert (found := timing_of(ntsc_ms)) is not None and found.constant
    truncated = [i * 1001 // 30 for i in range(300)]  # a muxer that rounds down
    assert (found := timing_of(truncated)) is not None and found.constant
    two_runs = [33 * i for i in range(100)] + [3267 + 34 * i for i in range(1, 100)]
    assert {b - a for a, b in itertools.pairwise(two_runs)} == {33, 34}  # within a tick
    assert (found := timing_of(two_runs)) is not None and not found.constant  # drift
    dropped = [i for i in range(30) if i != 15]  # 30 fps in 1/30 s ticks, one frame lost
    assert (found := timing_of(dropped)) is not None and not found.constant
    # 90 kHz, one timestamp a tick late and back: durations 3004 then 3002, two ticks
    # apart, which no rounding of one rate gives.
    jitter = [3003 * i + (i % 3 == 1) for i in range(50)]
    assert (found := timing_of(jitter)) is not None and not found.constant
    assert (found := timing_of([0, 3003, 6008])) is not None and not found.constant


def test_one_frame_is_constant_with_its_own_duration_and_none_is_no_timing() -> None:
    assert timing_of([7], lone=40) == frame_timing.Cadence(1, 7, 7, 40, 40, True)
    assert timing_of([]) is None
    with pytest.raises(ValueError, match="out of presentation order"):
        timing_of([0, 2, 1])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.integers(0, 1000))
def test_the_rule_matches_its_plain_reference(steps: list[int], first: int) -> None:
    times = [first]
    for step in steps:
        times.append(times[-1] + step)
    found = timing_of(times)
    assert found is not None
    assert found.constant == constant_rate(times)
    assert (found.frames, found.first, found.last) == (len(times), times[0], times[-1])
    assert (found.shortest, found.longest) == (min(steps), max(steps))


# -- random tables against a plain reference ---------------------------------------------


@dataclass(frozen=True)
class Tables:
    stts: list[tuple[int, int]]
    ctts: list[tuple[int, int]] | None = None
    stss: list[int] | None = None
    edits: list[tuple[int, int, float]] | None = None
    timescale: int = 1000
    movie_timescale: int = 1000

    def moov(self) -> bytes:
        return moov(
            self.stts,
            ctts=self.ctts,
            stss=self.stss,
            edits=self.edits,
            timescale=self.timescale,
            movie_timescale=self.movie_timescale,
        )


def expand(t: Tables) -> tuple[list[int], list[int], list[bool], list[int]]:
    """Decode times, composition times, sync flags and decode deltas of every sample."""
    dts, deltas = [], []
    now = 0
    for count, delta in t.stts:
        for _ in range(count):
            dts.append(now)
            deltas.append(delta)
            now += delta
    offsets = [o for count, o in t.ctts or [] for _ in range(count)]
    cts = [d + (offsets[i] if i < len(offsets) else 0) for i, d in enumerate(dts)]
    sync = [t.stss is None or (i + 1) in t.stss for i in range(len(dts))]
    return dts, cts, sync, deltas


def shown_per_edit(t: Tables, cts: list[int]) -> tuple[list[tuple[int, list[int]]], int]:
    """(where the edit starts, the samples it shows) for each edit that shows any, and the
    leading empty time."""
    if t.edits is None:
        return [(0, list(range(len(cts))))], 0
    segments, position, empty = [], 0, 0
    for duration, media_time, _ in t.edits:
        length = (duration * t.timescale + t.movie_timescale // 2) // t.movie_timescale
        if media_time == -1:
            empty += length
        else:
            shown = [i for i, c in enumerate(cts) if media_time <= c < media_time + length]
            if shown:
                segments.append((position, shown))
        position += length
    return segments, empty


def reference(t: Tables) -> tuple[list[int], list[int], int] | None:
    """The edit rule applied literally to every sample: (presentation times, key frame
    numbers, first duration); None when the edits interleave their frames."""
    dts, cts, sync, deltas = expand(t)
    segments, empty = shown_per_edit(t, cts)
    if not segments:
        return [], [], 0
    shift = 0
    if t.edits is not None:
        lowest = min(at + min(cts[i] for i in shown) - dts[shown[0]] for at, shown in segments)
        shift = max(0, lowest - empty)
    frames: list[tuple[int, bool, int]] = []
    for at, shown in segments:
        base = at - dts[shown[0]] - shift if t.edits is not None else 0
        ranked = sorted(shown, key=lambda i: (cts[i], i))
        frames += [(base + cts[i], sync[i], deltas[i]) for i in ranked]
    times = [time for time, _, _ in frames]
    if times != sorted(times):
        return None
    return times, [n for n, f in enumerate(frames) if f[1]], frames[0][2]


tables = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 40)), min_size=1, max_size=5)


@st.composite
def tracks(draw: st.DrawFn) -> Tables:
    stts = draw(tables)
    samples = sum(n for n, _ in stts)
    total = sum(n * d for n, d in stts)
    ctts = draw(
        st.none() | st.lists(st.tuples(st.integers(1, 8), st.integers(-20, 60)), max_size=6)
    )
    stss = draw(st.none() | st.lists(st.integers(1, samples), unique=True).map(sorted))
    timescale = draw(st.sampled_from([1000, 600, 90000]))
    movie_timescale = draw(st.sampled_from([1000, 600, 44100]))
    edit = st.tuples(
        st.integers(1, max(1, total * movie_timescale // timescale)),
        st.integers(0, total),
        st.just(1.0),
    )
    lead = st.lists(st.tuples(st.integers(1, 500), st.just(-1), st.just(1.0)), max_size=1)
    edits = draw(
        st.none() | st.builds(lambda a, b: a + b, lead, st.lists(edit, min_size=1, max_size=3))
    )
    return Tables(stts, ctts, stss, edits, timescale, movie_timescale)


@settings(max_examples=300, deadline=None)
@given(tracks())
def test_random_tables_match_the_reference(t: Tables) -> None:
    timing, keys = mp4_frames.video_frames(mp4_index.read_movie(t.moov()))
    expected = reference(t)
    if expected is None:
        assert timing.frame_count is None and "overlaps" in (timing.unknown or "")
        return
    times, key_numbers, lone = expected
    assert timing.frame_count == len(times)
    if not times:
        return
    steps = [b - a for a, b in itertools.pairwise(times)] or [lone]
    assert timing.min_frame_duration == float(round(Fraction(min(steps), t.timescale), 6))
    assert timing.max_frame_duration == float(round(Fraction(max(steps), t.timescale), 6))
    assert timing.rate_mode == (CONSTANT if constant_rate(times) else VARIABLE)
    assert timing.start_time == float(round(Fraction(times[0], t.timescale), 6))
    assert keys == (None if t.stss == [] else tuple(key_numbers))  # an empty stss: unknown


def test_the_reference_is_not_the_code_under_test() -> None:
    # A table the reference and the product both read: three B-frame-ordered samples.
    tables = Tables([(3, 10)], ctts=[(1, 10), (1, 20), (1, 0)], stss=[1])
    timing, keys = mp4_frames.video_frames(mp4_index.read_movie(tables.moov()))
    assert reference(tables) == (
        [10, 20, 30],
        [0],
        10,
    )
    assert (timing.frame_count, keys, timing.start_time) == (3, (0,), 0.01)
