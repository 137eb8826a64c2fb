"""Benchmark 13: the issue's own-bucket scenarios at full counts on LocalStack, through the real
event path (EventBridge rule -> ingest queue -> function), run as the integration tests
themselves (tests/integration/test_own_buckets.py) with their counts raised:

- attach beside another consumer's notification, 200 files dropped: their consumer gets every
  event, the stack ingests every file, detach restores the configuration exactly;
- 1,000 objects, 50 events lost on purpose and 20 objects deleted while the event source
  mapping is disabled: `reconcile` reports them, `reconcile --apply` enqueues them, and every
  object ends with exactly one live outcome, no manifest entry twice.

The suite runs the reconcile scenario on 300 objects (15 lost, 6 deleted) to keep CI's wall
time down; this runs the full counts and reports what the test measured (events, outcomes,
calls per 1,000 objects reconciled, times). Stack `media-ingest-bench-own` (deployed by the
test session as the integration tests deploy theirs). Only with --e2e (or named in --only),
and only if LocalStack is running; never starts or stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from bench import ROOT, Context, log
from bench.e2e import NOT_RUNNING, local_env, localstack_running
from bench.report import Section, Table, Target

STACK = "media-ingest-bench-own"
OBJECTS = 1000


def run(ctx: Context) -> list[Section]:
    section = Section(
        name="own_buckets",
        title="13. Own buckets on LocalStack at the issue's counts (attach 200, reconcile 1,000)",
        measured="tests/integration/test_own_buckets.py (attach and reconcile) on stack "
        f"{STACK}, MEDIA_INGEST_RECONCILE_OBJECTS={OBJECTS}",
        baseline="the report before --apply: what was lost; after: nothing (reconcile again)",
    )
    if not ctx.e2e:
        section.skipped = "skipped: not requested (python -m bench --e2e or --only own_buckets)"
        return [section]
    if not localstack_running():
        section.skipped = NOT_RUNNING
        return [section]
    figures = ctx.cache / "own-buckets-figures.json"
    figures.unlink(missing_ok=True)
    env = {
        **os.environ,
        **local_env(),
        "MEDIA_INGEST_STACK": STACK,
        "MEDIA_INGEST_RECONCILE_OBJECTS": str(OBJECTS),
        "MEDIA_INGEST_FIGURES": str(figures),
    }
    log(f"own buckets: pytest on {STACK} (deploys it; about 15 minutes)")
    started = time.monotonic()
    done = subprocess.run(
        [
            str(ROOT / ".venv/bin/pytest"),
            "-m",
            "integration",
            "tests/integration/test_own_buckets.py",
            "-k",
            "attach_keeps or reconcile_finds",
            "-p",
            "no:cacheprovider",
            "-q",
            "--durations=0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.monotonic() - started
    output = ctx.cache / "own-buckets-pytest.log"
    output.write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not figures.exists():
        failed = [line for line in done.stdout.splitlines() if line.startswith("E ")][:8]
        section.error = f"the scenarios failed (exit {done.returncode}; {output}): " + " | ".join(
            failed
        )
        return [section]
    data = json.loads(figures.read_text())
    report, applied = data["report"], data["applied"]
    listed = report["listed"]
    table = Table("reconcile of 1,000 objects", ["", "count"])
    for name, value in (
        ("objects", data["objects"]),
        ("events lost on purpose (created)", data["lost"]),
        ("deleted while the event source mapping was off", data["deleted"]),
        ("reported lost events", report["lost"]),
        ("reported missed deletions", report["deleted"]),
        ("reported missed overwrites", report["overwritten"]),
        ("events enqueued by --apply", applied["enqueued"]),
        ("outcomes recorded for these keys", data["ledger"]),
    ):
        table.add(name, value)
    section.tables.append(table)
    calls = Table("AWS calls of the report run, per 1,000 objects listed", ["operation", "calls"])
    for operation, count in sorted(data["calls"].items()):
        calls.add(operation, f"{count * 1000 / listed:.1f}")
    calls.add("total", f"{sum(data['calls'].values()) * 1000 / listed:.1f}")
    section.tables.append(calls)
    section.targets.append(
        Target(
            goal="every lost event and deletion found, one live outcome each after --apply",
            figure=f"found {report['lost']}/{data['lost']} lost, "
            f"{report['deleted']}/{data['deleted']} deleted; outcomes {data['outcomes']}",
            met=(report["lost"], report["deleted"]) == (data["lost"], data["deleted"]),
        )
    )
    section.notes.append(
        f"times: {data['seconds']['ingest']:.0f} s to ingest the first "
        f"{data['objects'] - data['lost']} through EventBridge, "
        f"{data['seconds']['apply_until_settled']:.0f} s from --apply to every outcome; "
        f"both scenarios with the deploy {seconds:.0f} s"
    )
    section.data = data
    return [section]
