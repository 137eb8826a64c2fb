"""The command line's schema: global options (accepted before or after the command, as
with the AWS CLI), the commands and their options. No behaviour: commands.py does the work.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from media_ingest import __version__
from media_ingest.ops.cli.commands import LOCAL_COMMANDS, STACK_COMMANDS, STATE_DIR
from media_ingest.ops.cli.render import VFR_STATES
from media_ingest.ops.export import ExportFormat

DEFAULT_STACK = os.environ.get("MEDIA_INGEST_STACK", "media-ingest")
STACK_HELP = "CloudFormation stack name (default: $MEDIA_INGEST_STACK or media-ingest)"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="media-ingest",
        description="Inspect a deployed media-ingest stack. "
        "Set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:4566) to use LocalStack. "
        "`evaluate` works on local files and needs neither a stack nor credentials.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument("--stack", default=DEFAULT_STACK, help=STACK_HELP)
    # The same option after the command (`media-ingest items --stack X`); SUPPRESS keeps the
    # value given before the command unless it is given again after it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--stack", default=argparse.SUPPRESS, help=STACK_HELP)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = [(name, text, [after]) for name, (_, text) in STACK_COMMANDS.items()]
    commands += [(name, text, []) for name, (_, text) in LOCAL_COMMANDS.items()]
    for name, help_text, parents in commands:
        command = sub.add_parser(name, help=help_text, description=help_text, parents=parents)
        command.add_argument("--json", action="store_true", help="machine-readable JSON output")
        if name in OPTIONS:
            OPTIONS[name](command)
    return top


def _items_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dataset", help="only items of this dataset")
    command.add_argument(
        "--vfr",
        nargs="?",
        const="yes",
        choices=VFR_STATES,
        help="only videos whose frame rate is variable (yes, the default), constant (no), or "
        "could not be read from the container index (unknown)",
    )


def _duplicates_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dataset", help="only groups with a member in this dataset (all members shown)"
    )


def _status_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--watch", action="store_true", help="redraw live until Ctrl-C")
    command.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    command.add_argument(
        "--until-done", action="store_true", help="with --watch: stop once all is accounted for"
    )


def _failures_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--csv",
        action="store_true",
        help="CSV, one row per failed file: object_url, key, dataset, stage, error_code, "
        "message, failed_at",
    )
    command.add_argument("--out", help="with --csv: write to this file instead of stdout")
    _failure_filters(command)
    command.add_argument(
        "--all",
        action="store_true",
        help="every failure record, including earlier failures of a file and files "
        "registered since (default: the latest failure of each file still failed)",
    )


def _failure_filters(command: argparse.ArgumentParser, scope: str = "") -> None:
    """Which failure records a command takes (failures, redrive --failures)."""
    command.add_argument(
        "--since", help=f"{scope}only failures since: 30m, 2h, 7d or an ISO time (UTC)"
    )
    command.add_argument(
        "--code",
        action="append",
        default=[],
        help=f"{scope}only these error codes (repeat or comma-separate), e.g. CORRUPT_MEDIA",
    )


def _backfill_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("source", metavar="s3://BUCKET/PREFIX", help="objects to enqueue")
    command.add_argument(
        "--inventory",
        metavar="s3://BUCKET/KEY",
        help="an S3 Inventory manifest.json (CSV) listing the bucket, instead of listing it",
    )
    command.add_argument(
        "--rate", type=float, default=100.0, help="messages per second at most (default 100)"
    )
    command.add_argument("--limit", type=int, help="stop after this many objects (resumable)")
    command.add_argument(
        "--state", help=f"resume file (default: under {STATE_DIR}/STACK/, one per source)"
    )
    command.add_argument("--restart", action="store_true", help="ignore a saved position")
    command.add_argument("--no-count", action="store_true", help="skip the counting pass (no ETA)")
    command.add_argument(
        "--no-read-check",
        action="store_true",
        help="enqueue even when the stack looks unable to read the source (a bucket not in "
        "ExtraSourceBucketArns, SSE-C objects): checked first by default, since each object "
        "would fail with ACCESS_DENIED",
    )


def _reconcile_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("source", metavar="s3://BUCKET/PREFIX", help="objects to compare")
    command.add_argument(
        "--inventory",
        metavar="s3://BUCKET/KEY",
        help="an S3 Inventory manifest.json (CSV, with ETag and LastModifiedDate for overwrites "
        "and the grace period) listing the bucket, instead of listing it",
    )
    command.add_argument(
        "--apply",
        action="store_true",
        help="enqueue what was missed on the ingest queue as the live path would have had it "
        "(default: report counts and samples only)",
    )
    command.add_argument(
        "--grace",
        default="15m",
        help="objects and catalog rows younger than this (before the listing) are left to "
        "their events still on the way (default 15m; e.g. 0s, 90s, 2h)",
    )
    command.add_argument(
        "--rate", type=float, default=100.0, help="messages per second at most (default 100)"
    )
    command.add_argument(
        "--state", help=f"resume file (default: under {STATE_DIR}/STACK/, one per source)"
    )
    command.add_argument("--restart", action="store_true", help="ignore a saved position")
    command.add_argument("--no-count", action="store_true", help="skip the counting pass (no ETA)")


def _bucket_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("bucket", metavar="s3://BUCKET", help="the bucket (no prefix)")
    command.add_argument(
        "--bucket-profile",
        metavar="PROFILE",
        help="AWS profile with the bucket's own credentials (a bucket of another account); "
        "default: the credentials the stack is read with",
    )


def _attach_options(command: argparse.ArgumentParser) -> None:
    _bucket_options(command)
    command.add_argument(
        "--force",
        action="store_true",
        help="attach even when a check fails (the checks are still printed)",
    )


def _export_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dataset", required=True, help="the dataset to export")
    command.add_argument(
        "--format",
        required=True,
        choices=[f.value for f in ExportFormat],
        help="encord-json: every manifest part as stored, and index.json; encord-csv: "
        "ObjectUrl, Title, Create video rows (videos and image groups only, the rest listed in "
        "refused.csv); nucleus: items.jsonl (images as DatasetItem), scenes.jsonl (videos as "
        "VideoScene) and export.json; label-studio: tasks-<kind>.json and "
        "label-config-<kind>.xml per kind (one project each; s3:// URIs for an S3 source "
        "storage) and export.json; cvat: <bucket>/manifest.jsonl, CVAT's image manifest for "
        "the root of each source bucket (videos and other kinds in refused.csv)",
    )
    command.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder to write into; the export replaces DIR/FORMAT/ whole",
    )
    command.add_argument(
        "--update",
        action="store_true",
        help="nucleus only: written to export.json for Dataset.append(update=...): on a "
        "reference_id collision, overwrite the stored metadata (default: ignore the item)",
    )


def _redrive_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dead-letters",
        action="store_true",
        help="move every S3-event message of the dead-letter queue back to the ingest queue "
        "(poison messages stay)",
    )
    command.add_argument(
        "--failures",
        action="store_true",
        help="send each file still failed (latest record per file) for another attempt; the "
        "sink's records (stage sink: registered, not in Label Studio yet) are left to --sink",
    )
    command.add_argument(
        "--sink",
        action="store_true",
        help="move every change batch of the Label Studio sink's dead-letter queue back to the "
        "sink queue (after Label Studio or its secret is fixed)",
    )
    _failure_filters(command, "with --failures: ")
    command.add_argument("--dry-run", action="store_true", help="count, send nothing")


def _evaluate_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--benchmark",
        required=True,
        metavar="DIR",
        help="the reference annotations: <media>/localizations/<type>.csv under DIR",
    )
    command.add_argument(
        "--candidate",
        required=True,
        metavar="DIR",
        help="the annotations to score, in the same layout; per annotator as "
        "DIR/<annotator>/<media>/... unless an annotator, created_by or user column names them",
    )
    command.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help="where iou_results.csv is written (default: the current directory)",
    )
    command.add_argument(
        "--media-info",
        metavar="FILE",
        help="the videos' catalog items (`media-ingest items --json > FILE`): the media of a "
        "variable-frame-rate video are not compared by frame number, and every media says "
        "how it was compared",
    )
    command.add_argument(
        "--compare-variable-rate",
        action="store_true",
        help="compare variable-frame-rate media by frame number all the same: both sets "
        "number the decoded frames (e.g. both were made in the same tool)",
    )


OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "status": _status_options,
    "items": _items_options,
    "duplicates": _duplicates_options,
    "failures": _failures_options,
    "backfill": _backfill_options,
    "redrive": _redrive_options,
    "evaluate": _evaluate_options,
    "export": _export_options,
    "attach": _attach_options,
    "reconcile": _reconcile_options,
    "detach": _bucket_options,
}
