"""Benchmarks 9 and 10: what one file costs (billed time, AWS calls, item sizes, memory),
and the cost of 1,000,000 files on issue 14's mix (70% images, 25% short clips, 5% 1 GB videos).

Measured: the real ingest handler (bench/handler_worker.py: functions/ingest/app.py with
wiring.build_runner, in a process of its own) on batches of real files: 12 MP JPEGs, 10 s
720p clips (10 MB), and 1 GB MP4s with the index at the end (100 MB with --quick). The
catalog table, failure queue and manifest bucket are a moto server; the drop bucket is a
local file server (bench/s3files.py: moto cannot hold gigabytes); both sit behind one proxy
(bench/proxy.py) that holds every request for S3's latency (bench/latency.py) and counts the
probe's reads of the drop bucket (ffprobe's own GETs included). Billed time per batch is
max(wall, CPU / the vCPU share of a 1,024 MB function): the wall time here is round trips,
and CPU beyond the function's share would stretch it on Lambda. Item sizes are DynamoDB's
(attribute names plus values) of the items the run wrote.

The cost model multiplies those figures by the list prices in PRICES (us-east-1, dated), per
component. Baselines in the same run: the same handler deciding the records of a batch one
after another (the design before issue 14 did, with two more DynamoDB writes a file), and a
naive download-then-probe function (one invocation per file: HeadObject, GetObject of the
whole object at the bandwidth of bench/latency.py, ffprobe on the local file (timed here),
a PutItem, a manifest entry written per file).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from bench import ROOT, Context, environment, log
from bench.latency import DYNAMODB_MS, Latency
from bench.media import MediaCache
from bench.proxy import CountingProxy
from bench.report import Section, Table, Target
from bench.s3files import S3FileServer, etag_of
from tests.support.events import s3_body

# List prices, us-east-1, as published by AWS on 2026-11-29 (DynamoDB's on-demand prices are
# those of its November 2024 cut). Change them here; nothing else holds a price.
PRICES_DATE = "2026-11-29"
PRICES = {
    "lambda_gb_second_x86": 0.0000166667,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "s3_put_list": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "sqs_request": 0.40 / 1e6,
    "logs_gb": 0.50,
    "xray_trace": 5.00 / 1e6,
    "ephemeral_gb_second": 0.0000000309,
    "s3_storage_gb_month": 0.023,
}
# Every batch writes a version of a writer's part: the bucket keeps the others one day
# (template.yaml ManifestBucket), so a backfill stores about a day's worth at a time.
VERSION_DAYS = 1
PART_ENTRIES = 1000
MIX = {"image": 0.70, "clip": 0.25, "video": 0.05}
MEMORY_MB = 1024
VCPU_SHARE = MEMORY_MB / 1769  # Lambda: 1,769 MB is one vCPU
FILES = 1_000_000
TARGET = 3.50
# Lambda writes START, END and REPORT lines per invocation (about 100 bytes each).
PLATFORM_LOG_BYTES = 300
# X-Ray's default sampling: the first request each second, then 5% of the rest.
XRAY_SAMPLED = 0.05
# SQS: S3 sends each event; the poller receives and deletes up to 10 messages per call.
SQS_PER_MESSAGE = 1.0
SQS_BATCH_CALLS = 2  # ReceiveMessage + DeleteMessageBatch, per 10 messages


@dataclass
class Harness:
    ctx: Context
    latency: Latency
    folder: Path = field(init=False)
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> Harness:
        self.folder = Path(tempfile.mkdtemp(prefix="drop-", dir=self.ctx.cache))
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        # moto's state is the process's: a fresh start, whatever another benchmark left.
        requests.post(f"{moto_url}/moto-api/reset", timeout=30)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its line per request
        self.files = S3FileServer({"drop": self.folder}).__enter__()
        self.proxy = CountingProxy(
            moto_url, routes={"drop": self.files.url}, latency=self.latency
        ).__enter__()
        with environment(AWS_ENDPOINT_URL=moto_url):
            self.s3 = boto3.client("s3")
            self.ddb = boto3.client("dynamodb")
            sqs = boto3.client("sqs")
        self.s3.create_bucket(Bucket="manifests")
        self.ddb.create_table(
            TableName="catalog",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        self.failures = sqs.create_queue(QueueName="failures")["QueueUrl"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.proxy.__exit__()
        self.files.__exit__()
        host, port = self.moto.get_host_and_port()
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=30)
        self.moto.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def drop(self, source: Path) -> str:
        """A new object in the drop bucket (a hard link: gigabytes cost nothing), and the S3
        event message body that announces it."""
        number = next(self.numbers)
        name = f"f{number:07d}{source.suffix}"
        os.link(source, self.folder / name)
        etag = etag_of(self.folder / name).strip('"')
        size = source.stat().st_size
        return s3_body("drop", name, size=size, etag=etag, sequencer=f"{number:016X}")

    def run(self, batches: list[list[Path]], workers: int, memory: bool = False) -> dict[str, Any]:
        """The batches through the handler in a fresh worker process; figures per batch, and
        the probe's reads of the drop bucket (requests, bytes) per file."""
        job: dict[str, Any] = {
            "endpoint": self.proxy.url,
            "drop_bucket": "drop",
            "workers": workers,
            "memory": memory,
            "env": {
                "CATALOG_TABLE": "catalog",
                "MANIFEST_BUCKET": "manifests",
                "FAILURE_QUEUE_URL": self.failures,
                "DEFAULT_DATASET": "mix",
                "FFPROBE_PATH": self.ctx.ffprobe,
                "AWS_LAMBDA_FUNCTION_NAME": "media-ingest-bench",
                "POWERTOOLS_SERVICE_NAME": "media-ingest",
                "POWERTOOLS_METRICS_NAMESPACE": "MediaIngest",
                "POWERTOOLS_LOG_LEVEL": "INFO",  # the template's
            },
            "warmup": [self.drop(self.photo) for _ in range(2)],
            "batches": [[self.drop(path) for path in batch] for batch in batches],
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.handler_worker"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=ROOT,
            check=False,
            # Set before the worker imports anything: Powertools reads them at import.
            env=os.environ | job["env"],
        )
        self.proxy.wait_idle()
        if done.returncode != 0:
            raise RuntimeError(f"handler worker failed: {done.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        reads = [s for s in self.proxy.served() if s.path.startswith("/drop/")]
        files = sum(len(b) for b in batches)
        result["drop_requests_per_file"] = len(reads) / files
        result["drop_bytes_per_file"] = sum(s.body_bytes for s in reads) / files
        if any(b["failed"] for b in result["batches"]):
            raise RuntimeError(f"messages failed in the handler: {result['batches']}")
        return result

    @property
    def photo(self) -> Path:
        return MediaCache(self.ctx.cache).photo()

    def entry_bytes(self) -> float:
        """Bytes per manifest entry in the parts the run wrote."""
        size = entries = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket="manifests"):
            for obj in page.get("Contents", []):
                if "/part-" not in obj["Key"]:
                    continue
                body = self.s3.get_object(Bucket="manifests", Key=obj["Key"])["Body"].read()
                doc = json.loads(body)
                size += len(body)
                entries += sum(len(v) for v in doc.values() if isinstance(v, list))
        return size / max(entries, 1)

    def item_sizes(self) -> dict[str, list[int]]:
        sizes: dict[str, list[int]] = {}
        for page in self.ddb.get_paginator("scan").paginate(TableName="catalog"):
            for row in page.get("Items", []):
                kind = row.get("type", {}).get("S", "?")
                sizes.setdefault(kind, []).append(item_size(row))
        return sizes


def item_size(row: dict[str, Any]) -> int:
    """DynamoDB's size of an item: each attribute's name and value (strings and binaries by
    length; numbers about one byte per two digits, plus one)."""
    total = 0
    for name, value in row.items():
        [(kind, raw)] = value.items()
        if kind == "S":
            size = len(raw.encode())
        elif kind == "B":
            size = len(raw)
        elif kind == "N":
            size = math.ceil(len(raw.lstrip("-").replace(".", "")) / 2) + 1
        else:
            size = len(json.dumps(raw))
        total += len(name.encode()) + size
    return total


@dataclass
class Media:
    image: Path
    clip: Path
    video: Path

    def of(self, kind: str) -> Path:
        path: Path = getattr(self, kind)
        return path


def media(ctx: Context) -> Media:
    cache = MediaCache(ctx.cache)
    size = 100_000_000 if ctx.quick else 1_000_000_000
    return Media(cache.photo(), cache.clip(), cache.mp4(size, faststart=False).path)


def mixed(files: int, seed: int = 14) -> list[str]:
    """`files` kinds in the mix's proportions, in a fixed random order."""
    kinds = [kind for kind, share in MIX.items() for _ in range(round(files * share))]
    random.Random(seed).shuffle(kinds)
    return kinds


def per_file(result: dict[str, Any]) -> dict[str, float]:
    """Billed ms, wall ms, CPU ms, log bytes and API calls per file over a run's batches."""
    batches = result["batches"]
    files = sum(b["files"] for b in batches)
    billed = sum(max(b["wall_ms"], b["cpu_ms"] / VCPU_SHARE) for b in batches)
    calls = Counter[str]()
    for b in batches:
        calls.update(b["calls"])
    return {
        "files": files,
        "billed_ms": billed / files,
        "wall_ms": sum(b["wall_ms"] for b in batches) / files,
        "cpu_ms": sum(b["cpu_ms"] for b in batches) / files,
        "batch_billed_ms": billed / len(batches),
        "log_bytes": sum(b["log_bytes"] for b in batches) / files,
        "calls": {name: n / files for name, n in calls.items()},
        "drop_requests": result["drop_requests_per_file"],
        "drop_bytes": result["drop_bytes_per_file"],
    }


def measure(ctx: Context, latency: Latency) -> dict[str, Any]:
    found: dict[str, Any] = {}
    files = media(ctx)
    reps = 2 if ctx.quick else 3
    with Harness(ctx, latency) as harness:
        for kind in MIX:
            log(f"cost: {reps} batches of 10 {kind}s, decided at once, then one by one")
            batches = [[files.of(kind)] * 10 for _ in range(reps)]
            found[f"{kind}/10"] = per_file(harness.run(batches, workers=10))
            found[f"{kind}/10/sequential"] = per_file(harness.run(batches[:1], workers=1))
        log("cost: a batch of 10 one-second clips (20 KB): whole GET vs ranged reads")
        tiny = MediaCache(ctx.cache).tiny_videos(1)[0]
        found["tiny/10"] = per_file(harness.run([[tiny] * 10], workers=10))
        found["tiny_size"] = tiny.stat().st_size
        mix_files = 100 if ctx.quick else 200
        kinds = [files.of(kind) for kind in mixed(mix_files)]
        for size in (10, 100):
            log(f"cost: {mix_files} files of the mix in batches of {size}")
            batches = [kinds[i : i + size] for i in range(0, len(kinds), size)]
            found[f"mix/{size}"] = per_file(harness.run(batches, workers=10))
        log("cost: the mix one record after another (batches of 10)")
        batches = [kinds[i : i + 10] for i in range(0, min(len(kinds), 50), 10)]
        found["mix/10/sequential"] = per_file(harness.run(batches, workers=1))
        log("cost: peak memory of batches of 10 clips and of 10 large videos at once")
        for kind in ("clip", "video"):
            run = harness.run([[files.of(kind)] * 10], workers=10, memory=True)
            found[f"memory/{kind}"] = run["batches"][0]
        found["item_sizes"] = harness.item_sizes()
        found["entry_bytes"] = harness.entry_bytes()
    for key in ("mix/10", "mix/100", "mix/10/sequential"):
        found[key]["entry_bytes"] = found["entry_bytes"]
    found["local_ffprobe_ms"] = {kind: local_probe_ms(ctx, files.of(kind)) for kind in MIX}
    found["sizes"] = {kind: files.of(kind).stat().st_size for kind in MIX}
    return found


def local_probe_ms(ctx: Context, path: Path, runs: int = 3) -> float:
    """ffprobe on a local file, as a download-then-probe function runs it (median wall)."""
    args = [ctx.ffprobe, "-v", "error", "-print_format", "json", "-show_format"]
    args += ["-show_streams", str(path)]
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True, timeout=300)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


@dataclass
class Bill:
    """Dollars per FILES files, by component."""

    name: str
    parts: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.parts.values())


def ours(name: str, per: dict[str, Any], batch: int, wru: float, arm64: bool = False) -> Bill:
    """The stack's bill for FILES files of the mix from its measured per-file figures."""
    gb_second = PRICES["lambda_gb_second_arm64" if arm64 else "lambda_gb_second_x86"]
    calls = per["calls"]
    writes = sum(n for op, n in calls.items() if op.startswith("DynamoDB.") and "Get" not in op)
    reads = sum(n for op, n in calls.items() if op.startswith("DynamoDB.") and "Get" in op)
    puts = sum(n for op, n in calls.items() if op in ("S3.PutObject", "S3.ListObjectsV2"))
    gets = per["drop_requests"] + sum(n for op, n in calls.items() if op == "S3.GetObject")
    sqs_sends = sum(n for op, n in calls.items() if op.startswith("SQS."))  # failure records
    invocations = FILES / batch
    logs = FILES * per["log_bytes"] + invocations * PLATFORM_LOG_BYTES
    return Bill(
        name,
        {
            "Lambda duration": FILES * per["billed_ms"] / 1000 * MEMORY_MB / 1024 * gb_second,
            "Lambda requests": invocations * PRICES["lambda_request"],
            "DynamoDB": FILES
            * (writes * wru * PRICES["dynamodb_write_unit"] + reads * PRICES["dynamodb_read_unit"]),
            "S3 requests": FILES * (puts * PRICES["s3_put_list"] + gets * PRICES["s3_get"]),
            "SQS": FILES * (SQS_PER_MESSAGE + sqs_sends) * PRICES["sqs_request"]
            + invocations * SQS_BATCH_CALLS * math.ceil(batch / 10) * PRICES["sqs_request"],
            "CloudWatch Logs": logs / 1e9 * PRICES["logs_gb"],
            "X-Ray": invocations * XRAY_SAMPLED * PRICES["xray_trace"],
            "S3 part versions": versions_gb(per, batch)
            * PRICES["s3_storage_gb_month"]
            * VERSION_DAYS
            / 30,
        },
    )


def versions_gb(per: dict[str, Any], batch: int) -> float:
    """The part versions the batches write: a commit a batch, of a part half full on average
    (the entry size measured in the parts the run wrote)."""
    return FILES / batch * PART_ENTRIES / 2 * float(per["entry_bytes"]) / 1e9


def naive(figures: dict[str, Any], latency: Latency) -> Bill:
    """One invocation per file: HeadObject, GetObject of the whole object, ffprobe on the local
    copy (timed here), PutItem, one manifest entry PutObject; /tmp as large as the object."""
    duration_ms = ephemeral = 0.0
    for kind, share in MIX.items():
        size = figures["sizes"][kind]
        trips = 2 * latency.seconds() + latency.seconds(received=size) + 2 * DYNAMODB_MS / 1000
        seconds = trips + figures["local_ffprobe_ms"][kind] / 1000
        duration_ms += share * seconds * 1000
        extra_gb = max(size / 1e9 - 0.512, 0.0)  # /tmp beyond the free 512 MB
        ephemeral += share * seconds * extra_gb
    invocations = FILES
    return Bill(
        "naive download-then-probe, one file per invocation",
        {
            "Lambda duration": FILES * duration_ms / 1000 * PRICES["lambda_gb_second_x86"]
            + FILES * ephemeral * PRICES["ephemeral_gb_second"],
            "Lambda requests": invocations * PRICES["lambda_request"],
            "DynamoDB": FILES * PRICES["dynamodb_write_unit"],
            "S3 requests": FILES * (PRICES["s3_put_list"] + 2 * PRICES["s3_get"]),
            "SQS": FILES * (SQS_PER_MESSAGE + SQS_BATCH_CALLS) * PRICES["sqs_request"],
            "CloudWatch Logs": FILES * (PLATFORM_LOG_BYTES + 200) / 1e9 * PRICES["logs_gb"],
            "X-Ray": invocations * XRAY_SAMPLED * PRICES["xray_trace"],
            "S3 part versions": 0.0,  # one object per entry, never rewritten
        },
    )


def run(ctx: Context) -> list[Section]:
    latency = Latency(ctx.s3_first_byte_ms, ctx.s3_mb_per_s)
    figures = measure(ctx, latency)
    ctx.shared["cost"] = figures
    return [time_section(figures, latency), cost_section(figures, latency)]


def write_units(figures: dict[str, Any]) -> float:
    """Write units per catalog write: DynamoDB bills one per started KB of the item."""
    sizes = figures["item_sizes"].get("item", [1])
    return statistics.fmean(math.ceil(s / 1024) for s in sizes)


def time_section(figures: dict[str, Any], latency: Latency) -> Section:
    out = Section(
        name="cost_time",
        title="9. Per file: billed time, calls, item sizes, memory (real handler, S3 latency)",
        measured=f"functions/ingest/app.py in a worker process; moto + a file server behind a "
        f"proxy at {latency.describe()}; billed = max(wall, CPU / {VCPU_SHARE:.2f} vCPU)",
        baseline="the same handler deciding a batch's records one after another",
    )
    table = Table(
        "per file, batches of 10",
        [
            "files",
            "billed ms/file",
            "one by one",
            "speed-up",
            "CPU ms/file",
            "probe GETs/file",
            "probe KB/file",
            "API calls/file",
            "log bytes/file",
        ],
    )
    for kind in (*MIX, "mix"):
        now, before = figures[f"{kind}/10"], figures[f"{kind}/10/sequential"]
        table.add(
            kind,
            f"{now['billed_ms']:.1f}",
            f"{before['billed_ms']:.1f}",
            f"{before['billed_ms'] / now['billed_ms']:.1f}x",
            f"{now['cpu_ms']:.1f}",
            f"{now['drop_requests']:.2f}",
            f"{now['drop_bytes'] / 1024:.0f}",
            f"{sum(now['calls'].values()):.2f}",
            f"{now['log_bytes']:.0f}",
        )
    big = figures["mix/100"]
    table.add(
        "mix, batches of 100",
        f"{big['billed_ms']:.1f}",
        "",
        "",
        f"{big['cpu_ms']:.1f}",
        f"{big['drop_requests']:.2f}",
        f"{big['drop_bytes'] / 1024:.0f}",
        f"{sum(big['calls'].values()):.2f}",
        f"{big['log_bytes']:.0f}",
    )
    out.tables.append(table)
    calls = Table(
        "API calls per file by operation (mix, batches of 10 and 100)",
        ["operation", "batch 10", "batch 100"],
    )
    ops = sorted(set(figures["mix/10"]["calls"]) | set(big["calls"]))
    for op in ops:
        calls.add(
            op, f"{figures['mix/10']['calls'].get(op, 0):.3f}", f"{big['calls'].get(op, 0):.3f}"
        )
    out.tables.append(calls)
    memory = Table(
        "peak memory of one batch of 10 decided at once", ["files", "peak MB", "ffprobes at once"]
    )
    for kind in ("clip", "video"):
        m = figures[f"memory/{kind}"]
        memory.add(kind, f"{m['peak_mb']:.0f}", m["most_children"])
    out.tables.append(memory)
    sizes = Table(
        "DynamoDB item sizes written (bytes: names + values)",
        ["record", "items", "median", "max", "write units"],
    )
    for kind, found in sorted(figures["item_sizes"].items()):
        sizes.add(
            kind,
            len(found),
            statistics.median(found),
            max(found),
            max(math.ceil(s / 1024) for s in found),
        )
    out.tables.append(sizes)
    out.tables.append(whole_get_table(figures, latency))
    peak = max(figures[f"memory/{k}"]["peak_mb"] for k in ("clip", "video"))
    out.targets.append(
        Target(
            f"ten records at once fit the function's {MEMORY_MB} MB",
            f"peak {peak:.0f} MB",
            peak < MEMORY_MB * 0.8,
        )
    )
    out.data = {k: v for k, v in figures.items() if k != "item_sizes"} | {
        "item_sizes": {k: statistics.median(v) for k, v in figures["item_sizes"].items()}
    }
    return out


def whole_get_table(figures: dict[str, Any], latency: Latency) -> Table:
    """The probe's ranged reads (requests and bytes measured) against one GET of the whole
    object and ffprobe on the bytes in memory, by the latency model."""
    table = Table(
        "probe reads: ranged (measured) vs one whole GET (modelled at the same latency)",
        [
            "file",
            "size",
            "ranged GETs",
            "ranged KB",
            "ranged ms",
            "whole-GET ms",
            "cheaper",
            "break-even size",
        ],
    )
    rows = [("1 s clip", "tiny/10", figures["tiny_size"])]
    rows += [(kind, f"{kind}/10", figures["sizes"][kind]) for kind in MIX]
    for name, key, size in rows:
        per = figures[key]
        ranged = per["drop_requests"] * latency.seconds() + per["drop_bytes"] / (
            latency.mb_per_s * 1e6
        )
        whole = latency.seconds(received=size)
        saved = max(per["drop_requests"] - 1, 0) * latency.first_byte_ms / 1000
        table.add(
            name,
            f"{size / 1e6:.2f} MB",
            f"{per['drop_requests']:.2f}",
            f"{per['drop_bytes'] / 1024:.0f}",
            f"{ranged * 1000:.0f}",
            f"{whole * 1000:.0f}",
            "whole GET" if whole < ranged else "ranged",
            f"{saved * latency.mb_per_s:.1f} MB",
        )
    return table


def cost_section(figures: dict[str, Any], latency: Latency) -> Section:
    wru = write_units(figures)
    bills = [
        ours("ours, BatchSize 10", figures["mix/10"], 10, wru),
        ours("ours, BatchSize 100 (the default)", figures["mix/100"], 100, wru),
        ours("ours, BatchSize 100, arm64 (price only)", figures["mix/100"], 100, wru, True),
        ours("records one by one, BatchSize 10", figures["mix/10/sequential"], 10, wru),
        naive(figures, latency),
    ]
    out = Section(
        name="cost",
        title=f"10. Cost of {FILES:,} files: {', '.join(f'{v:.0%} {k}s' for k, v in MIX.items())}",
        measured=f"section 9's figures x list prices, us-east-1, as of {PRICES_DATE} "
        f"(bench/cost.py PRICES); Lambda {MEMORY_MB} MB x86",
        baseline="a naive download-then-probe function (one file per invocation), and this "
        "handler deciding records one by one; issue 14 measured $8.3 before it",
    )
    components = list(bills[0].parts)
    table = Table(f"$ per {FILES:,} files", ["component", *(b.name for b in bills)])
    for component in components:
        table.add(component, *(f"{b.parts[component]:.2f}" for b in bills))
    table.add("total", *(f"{b.total:.2f}" for b in bills))
    out.tables.append(table)
    prices = Table(f"list prices used (us-east-1, {PRICES_DATE})", ["price", "USD"])
    for name, value in PRICES.items():
        prices.add(name, f"{value:.10g}")
    out.tables.append(prices)
    small, default = bills[0], bills[1]
    out.targets.append(
        Target(
            f"<= ${TARGET:.2f} per {FILES:,} files at the default BatchSize 100",
            f"${default.total:.2f} (BatchSize 10: ${small.total:.2f}; naive "
            f"${bills[-1].total:.2f})",
            default.total <= TARGET,
        )
    )
    out.notes.append(
        "arm64 is priced, not measured: no arm64 CPU here to time a pinned arm64 ffprobe on"
    )
    out.notes.append(
        "SQS: S3 sends each event; the poller receives and deletes up to 10 messages a call; "
        "polling an idle queue is not counted. Logs: what the handler printed, plus Lambda's "
        f"START/END/REPORT lines (~{PLATFORM_LOG_BYTES} bytes an invocation)."
    )
    out.data = {"bills": {b.name: b.parts | {"total": b.total} for b in bills}, "prices": PRICES}
    return out
