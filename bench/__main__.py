"""`python -m bench`: run the benchmarks, print a table, write the results as JSON."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import DEFAULT_CACHE, LAYER_FFPROBE, ROOT, Context, log
from bench.report import Section, render, write_json

# name -> (module, what it measures). Each module has run(ctx) -> list[Section].
BENCHMARKS = {
    "probe_bytes": (
        "bench.probe_bytes",
        "1+2: bytes read, wall time and peak memory per probe "
        "vs download-then-probe (10 MB .. 1 GB MP4s, one MKV)",
    ),
    "api_calls": (
        "bench.api_calls",
        "3: AWS API calls per ingested file at SQS batch sizes "
        "1, 10, 100, real handler on moto, vs a naive per-file ingest",
    ),
    "manifest_growth": (
        "bench.manifest_growth",
        "4: cost of appending the 100th, 10,000th, "
        "100,000th manifest entry vs rewriting the whole manifest",
    ),
    "cold_start": (
        "bench.cold_start",
        "5: import time of the ingest handler vs `import boto3` "
        "(python -X importtime, median of fresh processes)",
    ),
    "frame_index": (
        "bench.frame_index",
        "7: extra GETs and bytes per probe for reading the MP4 index (frame timing) "
        "vs the reading before it (10 MB .. 1 GB MP4s, one hour of tiny video)",
    ),
    "fuzz": (
        "bench.fuzz",
        "8: fuzzing every reader of untrusted bytes (20,000 mutated files per target, 2 s and "
        "256 MB per input) vs the readers before issue 11",
    ),
    "throughput": (
        "bench.throughput",
        "9: one dataset's manifest entries/s as writers are added (1..128), real writer at "
        "S3's latency in virtual time, vs the one-open-part design",
    ),
    "cost": (
        "bench.cost",
        "10+11: billed time, calls, item sizes, memory per file through the real handler at "
        "S3's latency; $ per 1,000,000 files on issue 14's mix vs a naive function",
    ),
    "backfill": (
        "bench.backfill",
        "12: a 1,000,000-file backfill at MaxConcurrency 10, 100, 1,000: time and cost, "
        "modelled from the figures measured in 9-11 (SQS scaling, DynamoDB and S3 ceilings)",
    ),
    "own_buckets": (
        "bench.own_buckets",
        "13: attach (200 files) and reconcile (1,000 objects, 50 lost, 20 deleted) on "
        "LocalStack at the issue's counts (only with --e2e; never starts or stops LocalStack)",
    ),
    "reconcile_calls": (
        "bench.reconcile_calls",
        "14: reconcile's AWS calls per 1,000 objects (ListObjectsV2 or an S3 Inventory report) "
        "and its rate, on moto, vs a per-object check; no object bytes read",
    ),
    "e2e": (
        "bench.e2e",
        "6: files/s on LocalStack for 500 files, BatchSize 100 vs 1 "
        "(only with --e2e; never starts or stops LocalStack)",
    ),
}
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    listing = "\n".join(f"  {name:16} {text}" for name, (_, text) in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of media-ingest, each against a baseline measured in the same "
        "run.\nPrints a table and writes JSON. Targets are reported as MET or MISSED; a missed "
        "target\nnever fails the run (exit status 1 only if a benchmark crashed).",
        epilog=f"benchmarks:\n{listing}\n\nGenerated media is cached in --cache: the first "
        "full run writes ~2.5 GB there\n(plus up to 1 GB of transient download-baseline files).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small fast run: no 1 GB files, fewer repetitions, batch sizes 1 and 10, "
        "manifest up to 10,000 entries, 3 import-time rounds, 100 e2e files",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        default="",
        help="comma-separated benchmarks to run (default: all; e2e only reports itself "
        "skipped unless asked for); probe_time is an alias of probe_bytes",
    )
    parser.add_argument(
        "--e2e",
        action="store_true",
        help="also run e2e (~10 minutes): deploys stack media-ingest-bench to the running "
        "LocalStack twice (BatchSize=100, then 1) with infra/deploy.sh, which rebuilds "
        "build/layers; naming e2e in --only has the same effect",
    )
    parser.add_argument(
        "--e2e-wait",
        type=float,
        default=360.0,
        metavar="SECONDS",
        help="e2e: longest wait for the outcomes of one configuration; past it, files/s is "
        "that of the files done and the rest is purged from the bench stack's queue "
        "(default: 360)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=25.0,
        metavar="MS",
        help="first-byte latency of every simulated S3 request (default: 25)",
    )
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=90.0,
        metavar="MB_PER_S",
        help="bytes per second of one simulated S3 connection, in MB (default: 90)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"JSON results file (default: {DEFAULT_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"folder for generated media (default: {DEFAULT_CACHE}; env MEDIA_INGEST_BENCH_CACHE)",
    )
    parser.add_argument(
        "--ffprobe",
        default="layer",
        metavar="layer|system|PATH",
        help="ffprobe for the probe path: 'layer' = the Lambda layer's static build "
        f"({LAYER_FFPROBE.relative_to(ROOT)}, falls back to the system one if not built), "
        "'system' = ffprobe on PATH, or a path (default: layer)",
    )
    return parser.parse_args(argv)


def selected(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The benchmarks to run, and whether e2e was asked for (--e2e, or named in --only).

    Without --only every benchmark is listed; e2e then reports itself skipped unless asked.
    """
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    names = ["probe_bytes" if n == "probe_time" else n for n in names]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    e2e = args.e2e or "e2e" in names or "own_buckets" in names
    return list(dict.fromkeys(names or BENCHMARKS)), e2e


def resolve_ffprobe(choice: str, cache: Path) -> tuple[str, str]:
    """The ffprobe binary to run and a description. The layer's build is copied into the cache
    first: another deploy may rebuild build/ while the benchmark runs."""
    if choice == "layer" and LAYER_FFPROBE.exists():
        copy = cache / "bin" / "ffprobe-layer"
        if not copy.exists() or copy.stat().st_size != LAYER_FFPROBE.stat().st_size:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(LAYER_FFPROBE, copy)
        found: str | None = str(copy)
    elif choice in ("layer", "system"):
        found = shutil.which("ffprobe")
    else:
        found = shutil.which(choice)
    if not found:
        sys.exit(f"ffprobe not found ({choice}); run `bash infra/build.sh` or make setup")
    path = str(Path(found).resolve())
    first = subprocess.run([path, "-version"], capture_output=True, text=True, check=False)
    version = " ".join(first.stdout.split()[:3]) or "unknown version"
    if choice == "layer":
        version += (
            f", a copy of the Lambda layer's {LAYER_FFPROBE.relative_to(ROOT)}"
            if LAYER_FFPROBE.exists()
            else ", the system's: the layer is not built (bash infra/build.sh)"
        )
    return path, version


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names, e2e = selected(args)
    args.cache.mkdir(parents=True, exist_ok=True)
    ffprobe, version = resolve_ffprobe(args.ffprobe, args.cache.resolve())
    ctx = Context(
        quick=args.quick,
        cache=args.cache.resolve(),
        ffprobe=ffprobe,
        ffprobe_version=version,
        e2e=e2e,
        e2e_wait=args.e2e_wait,
        s3_first_byte_ms=args.latency_ms,
        s3_mb_per_s=args.bandwidth,
    )
    started, clock = datetime.now(UTC), time.monotonic()
    sections: list[Section] = []
    for name in names:
        module_name, text = BENCHMARKS[name]
        log(f"{name}: {text}")
        began = time.monotonic()
        try:
            produced = importlib.import_module(module_name).run(ctx)
        except Exception as exc:  # report the crash, run the others, exit 1 at the end
            traceback.print_exc()
            produced = [Section(name=name, title=text, error=f"{type(exc).__name__}: {exc}")]
        for section in produced:
            section.seconds = time.monotonic() - began
        sections += produced
    total = time.monotonic() - clock
    print(render(sections))
    crashed = [s.name for s in sections if s.error]
    print(
        f"total {total:.0f} s; results in {args.out}" + (f"; CRASHED: {crashed}" if crashed else "")
    )
    write_json(
        args.out,
        {
            "started": started.isoformat(),
            "seconds": round(total, 1),
            "argv": argv,
            "quick": args.quick,
            "benchmarks": names,
            "python": sys.version.split()[0],
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
            "ffprobe": ffprobe,
            "ffprobe_version": version,
            "crashed": crashed,
        },
        sections,
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
