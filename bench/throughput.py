"""Benchmark 8: one dataset's manifest throughput as writers are added, at S3's latency.

Measured: W writers, each the real `ManifestWriter` over the real `S3PartStore` (JSON,
metadata, conditional-write parameters) and the real `DynamoPartNumbers`, appending batches
of 10 entries (the stack's BatchSize) to one dataset, all starting at once (a burst of cold
starts). S3 and DynamoDB are in memory (bench/memory_s3.py) and every call takes the
latency of bench/latency.py (default: first byte 25 ms, 90 MB/s; DynamoDB 8 ms). The
writers run in virtual time (bench/simclock.py): each stands for a function of its own, its
CPU (measured, times the CPU share of a 1,024 MB function) added to its own clock, so 100
writers are measured on a two-core machine as 100 machines. Figures: entries per virtual
second (all entries over the time the last writer finished), races lost per commit (mean,
and the most before one commit), index races, batches that gave up (each would wait out the
SQS visibility timeout), S3 calls per entry; every entry is then checked to be in exactly
one part, and no part past the part size.

Baseline: the append before issue 14 (bench/baselines.py OnePartWriter: one open part,
read-merge-write), same store, same latency, same run.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench import Context, log
from bench.baselines import OnePartWriter
from bench.latency import DYNAMODB_MS, Latency
from bench.manifest_growth import entries as video_entries
from bench.memory_s3 import MemoryCounters, MemoryS3
from bench.report import Section, Table, Target
from bench.simclock import VirtualTime
from media_ingest.adapters.catalog import DynamoPartNumbers
from media_ingest.adapters.manifests import S3PartStore
from media_ingest.errors import TransientError
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.platforms.encord import Entry
from media_ingest.settings import Settings

WRITERS = (1, 4, 16, 32, 64, 100, 128)
QUICK_WRITERS = (1, 16, 100)
BASELINE_WRITERS = (1, 4, 16, 32, 100)
QUICK_BASELINE_WRITERS = (1, 16, 100)
BATCH = 10
PART = 1000
# The stack's byte cap on a part, checked on every commit as the functions do.
PART_MAX_BYTES: int = Settings.model_fields["manifest_part_max_bytes"].default
# Full: 1,200 entries a writer, so every part is filled, sealed and recorded once.
BATCHES, QUICK_BATCHES = 120, 10
BASELINE_BATCHES = 8
# A 1,024 MB function has 1,024/1,769 of a vCPU (Lambda: 1,769 MB is one vCPU).
CPU_SCALE = 1769 / 1024
TARGET_WRITERS, TARGET_RATE, TARGET_STREAK = 100, 1000.0, 2


@dataclass
class Result:
    design: str
    writers: int
    entries: int
    seconds: float
    commits: int
    conflicts: int
    worst_streak: int
    index_conflicts: int
    gave_up: int
    s3_calls: dict[str, int]
    counter_calls: int
    cpu_seconds: float
    parts: int
    exact: bool

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0

    @property
    def per_commit(self) -> float:
        return self.conflicts / self.commits if self.commits else 0.0

    @property
    def calls_per_entry(self) -> float:
        return (sum(self.s3_calls.values()) + self.counter_calls) / max(self.entries, 1)


def run_writers(
    design: str,
    writers: int,
    batches: int,
    latency: Latency,
    *,
    part: int = PART,
    fresh: bool = False,
) -> Result:
    """`writers` writers appending `batches` batches each, all at once; `fresh`: into a new
    dataset (else one that has its index and main part already)."""
    clock = VirtualTime(cpu_scale=CPU_SCALE)
    s3 = MemoryS3(latency=latency, clock=clock)
    counters = MemoryCounters(DYNAMODB_MS, clock=clock)
    pool = iter(video_entries(writers * batches * BATCH + 1))
    first = next(pool)
    plans = [[[next(pool) for _ in range(BATCH)] for _ in range(batches)] for _ in range(writers)]
    made: list[Any] = []
    appended: list[str] = []
    gave_up = 0

    def writer() -> ManifestWriter | OnePartWriter:
        store = S3PartStore("manifests", client=s3)  # type: ignore[arg-type]
        if design == "ours":
            numbers = DynamoPartNumbers("catalog", client=counters)  # type: ignore[arg-type]
            return ManifestWriter(
                store,
                max_entries=part,
                max_bytes=PART_MAX_BYTES,
                numbers=numbers,
                sleep=clock.sleep,
                clock=clock.now,
            )
        return OnePartWriter(store, max_entries=part, sleep=clock.sleep)

    def act(plan: list[list[Entry]]) -> None:
        nonlocal gave_up
        mine = writer()
        made.append(mine)
        for batch in plan:
            try:
                mine.append("main", batch)
            except TransientError:
                gave_up += 1  # waits out the visibility timeout: not appended in this run
                continue
            appended.extend(e.key for e in batch)

    if not fresh:  # the dataset as earlier drops left it: its index and its main part
        clock.spawn("earlier", lambda: writer().append("main", [first]))
        clock.run()
        appended.append(first.key)
        s3.reset()
        counters.calls = 0
    began = clock.now_s
    for number, plan in enumerate(plans):
        clock.spawn(f"writer-{number}", act, plan)
    seconds = clock.run() - began
    stored = _stored_keys(s3)
    exact = Counter(stored) == Counter(appended) and _within(s3, part)
    return Result(
        design=design,
        writers=writers,
        entries=len(appended),
        seconds=seconds,
        commits=sum(w.commits for w in made),
        conflicts=sum(w.conflicts for w in made),
        worst_streak=max(w.worst_streak for w in made),
        index_conflicts=sum(w.index_conflicts for w in made),
        gave_up=gave_up,
        s3_calls=dict(s3.calls),
        counter_calls=counters.calls,
        cpu_seconds=clock.cpu_seconds,
        parts=sum(1 for k in s3.objects if "/part-" in k),
        exact=exact,
    )


def _stored_keys(s3: MemoryS3) -> list[str]:
    store = S3PartStore("manifests", client=s3)  # type: ignore[arg-type]
    keys: list[str] = []
    for listed in store.list_parts("main"):
        got = store.read_part("main", listed.number)
        if got is not None:
            keys += got.value.entry_keys()
    return keys


def _within(s3: MemoryS3, part: int) -> bool:
    store = S3PartStore("manifests", client=s3)  # type: ignore[arg-type]
    parts = [store.read_part("main", p.number) for p in store.list_parts("main")]
    return all(p is not None and p.value.entry_count <= part for p in parts)


def measure(ctx: Context, latency: Latency) -> dict[str, list[Result]]:
    writers = QUICK_WRITERS if ctx.quick else WRITERS
    baseline = QUICK_BASELINE_WRITERS if ctx.quick else BASELINE_WRITERS
    batches = QUICK_BATCHES if ctx.quick else BATCHES
    found: dict[str, list[Result]] = {"ours": [], "baseline": []}
    for count in writers:
        log(f"throughput: {count} writers x {batches} batches of {BATCH}, ours")
        found["ours"].append(run_writers("ours", count, batches, latency))
    for count in baseline:
        fewer = min(batches, BASELINE_BATCHES)
        log(f"throughput: {count} writers x {fewer} batches of {BATCH}, one open part (baseline)")
        found["baseline"].append(run_writers("baseline", count, fewer, latency))
    return found


def run(ctx: Context) -> list[Section]:
    latency = Latency(ctx.s3_first_byte_ms, ctx.s3_mb_per_s)
    return [section(measure(ctx, latency), latency)]


def section(found: dict[str, list[Result]], latency: Latency) -> Section:
    out = Section(
        name="throughput",
        title="8. One dataset's manifest throughput as writers are added",
        measured=f"real ManifestWriter + S3PartStore + DynamoPartNumbers, in-memory S3 at "
        f"{latency.describe()}, DynamoDB {DYNAMODB_MS:g} ms; writers in virtual time, each with "
        f"its own CPU (x{CPU_SCALE:.2f}: a 1,024 MB function's share); batches of {BATCH}, "
        f"parts of {PART:,}; all writers start at once",
        baseline="the one-open-part append before issue 14 (read, merge, IfMatch write, "
        "backoff, gives up after 25 lost races), same store and latency",
    )
    baseline = {r.writers: r for r in found["baseline"]}
    table = Table(
        "writers -> entries per second (virtual), races lost, exactly once",
        [
            "writers",
            "entries/s",
            "lost/commit",
            "most lost",
            "index races",
            "gave up",
            "S3 calls/entry",
            "parts",
            "exact",
            "baseline entries/s",
            "baseline lost/commit",
            "baseline gave up",
        ],
    )
    for result in found["ours"]:
        base = baseline.get(result.writers)
        table.add(
            result.writers,
            f"{result.rate:,.0f}",
            f"{result.per_commit:.2f}",
            result.worst_streak,
            result.index_conflicts,
            result.gave_up,
            f"{result.calls_per_entry:.3f}",
            result.parts,
            "yes" if result.exact else "NO",
            f"{base.rate:,.0f}" if base else "",
            f"{base.per_commit:.1f}" if base else "",
            f"{base.gave_up}/{base.commits + base.gave_up}" if base else "",
        )
    out.tables.append(table)
    at = next((r for r in found["ours"] if r.writers == TARGET_WRITERS), None)
    if at is not None:
        out.targets.append(
            Target(
                f">= {TARGET_RATE:,.0f} entries/s into one dataset with {TARGET_WRITERS} writers",
                f"{at.rate:,.0f} entries/s",
                at.rate >= TARGET_RATE,
            )
        )
        out.targets.append(
            Target(
                f"<= {TARGET_STREAK} races lost before any commit, none gave up, every entry "
                "exactly once",
                f"most lost {at.worst_streak}, mean {at.per_commit:.2f}/commit, gave up "
                f"{at.gave_up}, exact: {'yes' if at.exact else 'NO'}",
                at.worst_streak <= TARGET_STREAK and at.gave_up == 0 and at.exact,
            )
        )
    cpu = statistics.fmean(r.cpu_seconds / max(r.commits, 1) for r in found["ours"]) * 1000
    out.notes.append(
        f"CPU per commit (this machine, before scaling): {cpu:.1f} ms; parts are rewritten "
        "whole, so it grows with the part size, never with the dataset"
    )
    out.notes.append(
        "baseline with fewer batches per writer (its races make it slow to simulate); its "
        "rate is the ceiling one open part allows"
    )
    out.data = {
        design: [vars(r) | {"rate": r.rate, "per_commit": r.per_commit} for r in results]
        for design, results in found.items()
    }
    return out
