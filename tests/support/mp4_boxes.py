"""ISO-BMFF boxes written by hand: synthetic `moov`s (what an encoder rarely writes but a file
may hold) and in-place surgery on real files (a box of a moov-at-end file replaced, its
parents' sizes fixed: chunk offsets stay valid because nothing before moov moves).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"edts"}


def box(kind: bytes, *parts: bytes, large: bool = False) -> bytes:
    body = b"".join(parts)
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, *parts: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def table(kind: bytes, fmt: str, rows: Sequence[tuple[int, ...]], version: int = 0) -> bytes:
    return full(
        kind, struct.pack(">I", len(rows)), *(struct.pack(fmt, *r) for r in rows), version=version
    )


def elst(edits: Sequence[tuple[int, int, float]]) -> bytes:
    """(duration in the movie's ticks, media time or -1, rate) entries, version 0."""
    rows = [(d, t, int(r), int((r % 1) * 65536)) for d, t, r in edits]
    return box(b"edts", table(b"elst", ">IihH", rows))


def mdhd(timescale: int, duration: int = 0) -> bytes:
    return full(b"mdhd", struct.pack(">IIII", 0, 0, timescale, duration), b"\0" * 4)


def mvhd(timescale: int) -> bytes:
    return full(b"mvhd", struct.pack(">IIII", 0, 0, timescale, 0), b"\0" * 80)


def dref(*entries: bytes) -> bytes:
    return box(b"dinf", full(b"dref", struct.pack(">I", len(entries)), *entries))


def url(location: bytes = b"", self_contained: bool = True) -> bytes:
    return full(b"url ", location, flags=1 if self_contained else 0)


def stsd(data_reference: int = 1) -> bytes:
    entry = box(b"avc1", b"\0" * 6, struct.pack(">H", data_reference), b"\0" * 70)
    return full(b"stsd", struct.pack(">I", 1), entry)


def moov(
    stts: list[tuple[int, int]],
    *,
    ctts: list[tuple[int, int]] | None = None,
    stss: list[int] | None = None,
    edits: Sequence[tuple[int, int, float]] | None = None,
    timescale: int = 1000,
    movie_timescale: int = 1000,
    handler: bytes = b"vide",
    sizes: bytes | None = None,
    chunks: list[int] | None = None,
    references: bytes | None = None,
    extra: bytes = b"",
    raw: bytes | None = None,
) -> bytes:
    """One track's moov. `sizes` replaces the default stsz (one byte per sample, so any
    object of the samples' count passes the size check); `raw` replaces the stts."""
    samples = sum(n for n, _ in stts)
    tables = [table(b"stts", ">II", stts) if raw is None else raw]
    if ctts is not None:
        tables.append(table(b"ctts", ">Ii", ctts))
    if stss is not None:
        tables.append(table(b"stss", ">I", [(n,) for n in stss]))
    tables.append(sizes if sizes is not None else full(b"stsz", struct.pack(">II", 1, samples)))
    tables.append(table(b"stco", ">I", [(c,) for c in chunks or [8]]))
    tables.append(stsd())
    hdlr = full(b"hdlr", b"\0\0\0\0", handler, b"\0" * 12)
    minf = box(b"minf", references or dref(url()), box(b"stbl", *tables))
    media = box(b"mdia", mdhd(timescale, sum(n * d for n, d in stts)), hdlr, minf)
    trak = box(b"trak", elst(edits) if edits is not None else b"", media)
    return box(b"moov", mvhd(movie_timescale), trak, extra)


def find(data: bytes, path: Sequence[bytes], start: int = 0, end: int | None = None) -> int:
    """Offset of the first box at `path` (kinds from the top level down)."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == path[0]:
            if len(path) == 1:
                return pos
            return find(data, path[1:], pos + 8, pos + size)
        pos += size
    raise KeyError(path)


def replace(data: bytes, path: Sequence[bytes], new: bytes) -> bytes:
    """`data` with the box at `path` replaced by `new` (a whole box) and every enclosing
    box's size adjusted. Only for a moov at the end: what follows it would move."""
    top = find(data, path[:1])
    (moov_size,) = struct.unpack_from(">I", data, top)
    if top + moov_size != len(data):
        raise ValueError("replace() needs the moov at the end of the file")
    at = find(data, path)
    (old_size,) = struct.unpack_from(">I", data, at)
    grown = len(new) - old_size
    out = bytearray(data[:at] + new + data[at + old_size :])
    for depth in range(1, len(path)):
        parent = find(bytes(out), path[:depth])
        (size,) = struct.unpack_from(">I", out, parent)
        struct.pack_into(">I", out, parent, size + grown)
    return bytes(out)


def inside(data: bytes, path: Sequence[bytes]) -> bytes:
    """The whole box at `path`."""
    at = find(data, path)
    (size,) = struct.unpack_from(">I", data, at)
    return data[at : at + size]
