"""The operator commands: each wires the ops adapters it needs, runs the ops logic, and
returns its text (rendered by render.py, or JSON with --json).

Stack commands take the stack's outputs and the parsed arguments; local commands
(`evaluate`) only the arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from media_ingest.adapters import clients
from media_ingest.adapters.catalog import CatalogRows
from media_ingest.adapters.listing import InventoryLister, S3Lister
from media_ingest.adapters.objects import S3Objects
from media_ingest.adapters.queues import SqsIngestQueue
from media_ingest.annotations import read_tree
from media_ingest.groups.rules import GroupRoutes
from media_ingest.listing import RateLimit, Source
from media_ingest.ops import attach, backfill, duplicates, evaluate, failure_log, status
from media_ingest.ops.adapters.attachments import DynamoAttachments
from media_ingest.ops.adapters.buckets import BucketConfig, account_of, session
from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.ops.adapters.groups import GroupReader
from media_ingest.ops.adapters.manifests import ManifestFiles
from media_ingest.ops.adapters.queues import SqsDeadLetters, SqsSinkQueue
from media_ingest.ops.adapters.stack import CloudFormationStacks
from media_ingest.ops.cli import render
from media_ingest.ops.export import ExportFormat, export
from media_ingest.ops.progress import ProgressBar
from media_ingest.ops.redrive import Redrive, RedriveCounts
from media_ingest.ops.stack import StackOutputs, function_settings, stack_parameters
from media_ingest.reconcile.runner import FileStore, Reconciler, ReconcileState
from media_ingest.reconcile.snapshot import Snapshot
from media_ingest.records import CatalogItem, FailureRecord, OutcomeKind
from media_ingest.routing import Router
from media_ingest.sources import parse_accounts, parse_sources

STATE_DIR = (
    Path(os.environ.get("MEDIA_INGEST_CACHE", Path.home() / ".cache/media-ingest")) / "backfill"
)

type StackCommand = Callable[[StackOutputs, argparse.Namespace], str]
type LocalCommand = Callable[[argparse.Namespace], str]


def cmd_status(outputs: StackOutputs, args: argparse.Namespace) -> str:
    if args.watch:
        return watch(outputs, args.interval, args.until_done)
    state = status.status(outputs)
    if args.json:
        return json.dumps(state.model_dump() | {"accounted": state.accounted}, indent=2)
    return render.status(state)


def watch(
    outputs: StackOutputs,
    interval: float,
    until_done: bool,
    sleep: Callable[[float], None] = time.sleep,
    out: TextIO | None = None,
) -> str:
    """Redraw the status every `interval` seconds until Ctrl-C (or until all is accounted)."""
    stream = out or sys.stdout
    clear = "\x1b[H\x1b[2J" if stream.isatty() else ""
    try:
        while True:
            state = status.status(outputs)
            stamp = datetime.now().strftime("%H:%M:%S")
            stream.write(f"{clear}{stamp}  (every {interval:g}s, Ctrl-C to stop)\n")
            stream.write(render.status(state) + "\n\n")
            stream.flush()
            if until_done and state.accounted:
                return "all events accounted for"
            sleep(interval)
    except KeyboardInterrupt:
        return ""


def cmd_items(outputs: StackOutputs, args: argparse.Namespace) -> str:
    found = [
        i
        for i in CatalogReader(outputs.RegistryTableName).items()
        if args.dataset in (None, i.dataset) and args.vfr in (None, render.vfr(i))
    ]
    return render.dump(found) if args.json else render.items(found)


def _failed(outputs: StackOutputs, args: argparse.Namespace) -> list[FailureRecord]:
    """The failure records `--since`, `--code` and `--all` select (failures, redrive)."""
    catalog = CatalogReader(outputs.RegistryTableName)
    return failure_log.select(
        catalog.failures(),
        catalog.items(),
        since=args.since,
        codes=args.code,
        every=getattr(args, "all", False),
        removed=catalog.removals(),
    )


def cmd_duplicates(outputs: StackOutputs, args: argparse.Namespace) -> str:
    catalog = CatalogReader(outputs.RegistryTableName)
    found = duplicates.content_groups(
        catalog.items(), catalog.marks(OutcomeKind.DUPLICATE), dataset=args.dataset
    )
    return render.dump(found) if args.json else render.content_groups(found, args.dataset)


def cmd_failures(outputs: StackOutputs, args: argparse.Namespace) -> str:
    records = _failed(outputs, args)
    if args.csv:
        text = failure_log.to_csv(records)
        if args.out:
            Path(args.out).write_text(text)
            return f"{len(records)} failures written to {args.out}"
        return text.rstrip("\n")
    return render.dump(records) if args.json else render.failures(records)


def cmd_manifests(outputs: StackOutputs, args: argparse.Namespace) -> str:
    parts = status.manifest_parts(outputs)
    return (
        render.dump(parts)
        if args.json
        else render.manifest_parts(parts, outputs.ManifestBucketName)
    )


def cmd_export(outputs: StackOutputs, args: argparse.Namespace) -> str:
    fmt = ExportFormat(args.format)
    unit = "parts" if fmt is ExportFormat.ENCORD_JSON else "items"
    bar = ProgressBar(total=None)
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done = count
        bar.show(count, unit)

    try:
        summary = export(
            fmt,
            args.dataset,
            Path(args.out),
            CatalogReader(outputs.RegistryTableName),
            ManifestFiles(outputs.ManifestBucketName, outputs.ManifestPrefix),
            update=args.update,
            progress=tick,
            groups=GroupReader(outputs.GroupTableName) if outputs.GroupTableName else None,
        )
    finally:
        bar.close(done, unit)
    return summary.model_dump_json(indent=2) if args.json else render.export_summary(summary)


def cmd_backfill(outputs: StackOutputs, args: argparse.Namespace) -> str:
    settings = function_settings(outputs)
    source = Source.parse(args.source)
    inventory = Source.parse(args.inventory) if args.inventory else None
    lister: backfill.Lister = InventoryLister(source, inventory) if inventory else S3Lister(source)
    if not args.no_read_check:
        # Before anything is enqueued: an unreadable source would be one failure per object.
        extra = CloudFormationStacks().parameters(args.stack).get("ExtraSourceBucketArns", "")
        backfill.check_readable(
            source,
            {outputs.DropBucketName} | backfill.bucket_names(extra),
            S3Lister(source).first_encryption(),
        )
    path = Path(args.state) if args.state else _state_path(args.stack, args.source, args.inventory)
    state = None if args.restart else backfill.BackfillState.load(path)
    if state is None or state.done:
        state = backfill.BackfillState(source=str(source), inventory=args.inventory)
    else:
        listed = state.counts.listed
        print(f"resuming {source} from {path} ({listed} objects already listed)", file=sys.stderr)
    if state.total is None and not args.no_count:
        state.total = lister.count()
    bar = ProgressBar(total=state.total)
    run = backfill.Backfill(
        lister=lister,
        catalog=CatalogReader(outputs.RegistryTableName),
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
        print(f"interrupted: run the same command again to resume (state: {path})", file=sys.stderr)
        raise
    bar.close(state.counts.listed)
    return state.model_dump_json(indent=2) if args.json else render.backfill_summary(state, path)


class _BarProgress:
    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar

    def update(self, state: backfill.BackfillState) -> None:
        self.bar.show(state.counts.listed, f"enqueued {state.counts.enqueued}")


def _state_path(stack: str, source: str, inventory: str | None, command: str = "backfill") -> Path:
    digest = hashlib.sha256(f"{source}\n{inventory or ''}".encode()).hexdigest()[:16]
    return STATE_DIR / stack / f"{command}-{digest}.json"


def cmd_reconcile(outputs: StackOutputs, args: argparse.Namespace) -> str:
    settings = function_settings(outputs)
    source = Source.parse(args.source)
    inventory = Source.parse(args.inventory) if args.inventory else None
    lister = InventoryLister(source, inventory) if inventory else S3Lister(source)
    grace = failure_log.parse_duration(args.grace)
    if grace is None:
        raise ValueError(f"--grace: expected e.g. 90s, 15m, 2h, not {args.grace!r}")
    mode = "reconcile-apply" if args.apply else "reconcile"
    path = (
        Path(args.state)
        if args.state
        else _state_path(args.stack, args.source, args.inventory, mode)
    )
    store = FileStore(path)
    snapshot = Snapshot(path.with_suffix(".db"))
    before = clients.calls.snapshot()
    state = None if args.restart else store.load()
    if state is None or state.done:
        snapshot.clear()
        listed_at = getattr(lister, "created_at", None) or datetime.now(UTC)
        state = ReconcileState(
            source=str(source),
            inventory=args.inventory,
            apply=args.apply,
            listed_at=listed_at,
            grace_seconds=grace.total_seconds(),
        )
        if not args.no_count:
            state.total = lister.count()
    else:
        print(
            f"resuming {source} from {path} ({state.phase}, {state.counts.listed} listed)",
            file=sys.stderr,
        )
    bar = ProgressBar(total=state.total)
    run = Reconciler(
        catalog=CatalogRows(outputs.RegistryTableName),
        lister=lister,
        objects=S3Objects(),
        queue=SqsIngestQueue(outputs.IngestQueueUrl),
        router=Router.of(settings),
        groups=GroupRoutes(settings.group_routes, settings.group_marker),
        region=settings.region,
        url_style=settings.object_url_style,
        snapshot=snapshot,
        store=store,
        rate=RateLimit(args.rate),
        progress=lambda st: bar.show(st.counts.listed, _phase_note(st)),
    )
    try:
        run.run(state)
    except KeyboardInterrupt:
        bar.close(state.counts.listed, "interrupted")
        print(f"interrupted: run the same command again to resume (state: {path})", file=sys.stderr)
        raise
    finally:
        snapshot.close()
    bar.close(state.counts.listed, _phase_note(state))
    spent = clients.calls.snapshot() - before
    if args.json:
        return json.dumps(
            state.model_dump(mode="json") | {"found": state.counts.found, "calls": dict(spent)},
            indent=2,
        )
    return render.reconcile_summary(state, spent, path)


def _phase_note(state: ReconcileState) -> str:
    if state.phase == "snapshot":
        return f"catalog rows {state.counts.rows}"
    found = state.counts.lost + state.counts.overwritten + state.counts.deleted
    return f"{state.phase}: found {found}"


def cmd_redrive(outputs: StackOutputs, args: argparse.Namespace) -> str:
    if not (args.dead_letters or args.failures or args.sink):
        raise ValueError("say what to redrive: --dead-letters, --failures, --sink, or several")
    if args.sink and not (outputs.SinkQueueUrl and outputs.SinkDeadLetterQueueUrl):
        raise ValueError("--sink: this stack has no Label Studio sink (LabelStudioSecretArn)")
    counts = RedriveCounts()
    bar = ProgressBar(total=None)
    ingest = SqsIngestQueue(outputs.IngestQueueUrl)
    run = Redrive(
        ingest=ingest,
        region=ingest.region,
        progress=lambda c: bar.show(c.moved + c.redriven),
    )
    chosen = _failed(outputs, args) if args.failures else []
    bar.total = len(chosen) or None
    if args.dry_run:
        return (
            f"would redrive {len(chosen)} failure records"
            + (" and every S3 event in the dead-letter queue" if args.dead_letters else "")
            + (" and every change batch in the sink's dead-letter queue" if args.sink else "")
        )
    try:
        if args.dead_letters:
            run.dead_letters(SqsDeadLetters(outputs.DeadLetterQueueUrl), counts)
        if args.sink and outputs.SinkQueueUrl and outputs.SinkDeadLetterQueueUrl:
            run.sink_dead_letters(
                SqsDeadLetters(outputs.SinkDeadLetterQueueUrl),
                SqsSinkQueue(outputs.SinkQueueUrl),
                counts,
            )
        if chosen:
            run.failures(chosen, S3Objects(), counts)
    finally:
        bar.close(counts.moved + counts.redriven + counts.sink_moved)
    return counts.model_dump_json(indent=2) if args.json else render.redrive_counts(counts)


def _attach_stack(outputs: StackOutputs, name: str) -> attach.Stack:
    """The stack as attach sees it: its account, role, sources, keys, source accounts."""
    if not outputs.IngestFunctionRoleArn:
        raise LookupError("the stack has no IngestFunctionRoleArn output: redeploy it first")
    parameters = stack_parameters(name)
    return attach.Stack(
        name=name,
        account=outputs.IngestFunctionRoleArn.split(":")[4],
        region=str(session(None).region_name),
        role_arn=outputs.IngestFunctionRoleArn,
        drop_bucket=outputs.DropBucketName,
        sources=parse_sources(parameters.get("SourceBuckets", "")),
        kms_keys=tuple(k for k in parameters.get("SourceKmsKeyArns", "").split(",") if k),
        source_accounts=parse_accounts(parameters.get("SourceAccounts", "")),
    )


def _bucket(args: argparse.Namespace, stack: attach.Stack) -> tuple[str, str, BucketConfig]:
    """The bucket named on the command line, its account, and its configuration, with the
    credentials of --bucket-profile (a bucket of another account) or the default ones."""
    source = Source.parse(args.bucket)
    if source.prefix:
        raise ValueError(
            "attach and detach take a bucket (s3://bucket); prefixes come from "
            "the stack's SourceBuckets"
        )
    chosen = session(args.bucket_profile)
    owner = account_of(chosen) if args.bucket_profile else stack.account
    config = BucketConfig(
        owner, chosen.client("s3"), kms=chosen.client("kms"), events=chosen.client("events")
    )
    return source.bucket, owner, config


def cmd_attach(outputs: StackOutputs, args: argparse.Namespace) -> str:
    stack = _attach_stack(outputs, args.stack)
    bucket, owner, config = _bucket(args, stack)
    report = attach.attach(
        stack,
        bucket,
        owner,
        notifications=config,
        records=DynamoAttachments(outputs.RegistryTableName),
        inspector=config,
        force=args.force,
    )
    return report.model_dump_json(indent=2) if args.json else render.attach_report(report)


def cmd_detach(outputs: StackOutputs, args: argparse.Namespace) -> str:
    stack = _attach_stack(outputs, args.stack)
    bucket, _, config = _bucket(args, stack)
    report = attach.detach(stack, bucket, config, DynamoAttachments(outputs.RegistryTableName))
    return report.model_dump_json(indent=2) if args.json else render.attach_report(report)


def cmd_evaluate(args: argparse.Namespace) -> str:
    benchmark, candidate = Path(args.benchmark), Path(args.candidate)
    trees = {"benchmark": read_tree(benchmark), "candidate": read_tree(candidate)}
    for name, tree in trees.items():
        if not tree.localizations:
            raise ValueError(
                f"no <media>/localizations/<type>.csv under the {name} {getattr(args, name)}"
            )
    rates = None
    if args.media_info:
        listed = json.loads(Path(args.media_info).read_text())
        rates = evaluate.media_rates(CatalogItem.model_validate(i) for i in listed)
    # Media directly under --candidate belong to an annotator named after the directory.
    result = evaluate.evaluate(
        trees["benchmark"],
        trees["candidate"],
        root_name=candidate.resolve().name,
        rates=rates,
        compare_variable=args.compare_variable_rate,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "iou_results.csv").write_text(evaluate.to_csv(result.matches))
    for media in result.unknown_media:
        warning = f"the benchmark has no annotations for media {media!r}: its boxes score 0"
        print(f"warning: {warning}", file=sys.stderr)
    for basis in result.bases:
        if rates is not None or not basis.compared:
            print(f"{basis.media}: {basis.basis}", file=sys.stderr)
    if args.json:
        return json.dumps([s.model_dump() for s in result.summaries], indent=2)
    return render.annotator_summaries(
        result.summaries, len(result.matches), out / "iou_results.csv"
    )


# name -> (command, the one-line help shown in `media-ingest --help`)
STACK_COMMANDS: dict[str, tuple[StackCommand, str]] = {
    "status": (cmd_status, "events received, the count of each outcome, queue depths"),
    "items": (cmd_items, "registered items with their probe metadata"),
    "duplicates": (
        cmd_duplicates,
        "content groups: the same bytes under several keys or datasets (checksums S3 keeps, "
        "no object read; objects registered with ContentIdentity=on, off by default)",
    ),
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
    "reconcile": (
        cmd_reconcile,
        "compare a bucket with the catalog, reading no object bytes: lost events, missed "
        "overwrites and deletions; --apply enqueues what the live path missed (resumable)",
    ),
    "attach": (
        cmd_attach,
        "turn EventBridge delivery on for a bucket of SourceBuckets, keeping its notification "
        "configuration as it is (checked before and after); checks what reading it needs",
    ),
    "detach": (
        cmd_detach,
        "undo what attach did: EventBridge delivery off only if attach turned it on",
    ),
}
# Commands that read local files only: no stack lookup, no AWS credentials.
LOCAL_COMMANDS: dict[str, tuple[LocalCommand, str]] = {
    "evaluate": (
        cmd_evaluate,
        "annotation QA (local files, no AWS): each candidate box's best IoU against the "
        "benchmark boxes of its media and frame, and class score; writes iou_results.csv "
        "and prints a summary per annotator",
    ),
}
