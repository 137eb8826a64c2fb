"""Benchmark 7: what reading the MP4/MOV index for frame timing adds to a probe.

Measured: the production probe (`ObjectProber` over `S3Objects`), which now reads the moov
before ffprobe for every MP4/MOV (frame count, rate, edit list, and the checks that refuse
an impossible index), through the counting proxy in front of the local S3 file server
(bench/s3files.py, bench/proxy.py): requests and body bytes by who made them (our range
reads: boto3; ffprobe: Lavf), and the time to parse the index in Python.

Baseline ("current reading", in the same run, same endpoint): what the probe read before,
with KeyFrames off: the 64 KB first range, then the same ffprobe command.

Targets (issue 16): no extra request for a faststart file whose moov is in the first range;
one bounded read for a moov at the end. Files: the probe_bytes MP4s (10 MB, 100 MB, and
1 GB unless --quick; faststart and moov at end) and one hour of tiny video at 25 fps (90,000
frames: a moov of a few hundred KB, longer than the first range even when faststart).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from bench import Context, log
from bench.media import MediaCache, MediaFile
from bench.probe_bytes import BUCKET, media_set
from bench.proxy import CountingProxy, Served
from bench.report import Section, Table, Target, kb, pct
from bench.s3files import S3FileServer, etag_of
from media_ingest.adapters.objects import S3Objects
from media_ingest.events import ObjectEvent
from media_ingest.probing import mp4_frames, mp4_index
from media_ingest.probing.ffprobe import FfprobeRunner
from media_ingest.probing.prober import FIRST_RANGE_BYTES, ObjectProber

PARSE_RUNS = 5


@dataclass
class Reading:
    """Requests and body bytes of one probe, by client."""

    ours_requests: int
    ours_bytes: int
    ffprobe_requests: int
    ffprobe_bytes: int

    @classmethod
    def of(cls, served: list[Served]) -> Reading:
        ours = [s for s in served if s.agent != "Lavf"]
        theirs = [s for s in served if s.agent == "Lavf"]
        return cls(
            len(ours),
            sum(s.body_bytes for s in ours),
            len(theirs),
            sum(s.body_bytes for s in theirs),
        )


@dataclass
class Figures:
    file: MediaFile
    moov_bytes: int
    moov_at_start: bool
    current: Reading
    ours: Reading
    parse_ms: float
    frames: int | None
    rate_mode: str | None

    @property
    def extra_requests(self) -> int:
        return self.ours.ours_requests - self.current.ours_requests

    @property
    def extra_bytes(self) -> int:
        return self.ours.ours_bytes - self.current.ours_bytes


def hour_files(cache: MediaCache) -> list[MediaFile]:
    recipe = [
        *("-f", "lavfi", "-i", "testsrc=size=32x32:rate=25", "-t", "3600"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p"),
    ]
    fast = cache._make("hour-25fps-faststart.mp4", [*recipe, "-movflags", "+faststart"])
    late = cache._make("hour-25fps-moov-end.mp4", [*recipe, "-f", "mp4"])
    return [
        MediaFile(fast, "MP4 1 h 25 fps tiny faststart", "mov", "faststart"),
        MediaFile(late, "MP4 1 h 25 fps tiny moov at end", "mov", "moov at end"),
    ]


def event_of(file: MediaFile) -> ObjectEvent:
    return ObjectEvent(
        bucket=BUCKET,
        key=file.key,
        size=file.size,
        etag=etag_of(file.path).strip('"'),
        sequencer="0",
        event_name="ObjectCreated:Put",
        event_time=datetime.now(UTC),
        region="us-east-1",
    )


def measure_file(ctx: Context, file: MediaFile, proxy: CountingProxy, s3: Any) -> Figures:
    reader = S3Objects(presign_seconds=300, client=s3)
    runner = FfprobeRunner(binary=ctx.ffprobe, timeout_seconds=300)
    event = event_of(file)

    proxy.reset()
    reader.read_head(event, min(FIRST_RANGE_BYTES, event.size))
    signed = reader.presign(event)
    runner.run(signed.url, file.demuxer, signed.headers)
    proxy.wait_idle()
    current = Reading.of(proxy.served())

    proxy.reset()
    media = ObjectProber(reader=reader, ffprobe=runner).probe(event)
    proxy.wait_idle()
    ours = Reading.of(proxy.served())

    with file.path.open("rb") as local:

        def read_at(start: int, length: int) -> bytes:
            local.seek(start)
            return local.read(length)

        moov = mp4_index.find_moov(read_at(0, FIRST_RANGE_BYTES), file.size, read_at)
        assert moov is not None
        # ftyp, then moov: faststart; ftyp, then mdat: the moov is further on
        at_start = b"moov" in read_at(0, 64)
    times = []
    for _ in range(PARSE_RUNS):
        started = time.perf_counter()
        mp4_frames.video_frames(mp4_index.read_movie(moov, file.size), keyframes=False)
        times.append((time.perf_counter() - started) * 1000)
    timing = media.video.timing if media.video else None
    return Figures(
        file=file,
        moov_bytes=len(moov),
        moov_at_start=at_start,
        current=current,
        ours=ours,
        parse_ms=statistics.median(times),
        frames=timing.frame_count if timing else None,
        rate_mode=timing.rate_mode.value if timing and timing.rate_mode else None,
    )


def run(ctx: Context) -> list[Section]:
    cache = MediaCache(ctx.cache)
    files = [f for f in media_set(cache, ctx.quick) if f.demuxer == "mov"] + hour_files(cache)
    figures = []
    with S3FileServer({BUCKET: cache.root}) as upstream, CountingProxy(upstream.url) as proxy:
        s3 = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )
        for file in files:
            log(f"index read of {file.label}")
            figures.append(measure_file(ctx, file, proxy, s3))
    return [section(figures)]


def section(figures: list[Figures]) -> Section:
    out = Section(
        name="frame_index",
        title="7. Frame timing: what reading the MP4 index adds to a probe",
        measured="the production probe, which reads the moov before ffprobe for every MP4 "
        "(frame count, rate, edit list, impossible-index checks); requests and body bytes of "
        "our own range reads (boto3) and of ffprobe (Lavf), through the counting proxy",
        baseline="the reading before it (KeyFrames off): the 64 KB first range, then the "
        "same ffprobe command",
    )
    table = Table(
        "per probe",
        [
            "file",
            "object",
            "moov",
            "extra GETs",
            "extra bytes",
            "extra/probe",
            "ffprobe GETs (before/now)",
            "parse",
            "frames",
            "rate",
        ],
    )
    for f in figures:
        total = f.ours.ours_bytes + f.ours.ffprobe_bytes
        table.add(
            f.file.label,
            kb(f.file.size),
            f"{kb(f.moov_bytes)} {'start' if f.moov_at_start else 'end'}",
            f.extra_requests,
            kb(f.extra_bytes),
            pct(f.extra_bytes, total),
            f"{f.current.ffprobe_requests}/{f.ours.ffprobe_requests}",
            f"{f.parse_ms:.0f} ms",
            f.frames if f.frames is not None else "-",
            f.rate_mode or "-",
        )
    out.tables.append(table)
    inside = [f for f in figures if f.moov_at_start and f.moov_bytes <= FIRST_RANGE_BYTES - 1024]
    longer = [f for f in figures if f.moov_at_start and f not in inside]
    late = [f for f in figures if not f.moov_at_start]
    out.targets += [
        _target("no extra GET: faststart, moov in the first range", inside, 0),
        _target("one extra GET: faststart, moov longer than the first range", longer, 1),
        _target("one bounded extra GET: moov at the end", late, 1),
    ]
    out.notes += [
        "extra bytes for a moov at the end are the moov itself, read once by us and once by "
        "ffprobe (it reads its own copy over the presigned URL); 'extra/probe' is their share "
        "of everything the probe transferred",
        "'parse' = read_movie + video_frames in Python on the moov, median of "
        f"{PARSE_RUNS} (loopback, this machine)",
    ]
    out.data = {
        "files": [
            {
                "file": f.file.label,
                "size": f.file.size,
                "moov_bytes": f.moov_bytes,
                "moov_at_start": f.moov_at_start,
                "extra_requests": f.extra_requests,
                "extra_bytes": f.extra_bytes,
                "current": f.current.__dict__,
                "ours": f.ours.__dict__,
                "parse_ms": f.parse_ms,
                "frames": f.frames,
                "rate_mode": f.rate_mode,
            }
            for f in figures
        ]
    }
    return out


def _target(goal: str, chosen: list[Figures], wanted: int) -> Target:
    if not chosen:
        return Target(goal, "no such file in this run", None)
    figure = ", ".join(f"{f.file.label}: {f.extra_requests}" for f in chosen)
    met = all(f.extra_requests == wanted for f in chosen)
    return Target(goal, figure, met)
