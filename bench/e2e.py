"""Benchmark 6: end-to-end throughput on LocalStack, the ingest function's BatchSize 100 vs 1.

Measured: after a one-file preflight (which fails fast on a broken deploy and keeps the
function's first cold start out of the figure), 500 small real files (half ~20 KB MP4s,
half PNGs) put into the drop bucket at once (16 upload threads); the time from the first
upload until every key has a recorded outcome (`media_ingest.ops.status.wait_for_outcomes`,
polled every second), as files/s. The stack is `media-ingest-bench`, deployed with
infra/deploy.sh (which also builds the layers) and the template's `BatchSize` parameter:
first 100 (the template's default), then 1.

Baseline: the same drop with BatchSize=1, i.e. one invocation per file.

Each configuration waits at most --e2e-wait seconds (default 360): on LocalStack one file per
invocation runs at well under 1 file/s, so 500 would take over ten minutes. When the wait
runs out, the rate is that of the files that got an outcome, and what is still queued is
purged from the stack's own ingest queue so it does not keep the shared LocalStack busy.

LocalStack is shared: this never starts, stops or restarts it. It runs only with --e2e and
only if `infra/localstack/harness.sh status` exits 0. Loopback LocalStack with host-mode
function processes is not AWS: only the ratio between the two batch sizes carries over.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from bench import ROOT, Context, environment, log
from bench.media import MediaCache, tiny_png
from bench.report import Section, Table
from media_ingest.adapters import clients
from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.ops.stack import stack_outputs
from media_ingest.ops.status import wait_for_outcomes

STACK = "media-ingest-bench"
FILES, QUICK_FILES = 500, 100
BATCH_SIZES = (100, 1)  # the template's default first, then the baseline
PREFLIGHT_SECONDS = 180.0
NOT_RUNNING = "skipped: LocalStack not running (make localstack-start)"


def localstack_running() -> bool:
    done = subprocess.run(
        ["bash", "infra/localstack/harness.sh", "status"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


def local_env() -> dict[str, str]:
    """The variables infra/localenv.sh exports (the endpoint and fake credentials)."""
    done = subprocess.run(
        ["bash", "-c", "source infra/localenv.sh && env -0"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=True,
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("AWS_")}


def deploy(ctx: Context, batch_size: int) -> None:
    log_file = ctx.cache / f"e2e-deploy-batch{batch_size}.log"
    log(f"e2e: deploying {STACK} with BatchSize={batch_size} (log: {log_file})")
    with log_file.open("w") as out:
        done = subprocess.run(
            ["bash", "infra/deploy.sh", STACK, f"BatchSize={batch_size}"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
            check=False,
            env=os.environ | {"MEDIA_INGEST_STACK": STACK},
        )
    if done.returncode != 0:
        tail = log_file.read_text().strip().splitlines()[-15:]
        raise RuntimeError(f"deploy of {STACK} failed:\n" + "\n".join(tail))


def preflight() -> None:
    """One small file through the freshly deployed stack, so a broken deploy fails fast (and the
    first cold start of the function is not inside the measurement)."""
    outputs = stack_outputs(STACK)
    key = f"bench-preflight-{uuid.uuid4().hex[:8]}/one.png"
    boto3.client("s3").put_object(Bucket=outputs.DropBucketName, Key=key, Body=tiny_png(0))
    try:
        wait_for_outcomes(outputs, {key}, timeout=PREFLIGHT_SECONDS, poll=1.0)
    except TimeoutError:
        boto3.client("sqs").purge_queue(QueueUrl=outputs.IngestQueueUrl)
        group = f"/aws/lambda/{STACK}-ingest"
        raise RuntimeError(
            f"preflight: {STACK} gave one small file no outcome in {PREFLIGHT_SECONDS:.0f} s; "
            f"last error in the function's log ({group}): {last_error(group) or 'none found'}"
        ) from None


def last_error(group: str) -> str | None:
    """The last line of the last exception the function logged (best effort)."""
    try:
        logs = boto3.client("logs")
        streams = logs.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", descending=True, limit=1
        )["logStreams"]
        events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])
        for event in reversed(events["events"]):
            if '"exception"' in event["message"]:
                exception: str = json.loads(event["message"])["exception"]
                return exception.strip().splitlines()[-1][:400]
    except Exception:  # only a hint for the message above
        return None
    return None


def drop_and_wait(files: list[tuple[str, bytes]], prefix: str, wait: float) -> dict[str, Any]:
    outputs = stack_outputs(STACK)
    s3 = boto3.client("s3")
    keys = {prefix + key for key, _ in files}
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: s3.put_object(
                    Bucket=outputs.DropBucketName, Key=prefix + item[0], Body=item[1]
                ),
                files,
            )
        )
    uploaded = time.monotonic() - started
    try:
        outcomes = wait_for_outcomes(outputs, keys, timeout=wait, poll=1.0)
    except TimeoutError:
        # A rate from the part that finished; the rest must not keep the shared LocalStack
        # busy after the benchmark: purge what is still queued (our own stack's queue).
        seconds = time.monotonic() - started
        done, _ = CatalogReader(outputs.RegistryTableName).ledger()
        mine = [o for o in done if o.key in keys]
        boto3.client("sqs").purge_queue(QueueUrl=outputs.IngestQueueUrl)
        return {
            "files": len(keys),
            "uploaded_s": uploaded,
            "seconds": seconds,
            "files_per_s": len(mine) / seconds,
            "outcomes": dict(Counter(o.kind.value for o in mine)),
            "partial": f"{len(mine)} of {len(keys)} in {seconds:.0f} s, rest purged",
        }
    seconds = time.monotonic() - started
    return {
        "files": len(keys),
        "uploaded_s": uploaded,
        "seconds": seconds,
        "files_per_s": len(keys) / seconds,
        "outcomes": dict(Counter(o.kind.value for o in outcomes)),
    }


def run(ctx: Context) -> list[Section]:
    section = Section(
        name="e2e",
        title="6. End-to-end throughput on LocalStack",
        measured="time from the first upload to the last recorded outcome, files/s, "
        f"stack {STACK} at BatchSize={BATCH_SIZES[0]} (template default)",
        baseline="the same drop with BatchSize=1 (one invocation per file)",
    )
    if not ctx.e2e:
        section.skipped = "skipped: not requested (python -m bench --e2e)"
        return [section]
    if not localstack_running():
        section.skipped = NOT_RUNNING
        return [section]
    count = QUICK_FILES if ctx.quick else FILES
    cache = MediaCache(ctx.cache)
    videos = cache.tiny_videos(count // 2 + 1)
    files = [
        (f"clips/{n:05d}.mp4", videos[n // 2].read_bytes())
        if n % 2 == 0
        else (f"photos/{n:05d}.png", tiny_png(n))
        for n in range(count)
    ]
    results: dict[int, dict[str, Any]] = {}
    with environment(**local_env(), MEDIA_INGEST_STACK=STACK):
        clients.client.cache_clear()
        try:
            for batch_size in BATCH_SIZES:
                deploy(ctx, batch_size)
                clients.client.cache_clear()
                preflight()
                prefix = f"bench-{uuid.uuid4().hex[:8]}-b{batch_size}/"
                log(f"e2e: dropping {count} files under {prefix}, waiting for outcomes")
                results[batch_size] = drop_and_wait(files, prefix, ctx.e2e_wait)
        finally:
            clients.client.cache_clear()
    table = Table(
        f"{count} files dropped at once",
        ["BatchSize", "files/s", "all outcomes after", "uploads took", "outcomes"],
    )
    for batch_size, r in results.items():
        table.add(
            batch_size,
            f"{r['files_per_s']:.1f}",
            r.get("partial") or f"{r['seconds']:.1f} s",
            f"{r['uploaded_s']:.1f} s",
            ", ".join(f"{k} {v}" for k, v in r["outcomes"].items()),
        )
    section.tables.append(table)
    batched, single = results.get(BATCH_SIZES[0], {}), results.get(1, {})
    if batched.get("files_per_s") and single.get("files_per_s"):
        section.notes.append(
            f"no target is set for e2e; BatchSize {BATCH_SIZES[0]} ran at "
            f"{batched['files_per_s'] / single['files_per_s']:.2f}x the files/s of BatchSize 1"
        )
    section.notes.append(
        f"the stack {STACK} stays deployed (BatchSize={BATCH_SIZES[-1]}); deploy logs in "
        f"{ctx.cache}"
    )
    section.data = {"stack": STACK, "results": results}
    return [section]
