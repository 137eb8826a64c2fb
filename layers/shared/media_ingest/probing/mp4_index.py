"""The MP4/MOV container index (ISO-BMFF `moov`), read without decoding.

Owns finding `moov` with a few bounded range reads, reading each track's sample tables
(`stts`, `ctts`, `stss`, `stsz`/`stz2`, `stco`/`co64`, `elst`, `mdhd`) into `Track`s, and
refusing, before ffprobe trusts them, an index no real object could have: more samples or
sample bytes than the object holds, tables that list entries they do not hold, chunks past
the object's end (issue 11: ffprobe allocates what the tables declare), and samples kept in
another file (a data reference that is not self-contained: never followed).
Never decodes, never reads media data (`mdat`), never follows a reference, never trusts a
declared size. What the frames of a track are is `mp4_frames`'s business.

Sources: ISO/IEC 14496-12 (box layouts: `mvhd`, `mdhd`, `elst`, `stts`, `ctts`, `stss`,
`stsz`, `stz2`, `stco`, `co64`, `dref` with `url `/`urn ` entries whose flag 1 means "in this
file", `stsd` sample entries carrying a `data_reference_index`); Apple's QuickTime File
Format (`alis` data references, the same flag). FFmpeg's `libavformat/mov.c` reads them the
same way (its `enable_drefs` option, off by default, is the reason a reference movie is
opened at all and then reads nothing: we refuse it instead).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from media_ingest.errors import ErrorCode, MediaError

# Bounds: every one keeps a hostile or broken file from costing memory, time or reads.
MAX_MOOV_BYTES = 64 * 1024 * 1024
MAX_TOP_LEVEL_READS = 4  # extra GETs spent looking for a moov past the first range
TAIL_READ_BYTES = 64 * 1024  # read this much at a box header: a small moov comes with it
# When the rest of the object is at most this long, one GET reads all of it: a moov at the
# end (the box after mdat) then costs exactly one bounded read, whatever its length (a moov
# of 16 MiB indexes about five hours of video with its audio).
WHOLE_TAIL_BYTES = 16 * 1024 * 1024

ReadAt = Callable[[int, int], bytes]  # (start, length) -> bytes of the same object version

# Data reference entries that may say "the samples are in this file" (flag 1).
_REFERENCE_KINDS = (b"url ", b"urn ", b"alis")
_SELF_CONTAINED = 1


class IndexUnreadable(ValueError):
    """The container index is truncated, inconsistent or over a bound: not known, not fatal."""


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
        raise IndexUnreadable(f"box header at {pos} is truncated")
    size, kind = struct.unpack_from(">I4s", data, pos)
    if size != 1:
        return kind, 8, size
    if pos + 16 > len(data):
        raise IndexUnreadable(f"64-bit box size at {pos} is truncated")
    (size,) = struct.unpack_from(">Q", data, pos + 8)
    return kind, 16, size


def parse_header(data: bytes, pos: int, limit: int) -> Box:
    """The box whose header starts at `pos`; `limit` is where the enclosing space ends."""
    kind, header, size = read_header(data, pos)
    if size == 0:  # to the end of the enclosing space
        size = limit - pos
    if size < header or pos + size > limit:
        raise IndexUnreadable(f"box {kind!r} at {pos} has an impossible size {size}")
    return Box(kind, pos, header, size)


def children(data: bytes, start: int, end: int) -> Iterator[Box]:
    pos = start
    while pos + 8 <= end:
        box = parse_header(data, pos, end)
        yield box
        pos = box.end  # size >= header >= 8: always advances


def child(data: bytes, parent: Box, kind: bytes) -> Box | None:
    inside = children(data, parent.start + parent.header, parent.end)
    return next((box for box in inside if box.kind == kind), None)


def path(data: bytes, parent: Box, *kinds: bytes) -> Box | None:
    box: Box | None = parent
    for kind in kinds:
        if box is None:
            return None
        box = child(data, box, kind)
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
        except IndexUnreadable:  # a 64-bit size past the first range: not known
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

    `head` is the object's first range (offset 0). A moov inside it costs nothing. Past it,
    the rest of the object costs one GET when it is at most WHOLE_TAIL_BYTES (a moov at the
    end: exactly its bytes); otherwise each top-level header costs one GET of TAIL_READ_BYTES
    (a small moov comes with it) and a longer moov one more. A faststart moov longer than
    the first range costs one GET for its rest. None: no moov found within
    MAX_TOP_LEVEL_READS reads, or a fragment before any moov. Raises IndexUnreadable for a
    moov over the cap or boxes that do not parse.
    """
    window_start, window = 0, head
    pos = reads = 0
    while pos + 8 <= size:
        offset = pos - window_start
        if offset < 0 or (offset + 16 > len(window) and window_start + len(window) < size):
            if reads >= MAX_TOP_LEVEL_READS:
                return None
            reads += 1
            rest = size - pos
            window_start = pos
            window = read_at(pos, rest if rest <= WHOLE_TAIL_BYTES else TAIL_READ_BYTES)
            offset = 0
        box = parse_header(window, offset, size - window_start)
        if box.kind == b"moov":
            if box.size > MAX_MOOV_BYTES:
                raise IndexUnreadable(f"moov is {box.size:,} bytes; the cap is {MAX_MOOV_BYTES:,}")
            have = window[offset : offset + box.size]
            if len(have) < box.size:
                have += read_at(pos + len(have), box.size - len(have))
            if len(have) != box.size:
                raise IndexUnreadable("moov read came back short")
            return have
        if box.kind == b"moof":  # fragmented, and no moov before the fragments
            return None
        pos += box.size
    return None


# -- the tables --------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One `elst` entry: `duration` in the movie's timescale, `media_time` in the track's
    (-1: an empty edit, nothing shown), `rate` in 16.16 fixed point (0x10000 plays at 1)."""

    duration: int
    media_time: int
    rate: int

    @property
    def empty(self) -> bool:
        return self.media_time == -1


@dataclass(frozen=True)
class Track:
    """One track's timing tables, kept as the raw big-endian entries (never expanded per
    sample here: a table of millions of entries stays one bytes object)."""

    number: int  # 1-based position among the movie's tracks
    handler: bytes  # b"vide", b"soun", ...
    timescale: int  # ticks per second of the track's media time (mdhd)
    media_duration: int  # mdhd, in the track's ticks
    sample_count: int  # stsz / stz2
    stts: bytes  # (count, delta) u32 pairs
    ctts: bytes | None  # (count, offset) pairs, offset read as signed (FFmpeg does)
    stss: bytes | None  # 1-based sync sample numbers; None: no table, every sample is one
    edits: tuple[Edit, ...] | None  # None: no edit list

    def decode_deltas(self) -> Iterator[tuple[int, int]]:
        return struct.iter_unpack(">II", self.stts)

    def composition_offsets(self) -> Iterator[tuple[int, int]]:
        return struct.iter_unpack(">Ii", self.ctts or b"")

    def sync_numbers(self) -> Iterator[int]:
        return (n for (n,) in struct.iter_unpack(">I", self.stss or b""))


@dataclass(frozen=True)
class Movie:
    timescale: int  # mvhd: the unit of edit durations
    tracks: tuple[Track, ...]
    fragmented: bool  # `mvex`: the samples are in `moof` fragments, not in these tables

    def first_video(self) -> Track | None:
        return next((t for t in self.tracks if t.handler == b"vide"), None)


def read_movie(moov: bytes, object_size: int | None = None) -> Movie:
    """Every track's tables, checked against `object_size` (None: not checked).

    Raises MediaError CORRUPT_MEDIA for declarations no object of this size could hold,
    MediaError INDIRECTION_REFUSED for samples in another file, IndexUnreadable for an
    index that does not parse (then the object is left to ffprobe to judge).
    """
    top = parse_header(moov, 0, len(moov))
    if top.kind != b"moov":
        raise IndexUnreadable("not a moov box")
    mvhd = child(moov, top, b"mvhd")
    movie_timescale = _timescale(moov, mvhd) if mvhd is not None else 0
    tracks = []
    number = 0
    for trak in children(moov, top.header, top.end):
        if trak.kind != b"trak":
            continue
        number += 1
        tracks.append(_track(moov, trak, number, object_size))
    fragmented = child(moov, top, b"mvex") is not None
    return Movie(movie_timescale, tuple(tracks), fragmented)


def _track(data: bytes, trak: Box, number: int, object_size: int | None) -> Track:
    mdia = child(data, trak, b"mdia")
    hdlr = child(data, mdia, b"hdlr") if mdia is not None else None
    handler = payload(data, hdlr, 12)[8:12] if hdlr is not None else b""
    stbl = path(data, trak, b"mdia", b"minf", b"stbl")
    if mdia is None or stbl is None:
        raise IndexUnreadable(f"track {number} has no sample table")
    mdhd = child(data, mdia, b"mdhd")
    if mdhd is None:
        raise IndexUnreadable(f"track {number} has no media header")
    timescale, media_duration = _header_times(data, mdhd)
    sample_count, sample_bytes = _sample_sizes(data, stbl, number)
    stts = _entries(data, child(data, stbl, b"stts"), 8, number)
    ctts_box, stss_box = child(data, stbl, b"ctts"), child(data, stbl, b"stss")
    track = Track(
        number=number,
        handler=handler,
        timescale=timescale,
        media_duration=media_duration,
        sample_count=sample_count,
        stts=stts,
        ctts=_entries(data, ctts_box, 8, number) if ctts_box is not None else None,
        stss=_entries(data, stss_box, 4, number) if stss_box is not None else None,
        edits=_edits(data, path(data, trak, b"edts", b"elst"), number),
    )
    _check_self_contained(data, trak, stbl, number)
    if object_size is not None:
        _check_fits(track, sample_bytes, _chunk_end(data, stbl, number), object_size)
    return track


def payload(data: bytes, box: Box, need: int) -> bytes:
    body = data[box.start + box.header : box.end]
    if len(body) < need:
        raise IndexUnreadable(f"{box.kind!r} box is truncated")
    return body


def _timescale(data: bytes, box: Box) -> int:
    return _header_times(data, box)[0]


def _header_times(data: bytes, box: Box) -> tuple[int, int]:
    """(timescale, duration) of an `mvhd` or `mdhd` (version 0: 32-bit times, 1: 64-bit)."""
    body = payload(data, box, 4)
    if body[0] == 1:
        body = payload(data, box, 32)
        return struct.unpack_from(">IQ", body, 20)
    body = payload(data, box, 20)
    return struct.unpack_from(">II", body, 12)


def _table(data: bytes, box: Box, width: int, track: int) -> tuple[bytes, int]:
    """A full box's entries (each `width` bytes) and their count, checked to fit the box.

    A count the box cannot hold is impossible in any object: CORRUPT_MEDIA (FFmpeg would
    allocate for the declared count before it finds out)."""
    body = payload(data, box, 8)
    (count,) = struct.unpack_from(">I", body, 4)
    if count * width > len(body) - 8:
        raise _corrupt(
            f"track {track}'s {_name(box)} declares {count:,} entries but holds "
            f"{(len(body) - 8) // width:,}"
        )
    return body[8 : 8 + count * width], count


def _entries(data: bytes, box: Box | None, width: int, track: int) -> bytes:
    if box is None:
        raise IndexUnreadable(f"track {track} has no stts")
    return _table(data, box, width, track)[0]


def _sample_sizes(data: bytes, stbl: Box, track: int) -> tuple[int, int]:
    """(sample count, total sample bytes) from `stsz` or the compact `stz2`."""
    stsz = child(data, stbl, b"stsz")
    if stsz is not None:
        body = payload(data, stsz, 12)
        constant, count = struct.unpack_from(">II", body, 4)
        if constant:
            return count, constant * count
        held = (len(body) - 12) // 4
        if count > held:
            raise _corrupt(f"track {track}'s stsz declares {count:,} samples but holds {held:,}")
        sizes = body[12 : 12 + count * 4]
        return count, sum(n for (n,) in struct.iter_unpack(">I", sizes))
    stz2 = child(data, stbl, b"stz2")
    if stz2 is None:
        raise IndexUnreadable(f"track {track} has no sample sizes")
    body = payload(data, stz2, 12)
    field, count = body[7], struct.unpack_from(">I", body, 8)[0]
    if field not in (4, 8, 16):
        raise IndexUnreadable(f"track {track}'s stz2 has a field size of {field} bits")
    have = (len(body) - 12) * 8 // field
    if count > have:
        raise _corrupt(f"track {track}'s stz2 declares {count:,} samples but holds {have:,}")
    table = body[12 : 12 + (count * field + 7) // 8]
    if field == 16:
        return count, sum(n for (n,) in struct.iter_unpack(">H", table[: count * 2]))
    if field == 8:
        return count, sum(table[:count])
    nibbles = (n for byte in table for n in (byte >> 4, byte & 15))
    return count, sum(n for _, n in zip(range(count), nibbles, strict=False))


def _chunk_end(data: bytes, stbl: Box, track: int) -> int:
    """The largest chunk offset (`stco` or `co64`); 0 without chunks."""
    for kind, fmt in ((b"stco", ">I"), (b"co64", ">Q")):
        box = child(data, stbl, kind)
        if box is not None:
            offsets, _ = _table(data, box, struct.calcsize(fmt), track)
            return max((n for (n,) in struct.iter_unpack(fmt, offsets)), default=0)
    return 0


def _edits(data: bytes, elst: Box | None, track: int) -> tuple[Edit, ...] | None:
    if elst is None:
        return None
    version = payload(data, elst, 8)[0]
    fmt = ">QqhH" if version == 1 else ">IihH"
    entries, _ = _table(data, elst, struct.calcsize(fmt), track)
    return tuple(
        Edit(duration, media_time, (whole << 16) | part)
        for duration, media_time, whole, part in struct.iter_unpack(fmt, entries)
    )


def _check_fits(track: Track, sample_bytes: int, chunk_end: int, object_size: int) -> None:
    """Refuse declarations no object of `object_size` bytes could hold: every sample is at
    least one byte of it (a table of zero sizes still costs four bytes a sample), and so is
    every sample timed by `stts`; all sample bytes and every chunk lie inside it."""
    timed = sum(n for n, _ in track.decode_deltas())
    for what, declared in (
        (f"{track.sample_count:,} samples", track.sample_count),
        (f"{timed:,} timed samples (stts)", timed),
        (f"{sample_bytes:,} bytes of samples", sample_bytes),
    ):
        if declared > object_size:
            raise _corrupt(
                f"track {track.number} declares {what}, more than the object's "
                f"{object_size:,} bytes could hold"
            )
    if chunk_end >= object_size:
        raise _corrupt(
            f"truncated: track {track.number} has a chunk at byte {chunk_end:,}, but the "
            f"object ends at {object_size:,}"
        )


def _check_self_contained(data: bytes, trak: Box, stbl: Box, track: int) -> None:
    """Refuse samples kept in another file: every data reference a sample description uses
    must carry the self-contained flag (`url `/`urn `/`alis` with flag 1)."""
    dref = path(data, trak, b"mdia", b"minf", b"dinf", b"dref")
    stsd = child(data, stbl, b"stsd")
    if dref is None or stsd is None:
        return  # FFmpeg takes the samples to be in this file
    references = list(children(data, dref.start + dref.header + 8, dref.end))
    for entry in children(data, stsd.start + stsd.header + 8, stsd.end):
        (index,) = struct.unpack_from(">H", payload(data, entry, 8), 6)
        if not 1 <= index <= len(references):
            continue  # refers to nothing: left to ffprobe
        reference = references[index - 1]
        flags = int.from_bytes(payload(data, reference, 4)[1:4], "big")
        if reference.kind in _REFERENCE_KINDS and flags & _SELF_CONTAINED:
            continue
        where = _printable(payload(data, reference, 4)[4:])
        raise MediaError(
            ErrorCode.INDIRECTION_REFUSED,
            f"track {track}'s samples are in another file (data reference "
            f"{reference.kind.decode('latin-1')!r}{f' to {where!r}' if where else ''}): "
            "a reference movie is never followed; export it self-contained",
        )


def _printable(raw: bytes, limit: int = 80) -> str:
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean[:limit] + ("..." if len(clean) > limit else "")


def _name(box: Box) -> str:
    return box.kind.decode("latin-1")


def _corrupt(message: str) -> MediaError:
    return MediaError(ErrorCode.CORRUPT_MEDIA, f"impossible MP4 index: {message}")
