"""The failure log users of labelling platforms expect after an import: one row per failed file.

Owns the selection (latest failure per object URL, minus files registered or deleted since,
filters by time and code) and the CSV form. Pure: takes records, returns rows or text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from media_ingest.errors import ErrorCode
from media_ingest.records import CatalogItem, FailureRecord

CSV_COLUMNS = ("object_url", "key", "dataset", "stage", "error_code", "message", "failed_at")
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta | None:
    """'90s', '30m', '2h', '7d'; None for anything else."""
    found = _RELATIVE.match(text.strip())
    if not found:
        return None
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'30m', '2h', '7d' (ago), or an ISO date/time (UTC when no zone is given)."""
    duration = parse_duration(text)
    if duration is not None:
        return (now or datetime.now(UTC)) - duration
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since: expected e.g. 30m, 2h, 7d or 2026-11-23T09:00, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_codes(values: Iterable[str]) -> set[ErrorCode]:
    codes = set()
    for value in values:
        for name in value.split(","):
            try:
                codes.add(ErrorCode(name.strip().upper()))
            except ValueError:
                known = ", ".join(c.value for c in ErrorCode)
                raise ValueError(f"unknown error code {name!r}; known: {known}") from None
    return codes


def outstanding(
    failures: Iterable[FailureRecord],
    items: Iterable[CatalogItem],
    since: datetime | None = None,
    codes: set[ErrorCode] | None = None,
    removed: Mapping[str, datetime] | None = None,
) -> list[FailureRecord]:
    """The latest failure of each file neither registered nor deleted since it failed,
    filtered, oldest first (`removed`: when each deleted URL's deletion was recorded).

    OBJECT_CHANGED is settled by any registration of the file, even an earlier one: the
    version that failed is gone, and the newer version's own event decided the file (its
    events may arrive in either order).
    """
    gone = removed or {}
    latest: dict[str, FailureRecord] = {}
    for record in failures:
        held = latest.get(record.object_url)
        if held is None or record.failed_at > held.failed_at:
            latest[record.object_url] = record
    registered = {item.object_url: item.registered_at for item in items}
    rows = [
        r
        for r in latest.values()
        if not (
            r.object_url in registered
            and (registered[r.object_url] > r.failed_at or r.error_code is ErrorCode.OBJECT_CHANGED)
        )
        and not (r.object_url in gone and gone[r.object_url] > r.failed_at)
        and (since is None or r.failed_at >= since)
        and (not codes or r.error_code in codes)
    ]
    return sorted(rows, key=lambda r: (r.failed_at, r.object_url))


def select(
    failures: Iterable[FailureRecord],
    items: Iterable[CatalogItem],
    *,
    since: str | None = None,
    codes: Iterable[str] = (),
    every: bool = False,
    removed: Mapping[str, datetime] | None = None,
) -> list[FailureRecord]:
    """The records the operator asked for (`--since`, `--code`, `--all`): by default the
    outstanding ones (see `outstanding`), with `every` each failure record there is."""
    moment = parse_since(since) if since else None
    wanted = parse_codes(codes)
    if not every:
        return outstanding(failures, items, moment, wanted, removed)
    return [
        f
        for f in failures
        if (moment is None or f.failed_at >= moment) and (not wanted or f.error_code in wanted)
    ]


def to_csv(records: Iterable[FailureRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            (
                r.object_url,
                r.key,
                r.dataset or "",
                r.stage.value,
                r.error_code.value,
                r.message,
                r.failed_at.isoformat(),
            )
        )
    return out.getvalue()
