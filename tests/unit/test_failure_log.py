"""The failure log: one row per file still failed, filters, CSV; and the progress line."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from media_ingest.errors import ErrorCode, Stage
from media_ingest.ops.failure_log import outstanding, parse_codes, parse_since, to_csv
from media_ingest.ops.progress import render
from media_ingest.records import FailureRecord
from tests.support.items import video_item

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def failure(key: str, code: ErrorCode, minutes_ago: int, message: str = "bad") -> FailureRecord:
    return FailureRecord(
        object_url=f"https://drop.s3.us-east-1.amazonaws.com/{key}",
        bucket="drop",
        key=key,
        dataset="main",
        stage=Stage.PROBE,
        error_code=code,
        message=message,
        attempt=1,
        event_id=f"drop|{key}|{minutes_ago}",
        event_time=NOW,
        size=1,
        failed_at=NOW - timedelta(minutes=minutes_ago),
    )


def test_since_accepts_relative_and_iso_times() -> None:
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("2026-11-23T09:00") == datetime(2026, 11, 23, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


def test_codes_are_checked_against_the_documented_list() -> None:
    assert parse_codes(["corrupt_media,EMPTY_OBJECT"]) == {
        ErrorCode.CORRUPT_MEDIA,
        ErrorCode.EMPTY_OBJECT,
    }
    with pytest.raises(ValueError, match="known: OBJECT_NOT_FOUND"):
        parse_codes(["NOPE"])


def test_one_row_per_file_still_failed() -> None:
    records = [
        failure("a.mp4", ErrorCode.CORRUPT_MEDIA, 50),
        failure("a.mp4", ErrorCode.PROBE_TIMEOUT, 40),  # the same file failed again
        failure("b.mp4", ErrorCode.EMPTY_OBJECT, 30),
        failure("fixed.mp4", ErrorCode.CORRUPT_MEDIA, 20),
    ]
    fixed = video_item("fixed.mp4").model_copy(
        update={"object_url": records[3].object_url, "registered_at": NOW}
    )
    rows = outstanding(records, [fixed])
    assert [(r.key, r.error_code) for r in rows] == [
        ("a.mp4", ErrorCode.PROBE_TIMEOUT),
        ("b.mp4", ErrorCode.EMPTY_OBJECT),
    ]
    assert [r.key for r in outstanding(records, [], since=NOW - timedelta(minutes=35))] == [
        "b.mp4",
        "fixed.mp4",
    ]
    assert [r.key for r in outstanding(records, [], codes={ErrorCode.EMPTY_OBJECT})] == ["b.mp4"]


def test_a_replaced_version_is_settled_by_any_registration_of_the_file() -> None:
    # The newer version's event registered the file before the older event's probe found
    # the object replaced: events for one key arrive in either order.
    changed = failure("swap.mp4", ErrorCode.OBJECT_CHANGED, 5)
    corrupt = failure("bad.mp4", ErrorCode.CORRUPT_MEDIA, 5)
    earlier = NOW - timedelta(minutes=10)
    items = [
        video_item(r.key).model_copy(update={"object_url": r.object_url, "registered_at": earlier})
        for r in (changed, corrupt)
    ]
    assert [r.key for r in outstanding([changed, corrupt], items)] == ["bad.mp4"]
    assert [r.key for r in outstanding([changed], [])] == ["swap.mp4"]


def test_csv_quotes_what_needs_quoting() -> None:
    text = to_csv([failure('a "b", c.mp4', ErrorCode.CORRUPT_MEDIA, 5, message="line1\nline2")])
    header, row = list(csv.reader(io.StringIO(text)))
    assert header == [
        "object_url",
        "key",
        "dataset",
        "stage",
        "error_code",
        "message",
        "failed_at",
    ]
    assert row[1] == 'a "b", c.mp4' and row[4] == "CORRUPT_MEDIA" and row[5] == "line1\nline2"
    assert datetime.fromisoformat(row[6]) == NOW - timedelta(minutes=5)


def test_progress_line_shows_rate_and_eta() -> None:
    line = render(500, 2000, elapsed=10.0, note="enqueued 480")
    assert "500/2000 25%" in line and "50.0/s" in line and "ETA 0:00:30" in line
    assert line.endswith("enqueued 480")
    assert "ETA" not in render(500, None, elapsed=10.0)
