"""Benchmarks 1 and 2: bytes read per probe, and probe wall time and peak memory.

Measured: the production probe path, `ObjectProber` over the S3 adapter (`S3Objects`: one
64 KB range GetObject, then `FfprobeRunner` over a presigned URL), for MP4s of ~10 MB,
~100 MB and ~1 GB, faststart (moov first) and moov at the end, and one Matroska file.
Each run is a fresh process (bench/probe_worker.py). Objects are served by a read-only
S3-compatible endpoint over the cache folder (bench/s3files.py: moto copies the whole object
on every range GET, see there) behind a counting proxy (bench/proxy.py) that counts the
requests and the response body bytes that reach the client.

Comparison (reported apart): the same ffprobe command without its HTTP options, i.e.
ffprobe's default open-ended request per seek, which production used until it moved to
bounded 256 KB ranges on one connection (`-multiple_requests 1 -request_size 256K`).

Baseline, in the same run against the same endpoint: download the object with boto3
`download_file` to a temp file, then the same ffprobe on the local file.

Physical limit: the container's metadata, i.e. its index (moov box; Matroska SeekHead +
Cues) plus the few KB of other headers (ftyp, mdat header; EBML header, Info, Tracks, Tags).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import ROOT, Context, log
from bench.media import Layout, MediaCache, MediaFile, layout
from bench.proxy import CountingProxy
from bench.report import Section, Table, Target, kb, mb, pct, ratio
from bench.s3files import S3FileServer, etag_of
from media_ingest.probing.ffprobe import HTTP_OPTIONS

BUCKET = "bench-media"
SIZES = (10_000_000, 100_000_000, 1_000_000_000)
QUICK_SIZES = (10_000_000, 100_000_000)
MKV_SIZE = 100_000_000
LARGE = 100_000_000  # the bytes targets apply from this size on
FLAT = 1.5  # our criterion for "flat": peak at the largest object <= 1.5x peak at the smallest
# Every probed field: the pixel format and bit rate are the first to go when ffprobe
# reads no packets (a failed seek), so they are compared too.
COMPARED = (
    "fps",
    "fps_fraction",
    "duration",
    "width",
    "height",
    "rotation",
    "codec",
    "bit_rate",
    "pixel_format",
    "audio_codec",
)


@dataclass
class Figures:
    """Every run of one file."""

    file: MediaFile
    layout: Layout
    probe: list[dict[str, Any]] = field(default_factory=list)
    download: list[dict[str, Any]] = field(default_factory=list)
    probe_memory: dict[str, Any] = field(default_factory=dict)
    download_memory: dict[str, Any] = field(default_factory=dict)
    consumed: dict[str, Any] = field(default_factory=dict)
    open_ended: dict[str, Any] = field(default_factory=dict)

    def median(self, runs: str, figure: str) -> float:
        return float(statistics.median(r[figure] for r in getattr(self, runs)))

    @property
    def same_metadata(self) -> bool:
        probed, local = self.probe[0]["video"] or {}, self.download[0]["video"] or {}
        return all(probed.get(k) == local.get(k) for k in COMPARED) and bool(probed)


def media_set(cache: MediaCache, quick: bool) -> list[MediaFile]:
    files = []
    for size in QUICK_SIZES if quick else SIZES:
        files += [cache.mp4(size, faststart=True), cache.mp4(size, faststart=False)]
    return [*files, cache.mkv(MKV_SIZE)]


class Measurer:
    def __init__(self, ctx: Context, proxy: CountingProxy, scratch: str) -> None:
        self.ctx, self.proxy, self.scratch = ctx, proxy, scratch

    def run(self, file: MediaFile, mode: str, memory: bool = False) -> dict[str, Any]:
        job = {
            "mode": mode,
            "memory": memory,
            "endpoint": self.proxy.url,
            "bucket": BUCKET,
            "key": file.key,
            "size": file.size,
            "etag": etag_of(file.path).strip('"'),
            "demuxer": file.demuxer,
            "ffprobe": self.ctx.ffprobe,
            "tmpdir": self.scratch,
        }
        self.proxy.reset()
        done = subprocess.run(
            [sys.executable, "-m", "bench.probe_worker", json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=ROOT,
            check=False,
        )
        self.proxy.wait_idle()
        if done.returncode != 0:
            raise RuntimeError(f"{mode} of {file.key} failed: {done.stderr.strip()[-1500:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        served = self.proxy.served()
        result["served_bytes"] = sum(s.body_bytes for s in served)
        result["requests"] = len(served)
        if mode != "download":  # a 1 GB download is ~120 ranged GETs: counted, not listed
            result["served"] = [asdict(s) for s in served]
        return result


def measure(ctx: Context) -> list[Figures]:
    cache = MediaCache(ctx.cache)
    files = media_set(cache, ctx.quick)
    probe_reps, download_reps = (2, 1) if ctx.quick else (5, 3)
    out = []
    with (
        tempfile.TemporaryDirectory(dir=ctx.cache) as scratch,
        S3FileServer({BUCKET: cache.root}) as upstream,
        CountingProxy(upstream.url) as proxy,
    ):
        measurer = Measurer(ctx, proxy, scratch)
        for file in files:
            log(f"probing {file.label}: {probe_reps}+1 probes, {download_reps}+1 downloads")
            figures = Figures(file, layout(file))
            figures.probe = [measurer.run(file, "probe") for _ in range(probe_reps)]
            figures.download = [measurer.run(file, "download") for _ in range(download_reps)]
            figures.probe_memory = measurer.run(file, "probe", memory=True)
            figures.download_memory = measurer.run(file, "download", memory=True)
            figures.consumed = measurer.run(file, "consumed")
            figures.open_ended = measurer.run(file, "open")
            out.append(figures)
    return out


def run(ctx: Context) -> list[Section]:
    figures = measure(ctx)
    return [bytes_section(ctx, figures), time_section(ctx, figures)]


def bytes_section(ctx: Context, figures: list[Figures]) -> Section:
    section = Section(
        name="probe_bytes",
        title="1. Bytes read per probe",
        measured="ObjectProber + S3Objects (64 KB range GET, then ffprobe over a presigned URL); "
        "response body bytes that reached the client, median of the runs",
        baseline="boto3 download_file of the whole object, then ffprobe on the local file",
    )
    table = Table(
        "body bytes transferred per probe (index/limit: the physical limit)",
        [
            "file",
            "object",
            "index",
            "limit",
            "probe",
            "% object",
            "x limit",
            "requests",
            "ffprobe used",
            "download",
            "download/probe",
            "same meta",
        ],
    )
    for f in figures:
        served = f.median("probe", "served_bytes")
        consumed = f.consumed.get("consumed")
        table.add(
            f.file.label,
            mb(f.file.size),
            kb(f.layout.index_bytes),
            kb(f.layout.metadata_bytes),
            kb(served),
            pct(served, f.file.size),
            ratio(served, f.layout.metadata_bytes),
            f"{f.median('probe', 'requests'):.0f}",
            kb(consumed) if consumed else "-",
            mb(f.median("download", "served_bytes")),
            ratio(f.median("download", "served_bytes"), served),
            "yes" if f.same_metadata else "NO",
        )
    section.tables.append(table)

    whatif = Table(
        "comparison: the same ffprobe command without "
        + " ".join(HTTP_OPTIONS)
        + " (ffprobe's default: an open-ended request per seek)",
        ["file", "probe (production)", "open-ended", "% object", "requests", "same meta"],
    )
    for f in figures:
        other = f.open_ended
        if "error" in other:
            whatif.add(f.file.label, kb(f.median("probe", "served_bytes")), "failed", "-", "-", "-")
            continue
        same = all(
            (other.get("video") or {}).get(k) == (f.probe[0]["video"] or {}).get(k)
            for k in COMPARED
        )
        whatif.add(
            f.file.label,
            kb(f.median("probe", "served_bytes")),
            kb(other["served_bytes"]),
            pct(other["served_bytes"], f.file.size),
            other["requests"],
            "yes" if same else "NO",
        )
    section.tables.append(whatif)

    section.targets += [
        _bytes_target(figures, "faststart", 0.01),
        _bytes_target(figures, "moov at end", 0.03),
    ]
    section.notes += [
        "objects are served by bench/s3files.py (read-only S3 GetObject/HeadObject with Range "
        "and If-Match over local files), not moto: moto 5.2 reads and copies the whole object "
        "on every range GET (~360 MB of RSS for one 100 MB object here), untenable at 1 GB",
        f"ffprobe: {ctx.ffprobe} ({ctx.ffprobe_version})",
        "'probe' = body bytes that reached the client (a full response: its length; an early "
        "hang-up: what the client's TCP stack acknowledged). Production requests are bounded "
        f"ranges ({' '.join(HTTP_OPTIONS)}); open-ended ones (Range: bytes=N-) make the "
        "server stream until ffprobe hangs up, so they include data in flight and unread in "
        "ffprobe's socket buffer: what S3 would transfer and bill. 'ffprobe used' = "
        "ffprobe's own count of what it read (-v debug 'Statistics', a separate run)",
        "comparison 'same meta' = every probed field equals the production probe's; the "
        "download baseline's 'same meta' compares the production probe with ffprobe on the "
        "whole local file",
        "'limit' = container metadata (index + other headers); 'index' = moov / SeekHead+Cues",
    ]
    if any("error" in f.open_ended for f in figures):
        failed = next(f.open_ended["error"] for f in figures if "error" in f.open_ended)
        section.notes.append(f"comparison failed: {failed[:300]}")
    section.data = {"files": [_file_data(f) for f in figures]}
    return section


def _bytes_target(figures: list[Figures], layout_name: str, limit: float) -> Target:
    chosen = [f for f in figures if f.file.layout == layout_name and f.file.size >= LARGE]
    goal = f"bytes read <= {limit:.0%} of the object, {layout_name} >= 100 MB"
    if not chosen:
        return Target(goal, "no such file in this run", None)
    shares = [(f, f.median("probe", "served_bytes") / f.file.size) for f in chosen]
    figure = ", ".join(f"{f.file.label}: {share:.2%}" for f, share in shares)
    met = all(share <= limit for _, share in shares)
    why = ""
    if not met:
        worst = max(shares, key=lambda pair: pair[1])[0]
        used = worst.consumed.get("consumed")
        why = (
            f"{worst.file.label}: {kb(worst.median('probe', 'served_bytes'))} transferred in "
            f"bounded ranges; ffprobe read {kb(used) if used else '?'} itself (a separate run): "
            "its index plus the packets it analyses for stream parameters"
        )
    return Target(goal, figure, met, why)


def time_section(ctx: Context, figures: list[Figures]) -> Section:
    section = Section(
        name="probe_time",
        title="2. Probe wall time and peak memory",
        measured="the same probe path: wall time (median), ffprobe's peak RSS, and the "
        "increase of the Python process's peak RSS during the probe",
        baseline="download_file to a temp file (boto3, same endpoint) + ffprobe on the file",
    )
    table = Table(
        "per object (times are loopback times: only the ratios carry over)",
        [
            "file",
            "probe",
            "download+probe",
            "speedup",
            "ffprobe peak",
            "ffprobe peak (local file)",
            "python +peak",
            "python +peak (dl)",
            "temp disk (dl)",
        ],
    )
    for f in figures:
        probe_s, download_s = f.median("probe", "seconds"), f.median("download", "seconds")
        table.add(
            f.file.label,
            f"{probe_s * 1000:.0f} ms",
            f"{download_s * 1000:.0f} ms",
            ratio(download_s, probe_s),
            _peak(f.probe_memory),
            _peak(f.download_memory),
            mb(f.probe_memory["python_increase_kb"] * 1024),
            mb(f.download_memory["python_increase_kb"] * 1024),
            mb(f.file.size),
        )
    section.tables.append(table)

    gigabyte = [f for f in figures if f.file.size >= 900_000_000 and f.file.demuxer == "mov"]
    goal = "probe of 1 GB >= 10x faster than download-then-probe"
    if gigabyte:
        speedups = [
            (f, f.median("download", "seconds") / f.median("probe", "seconds")) for f in gigabyte
        ]
        section.targets.append(
            Target(
                goal,
                ", ".join(f"{f.file.label}: {s:.1f}x" for f, s in speedups),
                all(s >= 10 for _, s in speedups),
                "" if all(s >= 10 for _, s in speedups) else "loopback downloads are fast",
            )
        )
    else:
        section.targets.append(Target(goal, "no 1 GB file in a --quick run", None))
    section.targets.append(_flat_target(figures))
    section.notes.append(
        "ffprobe's peak RSS comes from runs under GNU time (a fork of a 2 MB process); the "
        "timed runs use the plain binary. 'python +peak' is the rise of the worker's peak RSS."
    )
    return section


def _peak(memory: dict[str, Any]) -> str:
    return mb(memory["ffprobe_peak_kb"] * 1024) if "ffprobe_peak_kb" in memory else "n/a"


def _flat_target(figures: list[Figures]) -> Target:
    """ffprobe's peak at the largest object vs the smallest, per MP4 layout."""
    goal = f"probe memory flat as the object grows (ours: <= {FLAT}x, Python +peak <= 8 MB)"
    if any("ffprobe_peak_kb" not in f.probe_memory for f in figures):
        return Target(
            goal, "ffprobe's peak not measured: no GNU time (Debian package 'time')", None
        )
    parts, growths = [], []
    for layout_name in ("faststart", "moov at end"):
        same = sorted(
            (f for f in figures if f.file.layout == layout_name), key=lambda f: f.file.size
        )
        small, large = same[0], same[-1]
        peaks = small.probe_memory["ffprobe_peak_kb"], large.probe_memory["ffprobe_peak_kb"]
        growths.append(peaks[1] / peaks[0])
        parts.append(
            f"{layout_name} {mb(peaks[0] * 1024)} -> {mb(peaks[1] * 1024)} "
            f"({growths[-1]:.2f}x for {large.file.size / small.file.size:.0f}x the bytes)"
        )
    python = max(f.probe_memory["python_increase_kb"] for f in figures) * 1024
    figure = f"ffprobe peak {'; '.join(parts)}; Python +peak at most {mb(python)}"
    met = max(growths) <= FLAT and python <= 8e6
    return Target(goal, figure, met, "" if met else "ffprobe's index tables grow with the moov")


def _file_data(f: Figures) -> dict[str, Any]:
    return {
        "file": f.file.key,
        "label": f.file.label,
        "bytes": f.file.size,
        "layout": asdict(f.layout),
        "probe_runs": f.probe,
        "download_runs": f.download,
        "probe_memory": f.probe_memory,
        "download_memory": f.download_memory,
        "ffprobe_consumed": f.consumed,
        "open_ended_requests": f.open_ended,
        "same_metadata": f.same_metadata,
    }
