"""Mutation fuzzing of every reader of untrusted bytes, each input under a time and memory
budget: the sniffer, the image and DICOM header readers (through ObjectFile, as probed),
the archive extraction, ffprobe's JSON interpretation, sidecar parsing, and the MP4 and
Matroska index readers (issue 16's: called through their public functions only).

A reader may return, or raise what it documents (MediaError; IndexUnreadable and
MatroskaUnreadable for issue 16's index readers). A crash is what the functions could not
survive: an input over its time or memory budget, an exception the failure boundary would
retry (errors.permanent says None: a reader raising ConnectionError on corrupt bytes would
loop to the dead-letter queue) or that is no Exception at all. Any other exception is
counted apart: the boundary makes it a PARSER_ERROR record, correct but not precise, so
each is a finding to map to a precise code in its reader.

Inputs are real files (the corpus's and ffmpeg's) changed by seeded mutations: byte and bit
flips, length fields set to extremes, cuts, repeats and splices. The same seed gives the
same inputs. tests/unit/test_fuzz.py runs a short campaign in `make check`; bench/fuzz.py
a long one whose figures go in the README.
"""

from __future__ import annotations

import io
import json
import random
import resource
import signal
import struct
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from media_ingest.archives.rules import Extraction, Limits
from media_ingest.errors import MediaError, permanent
from media_ingest.media import AnnotationLinks
from media_ingest.owner_metadata import merge, parse_sidecar
from media_ingest.probing import mkv_index, mp4_frames, mp4_index
from media_ingest.probing.dicom_header import read_dicom
from media_ingest.probing.ffprobe import interpret, parse_output
from media_ingest.probing.image_header import read_image
from media_ingest.probing.object_file import BLOCK_BYTES, ObjectFile
from media_ingest.probing.sniffer import detect
from tests.support.media import MediaSet

FIRST_RANGE = 64 * 1024
HEADER_BUDGET = 8 * 1024 * 1024
# Small caps for the archives fuzzed, so that a mutation declaring gigabytes is refused, not
# extracted (the caps themselves are what is under test, at any scale).
ARCHIVE_LIMITS = Limits(
    max_archive_bytes=64 * 1024**2,
    max_extracted_bytes=256 * 1024**2,
    max_member_bytes=128 * 1024**2,
    max_members=2_000,
)


@dataclass(frozen=True)
class Target:
    name: str
    seeds: list[bytes]
    read: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...] = (MediaError,)
    mutate: Callable[[random.Random, bytes, list[bytes]], bytes] | None = None


@dataclass(frozen=True)
class Crash:
    target: str
    kind: str  # time | memory | retried | escaped (crashes); parser-error (a finding)
    detail: str
    data: bytes


@dataclass
class Report:
    tried: dict[str, int] = field(default_factory=dict)
    crashes: list[Crash] = field(default_factory=list)
    parser_errors: list[Crash] = field(default_factory=list)
    slowest: dict[str, float] = field(default_factory=dict)  # seconds, per target
    baseline_mb: float = 0.0  # the process's peak before the first input
    peak_mb: float = 0.0  # its peak after the last
    seconds: float = 0.0

    @property
    def inputs(self) -> int:
        return sum(self.tried.values())


class _OverTime(BaseException):
    """Raised in the reader by the interval timer (a BaseException: no reader catches it)."""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fuzz(
    targets: list[Target],
    per_target: int,
    seed: int = 11,
    time_budget: float = 2.0,
    memory_budget_mb: float = 256.0,
) -> Report:
    """Run `per_target` mutated inputs through each target; never raises for a crash."""
    report = Report(baseline_mb=_peak_mb())
    started = time.monotonic()
    for target in targets:
        rng = random.Random(f"{seed}:{target.name}")
        report.tried[target.name] = 0
        report.slowest[target.name] = 0.0
        for data in _inputs(rng, target, per_target):
            report.tried[target.name] += 1
            crash = _one(target, data, time_budget, report)
            if crash is None and _peak_mb() - report.baseline_mb > memory_budget_mb:
                crash = Crash(
                    target.name,
                    "memory",
                    f"the process's peak rose to {_peak_mb():.0f} MB "
                    f"({report.baseline_mb:.0f} MB before the campaign)",
                    data,
                )
                report.baseline_mb = _peak_mb()  # report each rise once
            if crash is not None and crash.kind == "parser-error":
                report.parser_errors.append(crash)
            elif crash is not None:
                report.crashes.append(crash)
    report.peak_mb = _peak_mb()
    report.seconds = time.monotonic() - started
    return report


def _one(target: Target, data: bytes, time_budget: float, report: Report) -> Crash | None:
    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise _OverTime

    previous = signal.signal(signal.SIGALRM, expire)
    # The hard stop is generous (a slow machine): the budget itself is checked after.
    signal.setitimer(signal.ITIMER_REAL, time_budget * 5)
    began = time.perf_counter()
    try:
        target.read(data)
    except _OverTime:
        return Crash(target.name, "time", f"still running after {time_budget * 5:g} s", data)
    except target.allowed:
        pass
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {str(exc)[:200]} ({where.filename}:{where.lineno})"
        kind = "retried" if permanent(exc) is None else "parser-error"
        return Crash(target.name, kind, detail, data)
    except BaseException as exc:  # past the boundary: the function itself would die
        return Crash(target.name, "escaped", f"{type(exc).__name__}: {exc}", data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    took = time.perf_counter() - began
    report.slowest[target.name] = max(report.slowest[target.name], took)
    if took > time_budget:
        return Crash(target.name, "time", f"took {took:.2f} s (budget {time_budget:g} s)", data)
    return None


# -- mutations ----------------------------------------------------------------------------------
_INTERESTING_32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def _inputs(rng: random.Random, target: Target, count: int) -> Iterator[bytes]:
    seeds = [s for s in target.seeds if s]
    yield from seeds[:count]  # every seed as it is first: it must pass
    for _ in range(count - min(count, len(seeds))):
        data = rng.choice(seeds)
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            data = (target.mutate or mutate)(rng, data, seeds)
        yield data


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """One random change, weighted toward what breaks parsers: length and count fields."""
    buf = bytearray(data)
    if not buf:
        return bytes(rng.randbytes(rng.randint(1, 64)))
    # Most format headers live in the first bytes; most changes go there.
    span = len(buf) if rng.random() < 0.2 else min(len(buf), 4096)
    at = rng.randrange(span)
    kind = rng.randrange(9)
    if kind == 0:
        buf[at] ^= 1 << rng.randrange(8)
    elif kind == 1:
        buf[at] = rng.randrange(256)
    elif kind in (2, 3):  # a 16/32-bit field to an extreme, either endianness
        width, order = rng.choice(((2, "<H"), (2, ">H"), (4, "<I"), (4, ">I")))
        value = rng.choice(_INTERESTING_32) & ((1 << (8 * width)) - 1)
        if at + width <= len(buf):
            struct.pack_into(order, buf, at, value)
    elif kind == 4:  # cut
        del buf[rng.randrange(len(buf)) :]
    elif kind == 5:  # remove a run
        del buf[at : at + rng.randint(1, 256)]
    elif kind == 6:  # repeat a run (nesting, duplicate entries)
        end = min(len(buf), at + rng.randint(1, 512))
        buf[at:at] = buf[at:end] * rng.randint(2, 20)
    elif kind == 7:  # splice another seed in
        other = rng.choice(seeds)
        start = rng.randrange(max(len(other), 1))
        buf[at:at] = other[start : start + rng.randint(1, 4096)]
    else:  # random bytes
        buf[at : at + 8] = rng.randbytes(8)
    return bytes(buf)


_ODD_VALUES: tuple[Any, ...] = (
    None, "", "abc", "nan", "inf", "-inf", "1/0", "0/0", "-1/1", "999999999999999999999/1",
    -1, 0, 2**63, 1e308, float("inf"), [], {}, [1, 2], {"rotation": "x"}, "90", "x" * 10_000,
)  # fmt: skip


def mutate_json(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """JSON with one value anywhere replaced by one of another type or sense (and, one time
    in five, a byte-level change: JSON that does not parse, or nests deeper)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return mutate(rng, data, seeds)
    if rng.random() < 0.2:
        return mutate(rng, data, seeds)
    slots: list[tuple[Any, Any]] = []
    pending = [doc]
    while pending:  # iteratively: a mutated document may nest a thousand levels
        node = pending.pop()
        if isinstance(node, dict):
            items: list[tuple[Any, Any]] = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for key, value in items:
            slots.append((node, key))
            pending.append(value)
    if slots:
        container, key = rng.choice(slots)
        container[key] = rng.choice(_ODD_VALUES)
    try:
        return json.dumps(doc).encode()
    except RecursionError:  # deeper than json writes: keep the bytes, change one
        return mutate(rng, data, seeds)


# -- the readers, as the functions call them ---------------------------------------------------
def _file(data: bytes) -> io.BufferedReader:
    raw = ObjectFile(
        data[:FIRST_RANGE],
        len(data),
        lambda start, length: data[start : start + length],
        HEADER_BUDGET,
    )
    return io.BufferedReader(raw, BLOCK_BYTES)


class _Discard:
    """Members written nowhere: counted, not kept (the fuzzing process stays small)."""

    bucket = "drop"

    def written(self, key: str, size: int, source: str) -> bool:
        return False

    def write(self, key: str, chunks: Iterator[bytes], metadata: dict[str, str]) -> None:
        for _ in chunks:
            pass


class _NoStore:
    def put(self, path: str, data: bytes) -> str:
        return f"s3://m/{path}"

    def record_links(self, bucket: str, key: str, source: str, links: AnnotationLinks) -> None:
        pass


class _Archive:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))

    def seekable(self) -> io.BytesIO:
        return io.BytesIO(self.data)


def read_archive(data: bytes) -> object:
    found = detect(data[:FIRST_RANGE], "fuzz/archive")
    if found.container not in ("zip", "tar", "gzip"):
        return None
    store = _NoStore()
    return Extraction(
        key="fuzz/archive.zip",
        container=found.container,
        size=len(data),
        source="etag",
        reader=_Archive(data),
        writer=_Discard(),
        store=store,
        links=store,
        limits=ARCHIVE_LIMITS,
    ).run()


def read_mp4_index(data: bytes) -> object:
    """issue 16's readers, through their public functions, as the prober calls them."""
    mp4_index.top_level_overrun(data[:FIRST_RANGE], len(data))
    moov = mp4_index.find_moov(
        data[:FIRST_RANGE], len(data), lambda start, length: data[start : start + length]
    )
    if moov is None:
        return None
    return mp4_frames.video_frames(mp4_index.read_movie(moov, len(data)), keyframes=True)


def read_mkv_index(data: bytes) -> object:
    return mkv_index.video_frames(data[:FIRST_RANGE], len(data))


def read_sidecar(data: bytes) -> object:
    return merge({}, {}, parse_sidecar(data, "fuzz.json"))


def targets(seeds: dict[str, list[bytes]]) -> list[Target]:
    """The fuzz targets over `seeds` by family: any, image, dicom, archive, mp4, ffprobe
    (ffprobe's JSON for real files), sidecar."""
    everything = [s for group in seeds.values() for s in group]
    return [
        Target("sniffer", [s[:FIRST_RANGE] for s in everything], lambda d: detect(d, "fuzz/x")),
        Target("image_header", seeds["image"], lambda d: read_image(_file(d))),
        Target("dicom_header", seeds["dicom"], lambda d: read_dicom(_file(d))),
        Target("archives", seeds["archive"], read_archive),
        Target(
            "ffprobe_json",
            seeds["ffprobe"],
            lambda d: interpret(parse_output(d)),
            mutate=mutate_json,
        ),
        Target("sidecar", seeds["sidecar"], read_sidecar, mutate=mutate_json),
        Target(
            "mp4_index (issue 16)",
            seeds["mp4"],
            read_mp4_index,
            allowed=(MediaError, mp4_index.IndexUnreadable),
        ),
        Target(
            "mkv_index (issue 16)",
            seeds["mkv"],
            read_mkv_index,
            allowed=(MediaError, mkv_index.MatroskaUnreadable),
        ),
    ]


def seeds(media: MediaSet, more: bool = True) -> dict[str, list[bytes]]:
    """Real files of every family the readers see, small ones (a campaign mutates them);
    without `more`, only media other tests generate anyway (a quick campaign)."""
    from tests.support import hostile
    from tests.support.media import dicom, ffprobe_json, jpeg_with_orientation, pdf, png

    clip = media.bytes("clip.mp4")
    av = ["clip.mp4", "clip-moov-end.mp4", "clip.webm", "tone.wav", "tone.mp3", "tone.flac"]
    if more:
        av += ["clip.m2ts", "clip.mpg", "tone.aiff", "tone.ogg", "clip.avi", "clip.flv"]
    meta = hostile.dicom_file_meta(dicom())
    return {
        "image": [
            png(),
            hostile.png_with_exif(6),
            jpeg_with_orientation(6),
            hostile.image("GIF"),
            hostile.image("BMP"),
            hostile.image("WEBP"),
            hostile.image("TIFF"),
            hostile.image("AVIF", (32, 24)),
            hostile.tiff_ifd_at_end(64, 48),
        ],
        "dicom": [
            dicom(),
            dicom()[132:],
            hostile.dicom_large(64 * 1024, 4096),
            hostile.dicom_nested(meta, 3),
        ],
        "archive": [
            hostile.zip_of(
                [
                    ("a.png", png()),
                    ("b/c.mp4", clip[:4096]),
                    ("b/c/states/s.csv", b"frame,s\n0,x\n"),
                ]
            ),
            hostile.tar_of([("a.png", png()), ("d.dcm", dicom())], mode="w:gz"),
            hostile.tar_of([("a.png", png())]),
            hostile.sparse_tar_gz("s.img", 4 * 1024 * 1024),
        ],
        "mkv": [media.bytes("clip.webm")] + ([media.bytes("clip.mkv")] if more else []),
        "mp4": [clip, media.bytes("clip-moov-end.mp4")]
        + ([media.bytes("clip.mov")] if more else []),
        "ffprobe": [ffprobe_json(media.path(name)).encode() for name in av[:6]],
        "sidecar": [
            json.dumps({"site": "reef", "tags": ["a", 1], "n": {"d": [[2.5]]}}).encode(),
            json.dumps(
                {"notes": "\U0001f41f" * 100, "version_id": "x"}, ensure_ascii=False
            ).encode(),
        ],
        "other": [media.bytes(name)[:FIRST_RANGE] for name in av] + [pdf()],
    }
