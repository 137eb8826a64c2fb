"""Benchmark 11: a 1,000,000-file backfill into one dataset at MaxConcurrency 10, 100, 1,000:
how long, and what it costs.

A model fed by figures measured in this run, not a run of a million files:

- the wall time of one batch of the mix through the real handler at S3's latency, batches
  of 10 and of 100 (section 9, bench/cost.py), and its per-file cost (section 10);
- the manifest's ceiling for one dataset at that many writers (bench/throughput.py: the real
  writer in virtual time, here with a few batches each);
- how the SQS event source scales, as AWS documents it: five concurrent batches at first,
  then up to 300 more a minute, up to MaxConcurrency (at most 1,000);
- the ceilings of the services the batches write to, as AWS documents them: a new
  on-demand DynamoDB table sustains 4,000 writes a second until it has scaled (pre-warming
  raises it at once), and S3 takes 3,500 PUTs a second per prefix (every part of one
  dataset is under one prefix).

Each second the backfill advances at the least of: concurrency x files per batch / batch
time, and each ceiling; every function running is billed for that second (a throttled
function waits, billed, in its retries). Baseline: the design before issue 14 (records one
after another, one open part: its manifest ceiling measured the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench import Context, log
from bench import cost as cost_bench
from bench.latency import Latency
from bench.report import Section, Table, Target
from bench.throughput import run_writers

FILES = 1_000_000
CONCURRENCY = (10, 100, 1000)
START, RAMP_PER_MINUTE = 5, 300
DYNAMODB_NEW_TABLE_WRITES = 4000
S3_PUTS_PER_PREFIX = 3500


@dataclass
class Plan:
    name: str
    batch: int
    batch_seconds: float  # wall time of one batch of the mix
    manifest_ceiling: float  # entries/s one dataset's manifest takes at this concurrency
    dollars_per_file: float  # everything but Lambda duration
    writes_per_file: float = 1.0


@dataclass
class Outcome:
    seconds: float
    function_seconds: float
    limited_by: str


def simulate(plan: Plan, concurrency: int, dynamodb_writes: float) -> Outcome:
    """Second by second until every file is done (module doc)."""
    done = function_seconds = 0.0
    second = 0
    limits: dict[str, float] = {}
    while done < FILES:
        running = min(concurrency, START + RAMP_PER_MINUTE * second / 60)
        limits = {
            "functions": running * plan.batch / plan.batch_seconds,
            "manifest": plan.manifest_ceiling,
            "DynamoDB writes": dynamodb_writes / plan.writes_per_file,
            "S3 PUTs per prefix": S3_PUTS_PER_PREFIX * plan.batch,
        }
        rate = min(limits.values())
        step = min(1.0, (FILES - done) / rate)
        done += rate * step
        function_seconds += running * step
        second += 1
    return Outcome(second, function_seconds, min(limits, key=lambda k: limits[k]))


def measure(ctx: Context, latency: Latency) -> dict[str, Any]:
    figures = ctx.shared.get("cost")
    if figures is None:
        log("backfill: measuring the handler first (bench/cost.py)")
        figures = cost_bench.measure(ctx, latency)
        ctx.shared["cost"] = figures
    ceilings: dict[str, dict[int, float]] = {"ours": {}, "baseline": {}}
    for count in CONCURRENCY:
        log(f"backfill: manifest ceiling with {count} writers")
        ceilings["ours"][count] = run_writers("ours", count, 3, latency).rate
        writers = min(count, 100)  # one open part: flat past a few writers, and slow to simulate
        ceilings["baseline"][count] = run_writers("baseline", writers, 2, latency).rate
    return {"cost": figures, "ceilings": ceilings}


def plans(found: dict[str, Any], concurrency: int) -> list[Plan]:
    figures, ceilings = found["cost"], found["ceilings"]
    wru = cost_bench.write_units(figures)

    def per_file_without_duration(per: dict[str, Any], batch: int) -> float:
        bill = cost_bench.ours("", per, batch, wru)
        return (bill.total - bill.parts["Lambda duration"]) / cost_bench.FILES

    out = []
    for batch in (10, 100):
        per = figures[f"mix/{batch}"]
        out.append(
            Plan(
                name=f"ours, BatchSize {batch}",
                batch=batch,
                batch_seconds=per["wall_ms"] * batch / 1000,
                manifest_ceiling=ceilings["ours"][concurrency],
                dollars_per_file=per_file_without_duration(per, batch),
            )
        )
    before = figures["mix/10/sequential"]
    out.append(
        Plan(
            name="before issue 14 (one by one, one open part), BatchSize 10",
            batch=10,
            batch_seconds=before["wall_ms"] * 10 / 1000,
            manifest_ceiling=ceilings["baseline"][concurrency],
            # Two idempotency records a file more: 5 write units a file, as issue 14 measured.
            dollars_per_file=per_file_without_duration(before, 10)
            + 4 * wru * cost_bench.PRICES["dynamodb_write_unit"],
            writes_per_file=3.0,
        )
    )
    return out


def run(ctx: Context) -> list[Section]:
    latency = Latency(ctx.s3_first_byte_ms, ctx.s3_mb_per_s)
    found = measure(ctx, latency)
    gb = cost_bench.MEMORY_MB / 1024
    price = cost_bench.PRICES["lambda_gb_second_x86"]
    out = Section(
        name="backfill",
        title=f"11. A {FILES:,}-file backfill into one dataset (model from measured figures)",
        measured="batch wall times and per-file costs of sections 9-10; the manifest's ceiling "
        "at that many writers (real writer, virtual time); SQS scaling 5 + 300/minute; "
        f"DynamoDB {DYNAMODB_NEW_TABLE_WRITES:,} writes/s (new on-demand table) or pre-warmed; "
        f"S3 {S3_PUTS_PER_PREFIX:,} PUT/s per prefix",
        baseline="the design before issue 14: records one by one, one open part",
    )
    table = Table(
        "time and cost",
        ["MaxConcurrency", "configuration", "DynamoDB", "time", "limited by", "$ total"],
    )
    results = []
    for concurrency in CONCURRENCY:
        for plan in plans(found, concurrency):
            for table_state, writes in (
                ("new table", DYNAMODB_NEW_TABLE_WRITES),
                ("pre-warmed", float("inf")),
            ):
                if table_state == "pre-warmed" and concurrency < 1000:
                    continue
                outcome = simulate(plan, concurrency, writes)
                dollars = FILES * plan.dollars_per_file + outcome.function_seconds * gb * price
                results.append((concurrency, plan.name, table_state, outcome, dollars))
                table.add(
                    concurrency,
                    plan.name,
                    table_state,
                    _clock(outcome.seconds),
                    outcome.limited_by,
                    f"{dollars:.2f}",
                )
    out.tables.append(table)
    ceilings = Table(
        "manifest ceiling of one dataset (entries/s) at that many writers",
        ["writers", "ours", "one open part"],
    )
    for count in CONCURRENCY:
        ceilings.add(
            count,
            f"{found['ceilings']['ours'][count]:,.0f}",
            f"{found['ceilings']['baseline'][count]:,.0f}",
        )
    out.tables.append(ceilings)
    best = min(
        (r for r in results if r[0] == 100 and r[1].startswith("ours")), key=lambda r: r[3].seconds
    )
    out.targets.append(
        Target(
            "a million files into one dataset in minutes (MaxConcurrency 100)",
            f"{_clock(best[3].seconds)} with {best[1]}, ${best[4]:.2f}",
            best[3].seconds <= 3600,
        )
    )
    out.notes.append(
        "at MaxConcurrency 1,000 a new table's 4,000 writes/s bind first: pre-warm it "
        "(DynamoDB warm throughput) before a large backfill; with BatchSize 10 the manifest "
        "PUTs of one dataset then near S3's 3,500 a second per prefix, BatchSize 100 divides "
        "them by ten"
    )
    out.data = {
        "ceilings": found["ceilings"],
        "runs": [
            {
                "concurrency": c,
                "configuration": name,
                "dynamodb": state,
                "seconds": o.seconds,
                "function_seconds": o.function_seconds,
                "limited_by": o.limited_by,
                "dollars": d,
            }
            for c, name, state, o, d in results
        ],
    }
    return [out]


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
