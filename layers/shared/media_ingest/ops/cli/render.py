"""Text renderers of the operator commands: tables and summaries from the ops models.

Pure: models in, text out; the commands choose between these and `--json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from media_ingest.ops.attach import CheckStatus, Report
from media_ingest.ops.backfill import BackfillState
from media_ingest.ops.duplicates import ContentGroup
from media_ingest.ops.evaluate import IOU_GOOD, AnnotatorSummary
from media_ingest.ops.export import ExportFormat, ExportSummary
from media_ingest.ops.redrive import RedriveCounts
from media_ingest.ops.status import PartRow, Status
from media_ingest.reconcile.runner import ReconcileState
from media_ingest.records import CatalogItem, FailureRecord

ASYNC_NOTE = "outcomes arrive asynchronously: media-ingest status --watch"
# The `vfr` column of `items` (and its --vfr filter): variable frame rate, yes or no, or
# unknown (the container index did not say; items probed before it was read say so too).
VFR_STATES = ("yes", "no", "unknown")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dump(models: BaseModel | Sequence[BaseModel]) -> str:
    """The --json form of one model or a list of them."""
    if isinstance(models, BaseModel):
        return models.model_dump_json(indent=2)
    return json.dumps([m.model_dump(mode="json") for m in models], indent=2, ensure_ascii=False)


def describe(item: CatalogItem) -> str:
    """A short human summary of an item's probe metadata."""
    m = item.media
    if m.video:
        v = m.video
        dur = f" {v.duration:.2f}s" if v.duration is not None else ""
        turn = f" rot{v.rotation}" if v.rotation else ""
        timing = v.timing
        frames = f" {timing.frame_count}f" if timing and timing.frame_count is not None else ""
        # A variable rate has no fps: the average is shown as one, with the duration range.
        if v.variable_rate and timing and timing.min_frame_duration is not None:
            assert timing.max_frame_duration is not None
            span = f"{timing.min_frame_duration * 1000:g}-{timing.max_frame_duration * 1000:g}ms"
            rate = f"avg {v.fps:g}fps ({span})"
        else:
            rate = f"{v.fps:g}fps"
        return f"{v.width}x{v.height} {rate}{dur}{frames} {v.codec}{turn}"
    if m.audio:
        a = m.audio
        dur = f" {a.duration:.2f}s" if a.duration is not None else ""
        return f"{a.sample_rate / 1000:g}kHz {a.channels}ch{dur} {a.codec}"
    if m.image:
        return f"{m.image.width}x{m.image.height} {m.image.format}"
    if m.dicom:
        d = m.dicom
        return f"series {d.series_instance_uid} #{d.instance_number} {d.modality or ''}".rstrip()
    return m.mime_type


def status(state: Status) -> str:
    total = sum(state.outcomes.values())
    lines = [
        f"events received: {state.events}  "
        f"(recorded outcomes: {total}, in progress: {state.in_progress})",
        "",
        table(["outcome", "count"], list(state.outcomes.items())),
        "",
        table(
            ["queue", "waiting", "in flight"],
            [(q.name, q.visible, q.in_flight) for q in state.queues],
        ),
        "",
        "all events accounted for" if state.accounted else "ingestion still running",
    ]
    return "\n".join(lines)


def vfr(item: CatalogItem) -> str | None:
    """A video's `vfr` state (VFR_STATES); None for anything else."""
    video = item.media.video
    if video is None:
        return None
    variable = video.variable_rate
    return "unknown" if variable is None else ("yes" if variable else "no")


def items(found: Sequence[CatalogItem]) -> str:
    rows = [(i.dataset, i.kind.value, i.key, i.size, vfr(i) or "", describe(i)) for i in found]
    headers = ["dataset", "kind", "key", "bytes", "vfr", "metadata"]
    return table(headers, rows) + f"\n{len(found)} items"


def failures(records: Sequence[FailureRecord]) -> str:
    rows = [
        (
            f.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
            f.error_code.value,
            f.stage.value,
            f.key,
            f.message[:90],
        )
        for f in records
    ]
    headers = ["failed at (UTC)", "code", "stage", "key", "reason"]
    return table(headers, rows) + f"\n{len(records)} failures"


def manifest_parts(parts: Sequence[PartRow], bucket: str) -> str:
    rows = [
        (
            p.dataset,
            p.number,
            p.entries,
            p.bytes,
            "sealed" if p.sealed else "open",
            f"s3://{bucket}/{p.key}",
        )
        for p in parts
    ]
    return table(["dataset", "part", "entries", "bytes", "state", "location"], rows)


_EXPORTED = {
    ExportFormat.NUCLEUS: "items and scenes",
    ExportFormat.LABEL_STUDIO: "tasks",
    ExportFormat.CVAT: "images",
}


def export_summary(summary: ExportSummary) -> str:
    what = _EXPORTED.get(summary.format, "entries")
    lines = [
        f"export of dataset {summary.dataset} as {summary.format.value}: {summary.folder}",
        f"{len(summary.files)} files written: {', '.join(summary.files)}",
        f"{summary.entries} {what}",
    ]
    if summary.refused:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.refused.items()))
        lines.append(
            f"refused {sum(summary.refused.values())} objects this format cannot carry ({kinds}):"
            f" listed in {summary.folder}/refused.csv"
        )
    if summary.update is not None:
        lines.append(f"update on reference_id collision: {str(summary.update).lower()}")
    lines.extend(f"repaired {note}" for note in summary.notes)
    return "\n".join(lines)


def backfill_summary(state: BackfillState, path: Path) -> str:
    c = state.counts
    rows = [
        ("listed", c.listed),
        ("enqueued", c.enqueued),
        ("skipped by ignore rules", c.ignored),
        ("already registered", c.registered),
    ]
    verdict = "complete" if state.done else f"stopped early; rerun to continue (state: {path})"
    return "\n".join(
        [f"backfill of {state.source}: {verdict}", table(["objects", "count"], rows), ASYNC_NOTE]
    )


def redrive_counts(counts: RedriveCounts) -> str:
    rows = [
        ("dead-lettered messages moved to the ingest queue", counts.moved),
        ("poison messages left in the dead-letter queue", counts.poison_left),
        ("failed files sent for another attempt", counts.redriven),
        ("failed files no longer in the bucket", counts.gone),
        ("sink change batches moved back to the sink queue", counts.sink_moved),
        ("sink failure records left to --sink", counts.sink_records_left),
    ]
    return table(["redrive", "count"], rows) + f"\n{ASYNC_NOTE}"


def reconcile_summary(state: ReconcileState, calls: Mapping[str, int], path: Path) -> str:
    c = state.counts
    verdict = "complete" if state.done else f"stopped early; rerun to continue (state: {path})"
    listed_at = state.listed_at.strftime("%Y-%m-%d %H:%M:%S")
    rows = [
        ("objects listed", c.listed),
        ("with their outcome", c.ok),
        ("skipped by rules (ignored, markers, outside prefixes)", c.ignored),
        ("newer than the grace period", c.recent),
        ("lost events (no outcome for the key)", c.lost),
        ("missed overwrites (the version had no outcome)", c.overwritten),
        ("missed deletions (catalog rows, object gone)", c.deleted),
        ("settled since the snapshot (re-read)", c.settled),
        (
            "events enqueued" + ("" if state.apply else " (report only: --apply to enqueue)"),
            c.enqueued,
        ),
    ]
    lines = [
        f"reconcile of {state.source}: {verdict}",
        f"catalog rows compared: {c.rows}; listing as of {listed_at} UTC, "
        f"grace {state.grace_seconds:g}s",
        table(["", "count"], rows),
    ]
    for finding, keys in state.samples.items():
        lines.append(f"{finding}: " + ", ".join(keys))
    if calls:
        per = ", ".join(f"{n} {name.split('.', 1)[1]}" for name, n in sorted(calls.items()))
        lines.append(f"AWS calls: {per}")
    if state.apply and c.enqueued:
        lines.append(ASYNC_NOTE)
    return "\n".join(lines)


def content_groups(groups: Sequence[ContentGroup], dataset: str | None) -> str:
    if not groups:
        scope = f" with a member in dataset {dataset}" if dataset else ""
        return f"no content group{scope}: no two objects hold the same bytes"
    lines = []
    for number, group in enumerate(groups, 1):
        lines.append(
            f"group {number}: {group.identity} ({len(group.members)} objects, "
            f"datasets: {', '.join(group.datasets)})"
        )
        rows = [
            (
                m.dataset,
                m.object_url,
                "original" if m.original else ("registered" if m.registered else "skipped"),
            )
            for m in group.members
        ]
        lines += ["  " + line for line in table(["dataset", "object", "status"], rows).splitlines()]
    copies = sum(len(g.members) - 1 for g in groups)
    lines.append(f"{len(groups)} content groups, {copies} copies")
    return "\n".join(lines)


def attach_report(report: Report) -> str:
    lines = [f"s3://{report.bucket}: {report.action}"]
    if report.kept:
        lines.append(f"kept unchanged ({len(report.kept)}):")
        lines += [f"  {line}" for line in report.kept]
    else:
        lines.append("no queue, topic or Lambda configuration of its own")
    if report.checks:
        marks = {
            CheckStatus.OK: "ok",
            CheckStatus.MISSING: "MISSING",
            CheckStatus.UNKNOWN: "unknown",
        }
        lines.append("checks:")
        for check in report.checks:
            lines.append(f"  [{marks[check.status]}] {check.name}: {check.detail}")
            if check.fix and check.status is not CheckStatus.OK:
                lines += [f"      {part}" for part in check.fix.splitlines()]
    lines += report.notes
    return "\n".join(lines)


def annotator_summaries(summaries: Sequence[AnnotatorSummary], scored: int, out: Path) -> str:
    rows = [
        (
            s.annotator,
            s.boxes,
            _fixed(s.mean_iou),
            _percent(s.good_share),
            _percent(s.class_accuracy),
            s.benchmark_boxes,
            s.missed,
        )
        for s in summaries
    ]
    headers = [
        "annotator",
        "boxes",
        "mean IoU",
        f"IoU>={IOU_GOOD:g}",
        "class accuracy",
        "benchmark boxes",
        "missed",
    ]
    return table(headers, rows) + f"\n{scored} candidate boxes scored: {out}"


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
