"""The frames of an MP4/MOV video track as a player shows them, from its tables (mp4_index):
how many, when each is shown after the edit list, which are key frames. Whether that is a
constant rate is frame_timing's rule. Pure: a `Movie` in, a `VideoFrames` out; never reads
bytes, never expands a table into memory (samples are streamed, twice at most).

Frame numbers follow FFmpeg (libavformat/mov.c, `mov_fix_index`, with its default
`advanced_editlist`), because FFmpeg's output order is how Encord numbers frames
(https://docs.encord.com/datasets/supported-videos/, and probing/mp4_index history):
- a sample's composition time is its decode time (the running sum of `stts` deltas) plus its
  `ctts` offset (read as signed, as FFmpeg does);
- without an edit list every sample is a frame, shown at its composition time;
- with one, each edit in turn shows the samples whose composition time t satisfies
  `media_time <= t < media_time + duration` (the duration converted from the movie's
  timescale to the track's, rounded to nearest). A sample that starts before `media_time` is
  not shown even if it would still be on screen then: FFmpeg drops it, so the next one is
  frame 0. Leading empty edits (`media_time` -1) delay frame 0: that delay is `start_time`;
- within an edit a frame keeps its distance to the edit's first frame in decode order, the
  edit starts where the ones before it end, and the whole timeline is then moved so that
  frame 0 is shown exactly at `start_time` (FFmpeg's `min_corrected_pts`);
- key frames are the shown frames whose sample is in `stss` (none listed: every sample is
  one), numbered in presentation order; frame 0 need not be one when an edit starts
  between key frames.
`presentation_duration` is the sum of the non-empty edits (the time the track's frames are
on screen, from frame 0), or without an edit list the track's media duration (`mdhd`).

Unknown (None, and `unknown` says why; the video is still registered): no video track, a
fragmented file, more than MAX_SAMPLES samples, `stts` and `stsz` disagreeing on the sample
count, an edit at a rate other than 1 (a dwell or slow motion), an empty edit after a media
edit, a media edit of duration 0, more than MAX_EDITS edits, edits whose frames overlap in
time, frames reordered further than MAX_REORDER samples. Key frames alone are unknown when
`stss` is present but empty (FFmpeg then asks the bitstream) or there are more than
MAX_KEYFRAMES of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import accumulate, chain, repeat
from operator import add, itemgetter
from typing import NamedTuple

from media_ingest.media import FrameTiming
from media_ingest.probing import frame_timing
from media_ingest.probing.mp4_index import Edit, Movie, Track

SOURCE = "mp4"
MAX_SAMPLES = 2_000_000  # about 18.5 hours at 30 fps
MAX_EDITS = 16
MAX_WORK = 4_000_000  # samples x edits: each edit streams the samples once more
MAX_REORDER = 256  # B-frame pyramids reorder by under 20 samples; open GOPs by a few more
# Encord entries and catalog items stay small: a longer list is left out (and logged).
MAX_KEYFRAMES = 10_000
_UNIT_RATE = 0x10000  # 1.0 in 16.16 fixed point


class VideoFrames(NamedTuple):
    timing: FrameTiming
    # 0-based presentation-order frame numbers of key frames; None: unknown or over the cap.
    keyframes: tuple[int, ...] | None


class _Unknown(Exception):
    """Why the frames cannot be told exactly (becomes FrameTiming.unknown)."""


@dataclass(frozen=True)
class _Segment:
    """One shown edit: samples with `start <= composition time < end` (track ticks), placed
    at `offset` (ticks) on the presentation timeline before the final correction."""

    start: int
    end: int | None  # None: no edit list, every sample
    offset: int


@dataclass
class _Seen:
    """What a first pass over one segment found."""

    count: int = 0
    first_dts: int = 0
    first_delta: int = 0
    lowest: int = 0  # smallest composition time shown


def video_frames(movie: Movie, keyframes: bool = True) -> VideoFrames:
    """The first video track's frames, or an unknown FrameTiming saying why not."""
    track = movie.first_video()
    if track is None:
        return VideoFrames(frame_timing.unknown(SOURCE, "the moov has no video track"), None)
    try:
        return _frames(movie, track, keyframes)
    except _Unknown as exc:
        return VideoFrames(frame_timing.unknown(SOURCE, str(exc)), None)


def _frames(movie: Movie, track: Track, want_keyframes: bool) -> VideoFrames:
    if movie.fragmented:
        raise _Unknown("fragmented MP4: its samples are listed in moof fragments, not read")
    _check_bounds(track)
    segments, empty = _segments(track, movie.timescale)
    if len(segments) * track.sample_count > MAX_WORK:
        raise _Unknown(
            f"{len(segments)} edits over {track.sample_count:,} samples: over the work cap"
        )
    seen = [_first_pass(track, segment) for segment in segments]
    shown = [(segment, found) for segment, found in zip(segments, seen, strict=True) if found.count]
    # FFmpeg moves the timeline so that frame 0 is shown at the end of the empty edits.
    lowest = min((s.offset + f.lowest - f.first_dts for s, f in shown), default=0)
    shift = max(0, lowest - empty) if track.edits is not None else 0

    keys: list[int] = []
    passes = 0

    def times() -> Iterator[int]:
        nonlocal passes
        passes += 1
        frames = _presented(track, shown, shift)
        if passes == 1 and want_keyframes:
            return _noting_keys(frames, keys)
        return map(itemgetter(0), frames)

    lone = shown[0][1].first_delta if shown else 0
    try:
        found = frame_timing.cadence(times, lone)
    except ValueError as exc:  # edits whose frames interleave in time
        raise _Unknown(f"the edit list overlaps its frames in time ({exc})") from exc
    timing = frame_timing.measured(
        SOURCE, found, track.timescale, presentation_duration=_presentation(movie, track)
    )
    known = want_keyframes and track.stss != b"" and len(keys) <= MAX_KEYFRAMES
    return VideoFrames(timing, tuple(keys) if known else None)


def _noting_keys(frames: Iterator[tuple[int, bool]], keys: list[int]) -> Iterator[int]:
    """The frames' times, noting the numbers of the key frames in `keys` (up to the cap)."""
    for number, (time, sync) in enumerate(frames):
        if sync and len(keys) <= MAX_KEYFRAMES:
            keys.append(number)
        yield time


def _check_bounds(track: Track) -> None:
    if track.timescale <= 0:
        raise _Unknown("the video track's timescale is 0")
    if track.sample_count > MAX_SAMPLES:
        raise _Unknown(f"{track.sample_count:,} samples; the cap is {MAX_SAMPLES:,}")
    timed = sum(n for n, _ in track.decode_deltas())
    if timed != track.sample_count:
        raise _Unknown(f"stts times {timed:,} samples but stsz sizes {track.sample_count:,}")


def _segments(track: Track, movie_timescale: int) -> tuple[list[_Segment], int]:
    """The shown edits in order, and the leading empty time (track ticks)."""
    if track.edits is None:
        return [_Segment(start=0, end=None, offset=0)], 0
    if len(track.edits) > MAX_EDITS:
        raise _Unknown(f"{len(track.edits)} edits; the cap is {MAX_EDITS}")
    if movie_timescale <= 0:
        raise _Unknown("the movie's timescale is 0, so its edits have no length")
    segments: list[_Segment] = []
    position = empty = 0
    for edit in track.edits:
        length = _rescale(edit.duration, track.timescale, movie_timescale)
        _check_edit(edit, after_media=bool(segments))
        if edit.empty:
            empty += length
        else:
            segments.append(_Segment(edit.media_time, edit.media_time + length, position))
        position += length
    return segments, empty


def _check_edit(edit: Edit, after_media: bool) -> None:
    if edit.rate != _UNIT_RATE:
        raise _Unknown(f"an edit plays at rate {edit.rate / _UNIT_RATE:g}, not 1")
    if edit.empty and after_media:
        raise _Unknown("an empty edit after a media edit (a gap inside the presentation)")
    if not edit.empty and (edit.media_time < 0 or edit.duration == 0):
        raise _Unknown(f"an edit at media time {edit.media_time} lasting {edit.duration}")


def _rescale(value: int, into: int, source: int) -> int:
    """value * into / source, rounded to nearest, halves away from zero (av_rescale)."""
    return (value * into + source // 2) // source


def _samples(track: Track) -> Iterator[tuple[int, int, bool, int]]:
    """(decode time, composition time, sync, decode delta) of every sample, decode order.

    Built from itertools over the run-length tables (no Python loop per sample here): an
    hour of video is 100,000 samples, read twice or three times per probe."""
    deltas = list(track.decode_deltas())
    offsets = chain(
        chain.from_iterable(repeat(offset, n) for n, offset in track.composition_offsets()),
        repeat(0),  # past the table (or without one): no offset, as FFmpeg fills it
    )
    composition = map(add, _decode_times(deltas), offsets)
    per_sample = chain.from_iterable(repeat(delta, n) for n, delta in deltas)
    # Ends with the stts table (the sync flags never do).
    return zip(_decode_times(deltas), composition, _syncs(track), per_sample, strict=False)


def _decode_times(deltas: list[tuple[int, int]]) -> Iterator[int]:
    starts = accumulate((n * delta for n, delta in deltas), initial=0)
    return chain.from_iterable(
        range(start, start + n * delta, delta) if delta else repeat(start, n)
        for start, (n, delta) in zip(starts, deltas, strict=False)
    )


def _syncs(track: Track) -> Iterator[bool]:
    """FFmpeg's walk over `stss`: sample i is a sync sample when i (+1 if the table is
    1-based) is the next number listed, so only the increasing start of the table counts
    (a number not above the last one matched stops the walk); an empty table: none known.
    One byte a sample, never a Python int per listed number."""
    if track.stss is None:
        return repeat(True)
    flags = bytearray(track.sample_count)
    numbers = track.sync_numbers()
    first = next(numbers, None)
    base = 1 if first else 0
    last = -1
    for number in chain([first] if first is not None else [], numbers):
        sample = number - base
        if sample <= last or sample >= len(flags):
            break
        flags[sample] = 1
        last = sample
    return chain(map(bool, flags), repeat(False))


def _first_pass(track: Track, segment: _Segment) -> _Seen:
    if segment.end is None:  # every sample: nothing to search
        first_delta = next((delta for n, delta in track.decode_deltas() if n), 0)
        return _Seen(count=track.sample_count, first_delta=first_delta)
    found = _Seen()
    for dts, cts, _, delta in _samples(track):
        if not segment.start <= cts < segment.end:
            continue
        if found.count == 0:
            found.first_dts, found.first_delta, found.lowest = dts, delta, cts
        found.count += 1
        found.lowest = min(found.lowest, cts)
    return found


def _presented(
    track: Track, shown: list[tuple[_Segment, _Seen]], shift: int
) -> Iterator[tuple[int, bool]]:
    """(presentation time, sync) of every shown frame, in presentation order."""
    for segment, seen in shown:
        samples = _samples(track)
        if segment.end is None:
            timed = ((cts, sync) for _, cts, sync, _ in samples)
        else:
            base, start, end = segment.offset - seen.first_dts - shift, segment.start, segment.end
            timed = ((base + cts, sync) for _, cts, sync, _ in samples if start <= cts < end)
        # Without composition offsets, decode order is presentation order.
        yield from timed if track.ctts is None else _reordered(timed)


def _reordered(timed: Iterator[tuple[int, bool]]) -> Iterator[tuple[int, bool]]:
    """Presentation order through a window of MAX_REORDER frames (ties: decode order)."""
    window: list[tuple[int, int, bool]] = []
    last: int | None = None
    for index, (time, sync) in enumerate(timed):
        heapq.heappush(window, (time, index, sync))
        if len(window) > MAX_REORDER:
            last = yield from _release(window, last)
    while window:
        last = yield from _release(window, last)


def _release(
    window: list[tuple[int, int, bool]], last: int | None
) -> Generator[tuple[int, bool], None, int]:
    time, _, sync = heapq.heappop(window)
    if last is not None and time < last:
        raise _Unknown(f"frames are reordered by more than {MAX_REORDER} samples")
    yield time, sync
    return time


def _presentation(movie: Movie, track: Track) -> float:
    if track.edits is not None:
        shown = sum(e.duration for e in track.edits if not e.empty)
        return frame_timing.seconds(shown, movie.timescale)
    duration = track.media_duration
    if duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):  # "unknown" in mdhd
        duration = sum(n * delta for n, delta in track.decode_deltas())
    return frame_timing.seconds(duration, track.timescale)
