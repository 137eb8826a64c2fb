"""`media-ingest`: the operator's view of a deployed stack (on AWS, or LocalStack), and the
local commands that need no stack (annotation QA)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError
from pydantic import BaseModel

from media_ingest import __version__
from media_ingest.adapters.catalog import DynamoCatalog
from media_ingest.adapters.clients import client as default_client
from media_ingest.adapters.groups import DynamoGroupStore
from media_ingest.adapters.manifests import S3PartStore
from media_ingest.adapters.objects import S3Objects
from media_ingest.annotations import read_tree
from media_ingest.errors import AnnotationError
from media_ingest.ops import backfill, evaluate, failure_log
from media_ingest.ops import status as report
from media_ingest.ops.adapters.listing import InventoryLister, S3Lister
from media_ingest.ops.adapters.queues import SqsDeadLetters, SqsIngestQueue
from media_ingest.ops.backfill import Source
from media_ingest.ops.export import ExportFormat, ExportSummary, export
from media_ingest.ops.progress import ProgressBar
from media_ingest.ops.redrive import Redrive, RedriveCounts
from media_ingest.ops.stack import StackNotFound, StackOutputs, function_settings, stack_outputs
from media_ingest.records import CatalogItem, FailureRecord
from media_ingest.routing import Router

DEFAULT_STACK = os.environ.get("MEDIA_INGEST_STACK", "media-ingest")
STATE_DIR = (
    Path(os.environ.get("MEDIA_INGEST_CACHE", Path.home() / ".cache/media-ingest")) / "backfill"
)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(item: CatalogItem) -> str:
    """A short human summary of an item's probe metadata."""
    m = item.media
    if m.video:
        v = m.video
        dur = f" {v.duration:.2f}s" if v.duration is not None else ""
        turn = f" rot{v.rotation}" if v.rotation else ""
        return f"{v.width}x{v.height} {v.fps:g}fps{dur} {v.codec}{turn}"
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


def _dump(models: BaseModel | Sequence[BaseModel]) -> str:
    if isinstance(models, BaseModel):
        return models.model_dump_json(indent=2)
    return json.dumps([m.model_dump(mode="json") for m in models], indent=2, ensure_ascii=False)


def cmd_status(outputs: StackOutputs, args: argparse.Namespace) -> str:
    if args.watch:
        return watch(outputs, args.interval, args.until_done)
    return render_status(report.status(outputs), args.json)


def watch(
    outputs: StackOutputs, interval: float, until_done: bool,
    sleep: Callable[[float], None] = time.sleep, out: TextIO | None = None,
) -> str:  # fmt: skip
    """Redraw the status every `interval` seconds until Ctrl-C (or until all is accounted)."""
    stream = out or sys.stdout
    clear = "\x1b[H\x1b[2J" if stream.isatty() else ""
    try:
        while True:
            state = report.status(outputs)
            stamp = datetime.now().strftime("%H:%M:%S")
            stream.write(f"{clear}{stamp}  (every {interval:g}s, Ctrl-C to stop)\n")
            stream.write(render_status(state, False) + "\n\n")
            stream.flush()
            if until_done and state.accounted:
                return "all events accounted for"
            sleep(interval)
    except KeyboardInterrupt:
        return ""


def render_status(state: report.Status, as_json: bool) -> str:
    if as_json:
        return json.dumps(state.model_dump() | {"accounted": state.accounted}, indent=2)
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


def cmd_items(outputs: StackOutputs, args: argparse.Namespace) -> str:
    items = [
        i
        for i in DynamoCatalog(outputs.RegistryTableName).items()
        if args.dataset in (None, i.dataset)
    ]
    if args.json:
        return _dump(items)
    rows = [(i.dataset, i.kind.value, i.key, i.size, describe(i)) for i in items]
    return table(["dataset", "kind", "key", "bytes", "metadata"], rows) + f"\n{len(items)} items"


def cmd_failures(outputs: StackOutputs, args: argparse.Namespace) -> str:
    catalog = DynamoCatalog(outputs.RegistryTableName)
    since = failure_log.parse_since(args.since) if args.since else None
    codes = failure_log.parse_codes(args.code)
    if args.all:
        records = [
            f
            for f in catalog.failures()
            if (since is None or f.failed_at >= since) and (not codes or f.error_code in codes)
        ]
    else:
        records = failure_log.outstanding(catalog.failures(), catalog.items(), since, codes)
    if args.csv:
        text = failure_log.to_csv(records)
        if args.out:
            Path(args.out).write_text(text)
            return f"{len(records)} failures written to {args.out}"
        return text.rstrip("\n")
    if args.json:
        return _dump(records)
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
    return (
        table(["failed at (UTC)", "code", "stage", "key", "reason"], rows)
        + f"\n{len(records)} failures"
    )


def cmd_manifests(outputs: StackOutputs, args: argparse.Namespace) -> str:
    parts = report.manifest_parts(outputs)
    if args.json:
        return _dump(parts)
    rows = [
        (
            p.dataset,
            p.number,
            p.entries,
            p.bytes,
            "sealed" if p.sealed else "open",
            f"s3://{outputs.ManifestBucketName}/{p.key}",
        )
        for p in parts
    ]
    return table(["dataset", "part", "entries", "bytes", "state", "location"], rows)


def cmd_export(outputs: StackOutputs, args: argparse.Namespace) -> str:
    fmt = ExportFormat(args.format)
    bar = ProgressBar(total=None)
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done = count
        bar.show(count, "parts" if fmt is ExportFormat.ENCORD_JSON else "items")

    try:
        summary = export(
            fmt, args.dataset, Path(args.out), DynamoCatalog(outputs.RegistryTableName),
            S3PartStore(outputs.ManifestBucketName, outputs.ManifestPrefix),
            update=args.update, progress=tick,
            groups=DynamoGroupStore(outputs.GroupTableName) if outputs.GroupTableName else None,
        )  # fmt: skip
    finally:
        bar.close(done, "parts" if fmt is ExportFormat.ENCORD_JSON else "items")
    return summary.model_dump_json(indent=2) if args.json else _export_summary(summary)


def _export_summary(summary: ExportSummary) -> str:
    what = "entries" if summary.format is not ExportFormat.NUCLEUS else "items and scenes"
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
    return "\n".join(lines)


def cmd_backfill(outputs: StackOutputs, args: argparse.Namespace) -> str:
    settings = function_settings(outputs)
    source = Source.parse(args.source)
    inventory = Source.parse(args.inventory) if args.inventory else None
    lister: backfill.Lister = InventoryLister(source, inventory) if inventory else S3Lister(source)
    path = Path(args.state) if args.state else _state_path(args.stack, args.source, args.inventory)
    state = None if args.restart else backfill.BackfillState.load(path)
    if state is None or state.done:
        state = backfill.BackfillState(source=str(source), inventory=args.inventory)
    else:
        print(f"resuming {source} from {path} ({state.counts.listed} objects already listed)",
              file=sys.stderr)  # fmt: skip
    if state.total is None and not args.no_count:
        state.total = lister.count()
    bar = ProgressBar(total=state.total)
    run = backfill.Backfill(
        lister=lister,
        catalog=DynamoCatalog(outputs.RegistryTableName),
        queue=SqsIngestQueue(outputs.IngestQueueUrl),
        router=Router.of(settings),
        region=settings.region,
        url_style=settings.object_url_style,
        rate=backfill.RateLimit(args.rate),
        state_path=path,
        progress=_BarProgress(bar),
    )
    try:
        run.run(state, limit=args.limit)
    except KeyboardInterrupt:
        bar.close(state.counts.listed, "interrupted")
        print(f"interrupted: run the same command again to resume (state: {path})",
              file=sys.stderr)  # fmt: skip
        raise
    bar.close(state.counts.listed)
    return _backfill_summary(state, path, args.json)


class _BarProgress:
    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar

    def update(self, state: backfill.BackfillState) -> None:
        self.bar.show(state.counts.listed, f"enqueued {state.counts.enqueued}")


def _state_path(stack: str, source: str, inventory: str | None) -> Path:
    digest = hashlib.sha256(f"{source}\n{inventory or ''}".encode()).hexdigest()[:16]
    return STATE_DIR / stack / f"backfill-{digest}.json"


def _backfill_summary(state: backfill.BackfillState, path: Path, as_json: bool) -> str:
    if as_json:
        return state.model_dump_json(indent=2)
    c = state.counts
    rows = [
        ("listed", c.listed),
        ("enqueued", c.enqueued),
        ("skipped by ignore rules", c.ignored),
        ("already registered", c.registered),
    ]
    verdict = "complete" if state.done else f"stopped early; rerun to continue (state: {path})"
    return "\n".join(
        [
            f"backfill of {state.source}: {verdict}",
            table(["objects", "count"], rows),
            "outcomes arrive asynchronously: media-ingest status --watch",
        ]
    )


def cmd_redrive(outputs: StackOutputs, args: argparse.Namespace) -> str:
    if not (args.dead_letters or args.failures):
        raise ValueError("say what to redrive: --dead-letters, --failures, or both")
    counts = RedriveCounts()
    bar = ProgressBar(total=None)
    region = default_client("sqs").meta.region_name
    run = Redrive(
        ingest=SqsIngestQueue(outputs.IngestQueueUrl),
        region=region,
        progress=lambda c: bar.show(c.moved + c.redriven),
    )
    chosen: list[FailureRecord] = []
    if args.failures:
        catalog = DynamoCatalog(outputs.RegistryTableName)
        since = failure_log.parse_since(args.since) if args.since else None
        codes = failure_log.parse_codes(args.code)
        chosen = failure_log.outstanding(catalog.failures(), catalog.items(), since, codes)
        bar.total = len(chosen)
    if args.dry_run:
        return f"would redrive {len(chosen)} failure records" + (
            " and every S3 event in the dead-letter queue" if args.dead_letters else ""
        )
    try:
        if args.dead_letters:
            run.dead_letters(SqsDeadLetters(outputs.DeadLetterQueueUrl), counts)
        if chosen:
            run.failures(chosen, S3Objects(), counts)
    finally:
        bar.close(counts.moved + counts.redriven)
    if args.json:
        return counts.model_dump_json(indent=2)
    rows = [
        ("dead-lettered messages moved to the ingest queue", counts.moved),
        ("poison messages left in the dead-letter queue", counts.poison_left),
        ("failed files sent for another attempt", counts.redriven),
        ("failed files no longer in the bucket", counts.gone),
    ]
    return table(["redrive", "count"], rows) + (
        "\noutcomes arrive asynchronously: media-ingest status --watch"
    )


def cmd_evaluate(args: argparse.Namespace) -> str:
    benchmark, candidate = Path(args.benchmark), Path(args.candidate)
    trees = {"benchmark": read_tree(benchmark), "candidate": read_tree(candidate)}
    for name, tree in trees.items():
        if not tree.localizations:
            raise ValueError(
                f"no <media>/localizations/<type>.csv under the {name} {getattr(args, name)}"
            )
    # Media directly under --candidate belong to an annotator named after the directory.
    result = evaluate.evaluate(
        trees["benchmark"], trees["candidate"], root_name=candidate.resolve().name
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "iou_results.csv").write_text(evaluate.to_csv(result.matches))
    for media in result.unknown_media:
        print(f"warning: the benchmark has no annotations for media {media!r}: its boxes score 0",
              file=sys.stderr)  # fmt: skip
    if args.json:
        return json.dumps([s.model_dump() for s in result.summaries], indent=2)
    rows = [
        (s.annotator, s.boxes, _fixed(s.mean_iou), _percent(s.good_share),
         _percent(s.class_accuracy), s.benchmark_boxes, s.missed)
        for s in result.summaries
    ]  # fmt: skip
    headers = ["annotator", "boxes", "mean IoU", f"IoU>={evaluate.IOU_GOOD:g}",
               "class accuracy", "benchmark boxes", "missed"]  # fmt: skip
    return table(headers, rows) + (
        f"\n{len(result.matches)} candidate boxes scored: {out / 'iou_results.csv'}"
    )


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


COMMANDS: dict[str, tuple[Any, str]] = {
    "status": (cmd_status, "events received, the count of each outcome, queue depths"),
    "items": (cmd_items, "registered items with their probe metadata"),
    "failures": (
        cmd_failures,
        "failure records (read from the catalog; the queue is not consumed)",
    ),
    "manifests": (cmd_manifests, "manifest parts per dataset: entries, size, sealed or open"),
    "export": (
        cmd_export,
        "write one dataset as files a labelling platform imports (Encord JSON or CSV, Nucleus)",
    ),
    "redrive": (
        cmd_redrive,
        "after a fix: dead-lettered messages and failed files back to ingestion (idempotent)",
    ),
    "backfill": (
        cmd_backfill,
        "enqueue objects already in a bucket on the ingest path (resumable, rate-bounded)",
    ),
}
# Commands that read local files only: no stack lookup, no AWS credentials.
LOCAL_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], str], str]] = {
    "evaluate": (
        cmd_evaluate,
        "annotation QA (local files, no AWS): each candidate box's best IoU against the "
        "benchmark boxes of its media and frame, and class score; writes iou_results.csv "
        "and prints a summary per annotator",
    ),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="media-ingest",
        description="Inspect a deployed media-ingest stack. "
        "Set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:4566) to use LocalStack. "
        "`evaluate` works on local files and needs neither a stack nor credentials.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument(
        "--stack",
        default=DEFAULT_STACK,
        help="CloudFormation stack name (default: $MEDIA_INGEST_STACK or media-ingest)",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {name: text for name, (_, text) in (*COMMANDS.items(), *LOCAL_COMMANDS.items())}
    for name, help_text in helps.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--json", action="store_true", help="machine-readable JSON output")
        if name == "items":
            command.add_argument("--dataset", help="only items of this dataset")
        if name in OPTIONS:
            OPTIONS[name](command)
    return top


def _status_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--watch", action="store_true", help="redraw live until Ctrl-C")
    command.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    command.add_argument(
        "--until-done", action="store_true", help="with --watch: stop once all is accounted for"
    )


def _failures_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--csv", action="store_true",
        help="CSV, one row per failed file: object_url, key, dataset, stage, error_code, "
        "message, failed_at",
    )  # fmt: skip
    command.add_argument("--out", help="with --csv: write to this file instead of stdout")
    command.add_argument("--since", help="only failures since: 30m, 2h, 7d or an ISO time (UTC)")
    command.add_argument(
        "--code", action="append", default=[],
        help="only these error codes (repeat or comma-separate), e.g. CORRUPT_MEDIA",
    )  # fmt: skip
    command.add_argument(
        "--all", action="store_true",
        help="every failure record, including earlier failures of a file and files "
        "registered since (default: the latest failure of each file still failed)",
    )  # fmt: skip


def _backfill_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("source", metavar="s3://BUCKET/PREFIX", help="objects to enqueue")
    command.add_argument(
        "--inventory", metavar="s3://BUCKET/KEY",
        help="an S3 Inventory manifest.json (CSV) listing the bucket, instead of listing it",
    )  # fmt: skip
    command.add_argument(
        "--rate", type=float, default=100.0, help="messages per second at most (default 100)"
    )
    command.add_argument("--limit", type=int, help="stop after this many objects (resumable)")
    command.add_argument(
        "--state", help=f"resume file (default: under {STATE_DIR}/STACK/, one per source)"
    )
    command.add_argument("--restart", action="store_true", help="ignore a saved position")
    command.add_argument("--no-count", action="store_true", help="skip the counting pass (no ETA)")


def _export_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dataset", required=True, help="the dataset to export")
    command.add_argument(
        "--format", required=True, choices=[f.value for f in ExportFormat],
        help="encord-json: every manifest part as stored, and index.json; encord-csv: "
        "ObjectUrl, Title, Create video rows (videos and image groups only, the rest listed in "
        "refused.csv); nucleus: items.jsonl (images as DatasetItem), scenes.jsonl (videos as "
        "VideoScene) and export.json",
    )  # fmt: skip
    command.add_argument(
        "--out", required=True, metavar="DIR",
        help="folder to write into; the export replaces DIR/FORMAT/ whole",
    )  # fmt: skip
    command.add_argument(
        "--update", action="store_true",
        help="nucleus only: written to export.json for Dataset.append(update=...): on a "
        "reference_id collision, overwrite the stored metadata (default: ignore the item)",
    )  # fmt: skip


def _redrive_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dead-letters", action="store_true",
        help="move every S3-event message of the dead-letter queue back to the ingest queue "
        "(poison messages stay)",
    )  # fmt: skip
    command.add_argument(
        "--failures", action="store_true",
        help="send each file still failed (latest record per file) for another attempt",
    )  # fmt: skip
    command.add_argument("--since", help="with --failures: only failures since (30m, 2h, 7d, ISO)")
    command.add_argument(
        "--code", action="append", default=[], help="with --failures: only these error codes"
    )
    command.add_argument("--dry-run", action="store_true", help="count, send nothing")


def _evaluate_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--benchmark", required=True, metavar="DIR",
        help="the reference annotations: <media>/localizations/<type>.csv under DIR",
    )  # fmt: skip
    command.add_argument(
        "--candidate", required=True, metavar="DIR",
        help="the annotations to score, in the same layout; per annotator as "
        "DIR/<annotator>/<media>/... unless an annotator, created_by or user column names them",
    )  # fmt: skip
    command.add_argument(
        "--out", default=".", metavar="DIR",
        help="where iou_results.csv is written (default: the current directory)",
    )  # fmt: skip


OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "status": _status_options,
    "failures": _failures_options,
    "backfill": _backfill_options,
    "redrive": _redrive_options,
    "evaluate": _evaluate_options,
    "export": _export_options,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in LOCAL_COMMANDS:
        return _run(args, lambda: LOCAL_COMMANDS[args.command][0](args))
    try:
        outputs = stack_outputs(args.stack)
    except StackNotFound as exc:
        print(f"media-ingest: {exc}", file=sys.stderr)
        return 2
    except (NoRegionError, NoCredentialsError) as exc:
        print(
            f"media-ingest: {exc} Set AWS_REGION and credentials for AWS, or "
            "`source infra/localenv.sh` for the local LocalStack.",
            file=sys.stderr,
        )
        return 2
    return _run(args, lambda: COMMANDS[args.command][0](outputs, args))


def _run(args: argparse.Namespace, command: Callable[[], str]) -> int:
    try:
        text = command()
    except KeyboardInterrupt:
        return 130
    except (ValueError, LookupError) as exc:  # bad option values, a missing output
        print(f"media-ingest {args.command}: {exc}", file=sys.stderr)
        return 2
    except AnnotationError as exc:  # an invalid CSV: the message names file, line, column
        print(f"media-ingest {args.command}: {exc.code.value}: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"media-ingest {args.command}: AWS refused: {exc}", file=sys.stderr)
        return 1
    if text:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
