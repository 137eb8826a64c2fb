"""Key frames of a video from its container index (ISO-BMFF `moov`), for Encord's `$encord` block.

Owns finding `moov` with a few bounded range reads and reading the first video track's
sample tables. Never decodes and never reads media data (`mdat`); never trusts a size.

Encord (the shape `manifest.entry_for` writes, and where it comes from):
- https://docs.encord.com/docs/index-keyframes: `keyframes` is a reserved keyword of custom
  metadata, a list of frame numbers (`"keyframes": [13, 17, 19, ...]`).
- https://docs.encord.com/sdk-documentation/datasets-sdk/sdk-client-metadata and
  https://docs.encord.com/sdk-documentation/index-sdk/custom-metadata/sdk-import-custom-metadata:
  `config` is optional beside the key frames; without it `sampling_rate` is 1 frame per
  second and `keyframe_mode` is `frame`; `sampling_rate` 0 imports only the first frame and
  the key frames.
- https://docs.encord.com/datasets/supported-videos/: Encord extracts frames one by one with
  FFmpeg and maps every label to a frame index, so a frame number here is the 0-based index
  of the frame in presentation order, as FFmpeg outputs them.
The excerpts found did not show a complete `$encord` JSON example; the block name comes from
the issue, and its shape (`{"keyframes": [...], "config": {...}}`) is our reading of the pages
above (see README, Manifests).

Frame numbers: each sample's presentation time is its decode time (`stts`) plus its
composition offset (`ctts`); samples ranked by presentation time give frame numbers, and the
sync samples (`stss`; none listed: every sample is one) are the key frames. Edit lists
(`elst`) are ignored: a file whose edit list drops leading frames would number its frames
from the first stored frame, not the first shown one (rare outside edited MOV files).
Fragmented MP4 (samples in `moof`) and non-MP4 containers (Matroska `Cues` are not read yet)
answer None: unknown.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import NamedTuple

# Bounds: every one keeps a hostile or broken file from costing memory, time or reads.
MAX_MOOV_BYTES = 64 * 1024 * 1024
MAX_SAMPLES = 2_000_000  # about 18.5 hours at 30 fps
MAX_TOP_LEVEL_READS = 4  # extra GETs spent looking for a moov past the first range
TAIL_READ_BYTES = 64 * 1024  # read this much at a box header: a small moov comes with it
# Encord entries and catalog items stay small: a longer list is left out (and logged).
MAX_KEYFRAMES = 10_000

ReadAt = Callable[[int, int], bytes]  # (start, length) -> bytes of the same object version


class KeyframeIndexError(ValueError):
    """The container index is truncated, inconsistent or over a bound."""


class Box(NamedTuple):
    kind: bytes
    start: int  # offset of the box header
    header: int  # header length (8, or 16 with a 64-bit size)
    size: int  # whole box, header included

    @property
    def end(self) -> int:
        return self.start + self.size


def read_header(data: bytes, pos: int) -> tuple[bytes, int, int]:
    """(kind, header length, declared size) of the box header at `pos`, unchecked.

    A declared size of 0 means "to the end of the enclosing space"."""
    if pos + 8 > len(data):
        raise KeyframeIndexError(f"box header at {pos} is truncated")
    size, kind = struct.unpack_from(">I4s", data, pos)
    if size != 1:
        return kind, 8, size
    if pos + 16 > len(data):
        raise KeyframeIndexError(f"64-bit box size at {pos} is truncated")
    (size,) = struct.unpack_from(">Q", data, pos + 8)
    return kind, 16, size


def parse_header(data: bytes, pos: int, limit: int) -> Box:
    """The box whose header starts at `pos`; `limit` is where the enclosing space ends."""
    kind, header, size = read_header(data, pos)
    if size == 0:  # to the end of the enclosing space
        size = limit - pos
    if size < header or pos + size > limit:
        raise KeyframeIndexError(f"box {kind!r} at {pos} has an impossible size {size}")
    return Box(kind, pos, header, size)


def children(data: bytes, start: int, end: int) -> Iterator[Box]:
    pos = start
    while pos + 8 <= end:
        box = parse_header(data, pos, end)
        yield box
        pos = box.end  # size >= header >= 8: always advances


def _child(data: bytes, parent: Box, kind: bytes) -> Box | None:
    inside = children(data, parent.start + parent.header, parent.end)
    return next((box for box in inside if box.kind == kind), None)


def _path(data: bytes, parent: Box, *kinds: bytes) -> Box | None:
    box: Box | None = parent
    for kind in kinds:
        if box is None:
            return None
        box = _child(data, box, kind)
    return box


def top_level_overrun(head: bytes, size: int) -> str | None:
    """Why the object is cut short, if a top-level box seen in `head` ends past `size`.

    ffprobe 8.1 accepts an MP4 whose moov is whole but whose mdat is cut (a truncated
    upload of a faststart file) and reports its streams as if nothing were missing. Only
    the headers within `head` are checked (no extra read): a moov longer than the first
    range hides the mdat header. Boxes that do not parse are left to ffprobe to judge.
    """
    pos = 0
    while pos + 8 <= min(len(head), size):
        try:
            kind, header, declared = read_header(head, pos)
        except KeyframeIndexError:  # a 64-bit size past the first range: not known
            return None
        # 0: to the end of the object, whatever its length; under the header: not a box.
        if declared < header:
            return None
        if pos + declared > size:
            name = kind.decode("latin-1")
            return (
                f"truncated: the {name!r} box at byte {pos:,} declares {declared:,} bytes, "
                f"but the object ends at {size:,}"
            )
        pos += declared
    return None


def find_moov(head: bytes, size: int, read_at: ReadAt) -> bytes | None:
    """The whole `moov` box, following top-level box sizes from the start of the object.

    `head` is the object's first range (offset 0). A moov inside it costs nothing; otherwise
    each top-level header outside what was read costs one GET of TAIL_READ_BYTES (a small
    moov at the end comes with it), and a longer moov one more GET. None: no moov found
    within MAX_TOP_LEVEL_READS reads, a fragment before any moov, or moov over the cap.
    """
    window_start, window = 0, head
    pos = reads = 0
    while pos + 8 <= size:
        offset = pos - window_start
        if offset < 0 or (offset + 16 > len(window) and window_start + len(window) < size):
            if reads >= MAX_TOP_LEVEL_READS:
                return None
            reads += 1
            window_start, window = pos, read_at(pos, min(TAIL_READ_BYTES, size - pos))
            offset = 0
        box = parse_header(window, offset, size - window_start)
        if box.kind == b"moov":
            if box.size > MAX_MOOV_BYTES:
                raise KeyframeIndexError(
                    f"moov is {box.size:,} bytes; the cap is {MAX_MOOV_BYTES:,}"
                )
            have = window[offset : offset + box.size]
            if len(have) < box.size:
                have += read_at(pos + len(have), box.size - len(have))
            if len(have) != box.size:
                raise KeyframeIndexError("moov read came back short")
            return have
        if box.kind == b"moof":  # fragmented, and no moov before the fragments
            return None
        pos += box.size
    return None


def mp4_keyframes(moov: bytes) -> tuple[int, ...] | None:
    """0-based presentation-order frame numbers of the first video track's sync samples.

    None: no video track, a fragmented file (`mvex`), or an empty sync table (unknown).
    """
    top = parse_header(moov, 0, len(moov))
    if top.kind != b"moov":
        raise KeyframeIndexError("not a moov box")
    if _child(moov, top, b"mvex") is not None:
        return None  # fragmented: the samples are in moof boxes, not here
    for trak in children(moov, top.header, top.end):
        if trak.kind != b"trak":
            continue
        hdlr = _path(moov, trak, b"mdia", b"hdlr")
        if hdlr is None or _payload(moov, hdlr, 12)[8:12] != b"vide":
            continue
        stbl = _path(moov, trak, b"mdia", b"minf", b"stbl")
        if stbl is None:
            raise KeyframeIndexError("video track has no sample table")
        return _track_keyframes(moov, stbl)
    return None


def _payload(data: bytes, box: Box, need: int) -> bytes:
    body = data[box.start + box.header : box.end]
    if len(body) < need:
        raise KeyframeIndexError(f"{box.kind!r} box is truncated")
    return body


def _table(data: bytes, box: Box, width: int) -> tuple[bytes, int]:
    """A full box's entries (each `width` bytes) and their count, checked to fit the box."""
    body = _payload(data, box, 8)
    (count,) = struct.unpack_from(">I", body, 4)
    if count * width > len(body) - 8:
        raise KeyframeIndexError(f"{box.kind!r} lists {count:,} entries it does not hold")
    return body[8 : 8 + count * width], count


def _track_keyframes(data: bytes, stbl: Box) -> tuple[int, ...] | None:
    stts = _child(data, stbl, b"stts")
    if stts is None:
        raise KeyframeIndexError("video track has no stts")
    entries, _ = _table(data, stts, 8)
    pairs = list(struct.iter_unpack(">II", entries))
    samples = sum(n for n, _ in pairs)
    if samples > MAX_SAMPLES:
        raise KeyframeIndexError(f"{samples:,} samples; the cap is {MAX_SAMPLES:,}")
    dts: list[int] = []
    now = 0
    for n, delta in pairs:
        dts.extend(range(now, now + n * delta, delta) if delta else [now] * n)
        now += n * delta
    pts = _with_offsets(data, stbl, dts)
    sync = _sync_samples(data, stbl, samples)
    if sync is None:
        return None
    if all(a <= b for a, b in pairwise(pts)):
        return sync  # presentation order is decode order
    order = sorted(range(samples), key=pts.__getitem__)  # stable: ties keep decode order
    rank = [0] * samples
    for position, sample in enumerate(order):
        rank[sample] = position
    return tuple(sorted(rank[s] for s in sync))


def _with_offsets(data: bytes, stbl: Box, dts: list[int]) -> list[int]:
    ctts = _child(data, stbl, b"ctts")
    if ctts is None:
        return dts
    entries, _ = _table(data, ctts, 8)
    pts = list(dts)
    i = 0
    # Offsets read as signed (version 1 says so; FFmpeg reads version 0 the same way).
    for n, offset in struct.iter_unpack(">Ii", entries):
        if i >= len(pts):
            break
        for j in range(i, min(i + n, len(pts))):
            pts[j] += offset
        i += n
    return pts


def _sync_samples(data: bytes, stbl: Box, samples: int) -> tuple[int, ...] | None:
    stss = _child(data, stbl, b"stss")
    if stss is None:
        return tuple(range(samples))  # no table: every sample is a sync sample
    entries, count = _table(data, stss, 4)
    if count == 0:
        return None  # FFmpeg then guesses from the bitstream: unknown here
    numbers = {n - 1 for (n,) in struct.iter_unpack(">I", entries) if 1 <= n <= samples}
    return tuple(sorted(numbers))
