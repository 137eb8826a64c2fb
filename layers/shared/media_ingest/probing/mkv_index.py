"""Frame timing of a Matroska/WebM video from the bytes the probe already read (its first
range): the EBML header, Segment `Info` and `Tracks`, and the clusters inside that range.
Pure: bytes in, a FrameTiming out; never reads more, never decodes, never trusts a size.

What can be known, and why the rest is None (with the reason in `unknown`):
- Matroska stores no frame count and no per-frame table: `Tracks` may declare a
  `DefaultDuration`, but muxers write it for variable-rate video too (FFmpeg 5.1 wrote
  33.3 ms, and ffprobe then reports 30/1 as the average rate, for the test file that runs
  at 30 then 15 fps), so it proves nothing. `Cues` list key frames by time, typically only some of
  them, and say nothing of the frames between: they cannot give a count or prove a constant
  rate either, so they are not read (no extra GET for them).
- Only every `SimpleBlock`/`BlockGroup` of the video track tells count and cadence. When the
  first range holds the whole object (short clips) they are all read and everything is
  exact: block timestamps are presentation times (cluster `Timestamp` + the block's signed
  offset, in `TimestampScale` ticks), ranked as FFmpeg outputs frames. Otherwise the frame
  count and rate mode are unknown: counting them would mean reading every cluster.
- Laced video blocks (several frames, one timestamp) make the timestamps of all but the
  first unknown: then only the count is given.
Element IDs and layout: the Matroska specification (RFC 9559): EBML header `1A45DFA3`,
Segment `18538067`, Info `1549A966` with TimestampScale `2AD7B1`, Tracks `1654AE6B`,
TrackEntry `AE` with TrackNumber `D7` and TrackType `83` (1: video), Cluster `1F43B675`
with Timestamp `E7`, SimpleBlock `A3`, BlockGroup `A0` with Block `A1`, and an unknown size
(all ones: "until the next element of the same or a higher level", live WebM recordings).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from media_ingest.media import FrameTiming
from media_ingest.probing import frame_timing

SOURCE = "matroska"
MAX_FRAMES = 200_000  # a first range never holds more; a bound on hostile lacing counts

EBML = 0x1A45DFA3
SEGMENT = 0x18538067
INFO = 0x1549A966
TIMESTAMP_SCALE = 0x2AD7B1
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
DEFAULT_DURATION = 0x23E383
CLUSTER = 0x1F43B675
CLUSTER_TIMESTAMP = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B
# Top-level children of a Segment: an element of unknown size ends where one of these starts.
_SEGMENT_CHILDREN = frozenset(
    {0x114D9B74, INFO, TRACKS, CLUSTER, 0x1C53BB6B, 0x1043A770, 0x1941A469, 0x1254C367}
)
_VIDEO = 1


class MatroskaUnreadable(ValueError):
    """The headers are damaged or end before what was needed."""


class Element(NamedTuple):
    id: int
    start: int  # where its data starts
    end: int | None  # None: unknown size


class VideoFrames(NamedTuple):
    timing: FrameTiming
    keyframes: tuple[int, ...] | None


@dataclass
class _Track:
    number: int
    default_duration: int | None  # ns


@dataclass
class _Blocks:
    times: list[int] = field(default_factory=list)  # ticks, decode order
    keys: list[bool] = field(default_factory=list)
    laced: bool = False
    last_duration: int | None = None  # ticks: the BlockDuration of the last block read


def video_frames(head: bytes, size: int) -> VideoFrames:
    """What `head` (the object's first bytes; `size`: the whole object's) says."""
    try:
        return _read(head, size)
    except MatroskaUnreadable as exc:
        return VideoFrames(frame_timing.unknown(SOURCE, f"Matroska headers not read: {exc}"), None)


def _read(head: bytes, size: int) -> VideoFrames:
    ebml = _element(head, 0)
    if ebml.id != EBML or ebml.end is None:
        raise MatroskaUnreadable("no EBML header")
    segment = _element(head, ebml.end)
    if segment.id != SEGMENT:
        raise MatroskaUnreadable("no Segment after the EBML header")
    # Everything is seen only when the first range is the whole object and nothing in it
    # claims to run past its end (a cut upload).
    walk = _Walk(complete=len(head) >= size)
    end = len(head) if segment.end is None else min(segment.end, len(head))
    pos = segment.start
    while pos < end:
        try:
            element = _element(head, pos)
        except MatroskaUnreadable:
            if walk.complete:
                raise
            break  # an element header cut by the end of the first range
        pos = walk.visit(head, element)
    if walk.video is None:
        raise MatroskaUnreadable("no video track in Tracks within the first range")
    return _timing(walk.video, walk.scale, walk.blocks, walk.complete)


@dataclass
class _Walk:
    """What the Segment's top-level elements said so far."""

    complete: bool
    scale: int = 1_000_000  # TimestampScale's default: ticks of 1 ms
    video: _Track | None = None
    blocks: _Blocks = field(default_factory=_Blocks)

    def visit(self, head: bytes, element: Element) -> int:
        """Take one top-level element in; returns where the next one starts."""
        if element.id == CLUSTER:
            if self.video is None:
                raise MatroskaUnreadable("a Cluster before the video track's TrackEntry")
            self.complete &= element.end is None or element.end <= len(head)
            return _read_cluster(head, element, self.video.number, self.blocks)
        end = _end(element)
        if end > len(head):
            self.complete = False
        elif element.id == INFO:
            self.scale = _uint_child(head, element, TIMESTAMP_SCALE) or self.scale
        elif element.id == TRACKS:
            self.video = _first_video(head, element)
        return end


def _timing(video: _Track, scale: int, blocks: _Blocks, complete: bool) -> VideoFrames:
    if not complete:
        return VideoFrames(
            frame_timing.unknown(
                SOURCE,
                "Matroska keeps no frame count or frame table: only reading every cluster "
                "would tell, and the object is longer than the probe's first read",
            ),
            None,
        )
    if blocks.laced:
        return VideoFrames(
            frame_timing.unknown(
                SOURCE,
                "laced video blocks: the frames after the first in a block have no timestamp",
                frame_count=len(blocks.times),
            ),
            None,
        )
    order = sorted(range(len(blocks.times)), key=blocks.times.__getitem__)
    times = [blocks.times[i] for i in order]
    lone = blocks.last_duration
    if lone is None and video.default_duration is not None:
        lone = round(video.default_duration / scale)
    found = frame_timing.cadence(lambda: iter(times), lone)
    # Ticks of TimestampScale nanoseconds: the clock's rate is 10^9 / scale per second.
    timing = frame_timing.measured(SOURCE, found, Fraction(1_000_000_000, scale))
    keys = tuple(rank for rank, i in enumerate(order) if blocks.keys[i])
    return VideoFrames(timing, keys)


def _read_cluster(head: bytes, cluster: Element, track: int, into: _Blocks) -> int:
    """Read the cluster's blocks of `track`; returns where the next element starts."""
    base = 0
    cut = cluster.end is not None and cluster.end > len(head)  # by the end of the first range
    end = len(head) if cluster.end is None else min(cluster.end, len(head))
    pos = cluster.start
    while pos < end:
        element = _cluster_child(head, pos, end, cut)
        if element is None:
            return end
        if cluster.end is None and element.id in _SEGMENT_CHILDREN:
            return pos  # an unknown-size cluster ends where the next top-level element starts
        if element.id == CLUSTER_TIMESTAMP:
            base = _uint(head, element)
        elif element.id == SIMPLE_BLOCK:
            _block(head, element, base, track, into, simple=True)
        elif element.id == BLOCK_GROUP:
            _group(head, element, base, track, into)
        if len(into.times) > MAX_FRAMES:
            raise MatroskaUnreadable(f"more than {MAX_FRAMES:,} frames in the first range")
        pos = _end(element)
    return end


def _cluster_child(head: bytes, pos: int, end: int, cut: bool) -> Element | None:
    """The element at `pos` inside a cluster ending at `end`; None where the first range
    cut the cluster (what follows was not read)."""
    try:
        element = _element(head, pos)
    except MatroskaUnreadable:
        if cut:
            return None
        raise
    if element.id in _SEGMENT_CHILDREN:
        return element
    if element.end is None or element.end > end:
        if cut:
            return None
        raise MatroskaUnreadable(f"element {element.id:X} runs past its cluster")
    return element


def _group(head: bytes, group: Element, base: int, track: int, into: _Blocks) -> None:
    before = len(into.times)
    duration = None
    for inner in _children(head, group):
        if inner.id == BLOCK:
            _block(head, inner, base, track, into, simple=False)
        elif inner.id == BLOCK_DURATION:
            duration = _uint(head, inner)
    if len(into.times) > before:
        into.last_duration = duration


def _block(
    head: bytes, element: Element, base: int, track: int, into: _Blocks, *, simple: bool
) -> None:
    end = _end(element)
    number, pos = _vint(head, element.start)
    if number & ~_marker(head[element.start]) != track:
        return
    if pos + 3 > end:
        raise MatroskaUnreadable("a block header is truncated")
    offset = int.from_bytes(head[pos : pos + 2], "big", signed=True)
    flags = head[pos + 2]
    into.times.append(base + offset)
    # A BlockGroup is a key frame unless it has a ReferenceBlock; FFmpeg takes the group's
    # flag the same way. SimpleBlock: bit 0x80.
    into.keys.append(bool(flags & 0x80) if simple else True)
    into.last_duration = None
    if flags & 0x06:
        into.laced = True
        if pos + 4 > end:
            raise MatroskaUnreadable("a laced block header is truncated")
        into.times.extend([base + offset] * head[pos + 3])
        into.keys.extend([False] * head[pos + 3])


def _first_video(head: bytes, tracks: Element) -> _Track | None:
    for entry in _children(head, tracks):
        if entry.id == TRACK_ENTRY and _uint_child(head, entry, TRACK_TYPE) == _VIDEO:
            number = _uint_child(head, entry, TRACK_NUMBER)
            if number is None:
                raise MatroskaUnreadable("a video track without a TrackNumber")
            return _Track(number, _uint_child(head, entry, DEFAULT_DURATION))
    return None


def _uint_child(head: bytes, parent: Element, wanted: int) -> int | None:
    for element in _children(head, parent):
        if element.id == wanted:
            return _uint(head, element)
    return None


def _uint(head: bytes, element: Element) -> int:
    end = _end(element)
    if end - element.start > 8:
        raise MatroskaUnreadable(f"element {element.id:X} is not an unsigned integer")
    return int.from_bytes(head[element.start : end], "big")


def _children(head: bytes, parent: Element) -> Iterator[Element]:
    """The elements inside a sized parent wholly within `head`."""
    end = _end(parent)
    if end > len(head):
        raise MatroskaUnreadable(f"element {parent.id:X} runs past the bytes read")
    pos = parent.start
    while pos < end:
        element = _element(head, pos)
        if _end(element) > end:
            raise MatroskaUnreadable(f"element {element.id:X} runs past its parent")
        yield element
        pos = _end(element)


def _end(element: Element) -> int:
    if element.end is None:
        raise MatroskaUnreadable(f"element {element.id:X} of unknown size")
    return element.end


def _element(head: bytes, pos: int) -> Element:
    ident, pos = _vint(head, pos)
    length = pos  # where the size starts
    raw, start = _vint(head, length)
    width = start - length
    size = raw & ~_marker(head[length])
    unknown = size == (1 << (7 * width)) - 1
    return Element(ident, start, None if unknown else start + size)


def _marker(first: int) -> int:
    """The length-marker bit of a variable-length integer whose first byte is `first`,
    in place (0x80 for one byte, 0x4000 for two, ...)."""
    length = 9 - first.bit_length()
    return 1 << (7 * length)


def _vint(head: bytes, pos: int) -> tuple[int, int]:
    """The raw EBML variable-length integer at `pos` (marker bit kept), and where it ends."""
    if pos >= len(head):
        raise MatroskaUnreadable(f"element header at {pos} is past the bytes read")
    first = head[pos]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or pos + length > len(head):
        raise MatroskaUnreadable(f"bad or truncated element header at {pos}")
    return int.from_bytes(head[pos : pos + length], "big"), pos + length
