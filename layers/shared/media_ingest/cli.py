"""`media-ingest`: the operator's view of a deployed stack (on AWS, or LocalStack)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from . import __version__, report
from .adapters.catalog import DynamoCatalog
from .records import CatalogItem
from .stack import StackNotFound, StackOutputs, stack_outputs

DEFAULT_STACK = os.environ.get("MEDIA_INGEST_STACK", "media-ingest")


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
    state = report.status(outputs)
    if args.json:
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
    records = DynamoCatalog(outputs.RegistryTableName).failures()
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


COMMANDS: dict[str, tuple[Any, str]] = {
    "status": (cmd_status, "events received, the count of each outcome, queue depths"),
    "items": (cmd_items, "registered items with their probe metadata"),
    "failures": (
        cmd_failures,
        "failure records (read from the catalog; the queue is not consumed)",
    ),
    "manifests": (cmd_manifests, "manifest parts per dataset: entries, size, sealed or open"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="media-ingest",
        description="Inspect a deployed media-ingest stack. "
        "Set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:4566) to use LocalStack.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument(
        "--stack",
        default=DEFAULT_STACK,
        help="CloudFormation stack name (default: $MEDIA_INGEST_STACK or media-ingest)",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--json", action="store_true", help="machine-readable JSON output")
        if name == "items":
            command.add_argument("--dataset", help="only items of this dataset")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        outputs = stack_outputs(args.stack)
    except StackNotFound as exc:
        print(f"media-ingest: {exc}", file=sys.stderr)
        return 2
    handler = COMMANDS[args.command][0]
    print(handler(outputs, args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
