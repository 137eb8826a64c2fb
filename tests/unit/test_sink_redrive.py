"""`media-ingest redrive --sink` and `--failures` with the sink's records, on in-memory queues."""

from __future__ import annotations

from datetime import UTC, datetime

from media_ingest.errors import ErrorCode, Stage
from media_ingest.ops.redrive import Message, Redrive, RedriveCounts
from media_ingest.records import FailureRecord
from media_ingest.sinks.changes import Change, ChangeAction, ChangeBatch


class Dlq:
    def __init__(self, bodies: list[str]) -> None:
        self.messages = [
            Message(message_id=f"m{i}", receipt=f"r{i}", body=b) for i, b in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive(self) -> list[Message]:
        return [m for m in self.messages if m.message_id not in self.deleted][:10]

    def delete(self, messages: list[Message]) -> None:
        self.deleted += [m.message_id for m in messages]


class SinkQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[ChangeBatch, str]] = []

    def send_batches(self, batches: list[ChangeBatch], ids: list[str]) -> None:
        self.sent += list(zip(batches, ids, strict=True))


class Ingest:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.sent += bodies


def _batch(key: str) -> ChangeBatch:
    change = Change(
        action=ChangeAction.UPSERT,
        dataset="main",
        object_url=f"https://drop.s3.amazonaws.com/{key}",
        bucket="drop",
        key=key,
        event_id=f"drop|{key}",
        event_time=datetime(2026, 11, 23, tzinfo=UTC),
    )
    return ChangeBatch(dataset="main", changes=[change])


def test_sink_dead_letters_go_back_to_the_sink_queue_poison_stays() -> None:
    dlq = Dlq([_batch("a.png").body(), "not a change batch", _batch("b.png").body()])
    sink, counts = SinkQueue(), RedriveCounts()
    Redrive(ingest=Ingest(), region="us-east-1").sink_dead_letters(dlq, sink, counts)
    assert [b.changes[0].key for b, _ in sink.sent] == ["a.png", "b.png"]
    assert dlq.deleted == ["m0", "m2"]
    assert (counts.sink_moved, counts.poison_left) == (2, 1)
    # A second move of the same dead letter carries the same deduplication id.
    again = SinkQueue()
    Redrive(ingest=Ingest(), region="us-east-1").sink_dead_letters(
        Dlq([_batch("a.png").body()]), again, RedriveCounts()
    )
    assert again.sent[0][1] == sink.sent[0][1]


def test_redrive_failures_leaves_the_sinks_records_to_redrive_sink() -> None:
    record = FailureRecord(
        object_url="https://drop.s3.amazonaws.com/a.png",
        bucket="drop",
        key="a.png",
        dataset="main",
        stage=Stage.SINK,
        error_code=ErrorCode.SINK_UNAVAILABLE,
        message="gave up",
        attempt=10,
        event_id="drop|a.png#sink",
        event_time=datetime(2026, 11, 23, tzinfo=UTC),
        size=1,
    )

    class Objects:
        def head(self, bucket: str, key: str) -> tuple[int, str] | None:
            return (1, "e")

    ingest, counts = Ingest(), RedriveCounts()
    Redrive(ingest=ingest, region="us-east-1").failures([record], Objects(), counts)
    assert ingest.sent == [] and counts.sink_records_left == 1
