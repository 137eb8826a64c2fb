"""Redrive after a fix: dead-lettered messages and chosen failure records back to ingestion,
and the sink's dead-lettered change batches back to the sink queue.

Owns which messages move and which failures get another attempt, and the summary. Takes
the queues and an object lookup as interfaces; never creates a client.

Idempotent by construction: a dead-lettered message is moved (sent, then deleted), so a
second redrive finds it gone; a failure record yields one event whose identity derives
from that record, so redriving it twice is one event, and a file registered since is
skipped. If the new attempt fails again it leaves a new failure record, which a later
redrive (after the next fix) picks up as a fresh event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ValidationError

from media_ingest.errors import Stage
from media_ingest.events import REDRIVE_EVENT, NotAnS3Event, backfill_body, parse_body
from media_ingest.records import FailureRecord
from media_ingest.sinks.changes import ChangeBatch

SQS_BATCH = 10


class Message(BaseModel):
    message_id: str
    receipt: str
    body: str


class DeadLetters(Protocol):
    def receive(self) -> list[Message]:
        """Up to ten messages, hidden from other readers for a while; [] when none left."""
        ...

    def delete(self, messages: list[Message]) -> None: ...


class MessageQueue(Protocol):
    def send(self, bodies: list[str]) -> None: ...


class ChangeQueue(Protocol):
    """The sink queue (FIFO): each batch in its dataset's group, deduplicated by `ids`."""

    def send_batches(self, batches: list[ChangeBatch], ids: list[str]) -> None: ...


class ObjectLookup(Protocol):
    def head(self, bucket: str, key: str) -> tuple[int, str] | None:
        """(size, ETag) of the object as it is now; None when it no longer exists."""
        ...


class RedriveCounts(BaseModel):
    moved: int = 0
    poison_left: int = 0
    redriven: int = 0
    gone: int = 0
    sink_moved: int = 0
    # Failure records of the sink (stage `sink`): the file is registered, the platform does
    # not have it; a new ingestion would be a duplicate, so --failures leaves them to --sink.
    sink_records_left: int = 0


def redrive_request_id(record: FailureRecord) -> str:
    return "redrive-" + hashlib.sha256(record.event_id.encode()).hexdigest()[:24]


@dataclass
class Redrive:
    ingest: MessageQueue
    region: str
    progress: Callable[[RedriveCounts], None] | None = None

    def dead_letters(self, dlq: DeadLetters, counts: RedriveCounts) -> None:
        """Move every S3-event message back; poison messages (not S3 events) stay put.

        Each message is deleted only after it was sent: an interruption in between leaves
        a copy in both queues, which is one event (the same body, the same identity).
        """
        seen: set[str] = set()
        while batch := [m for m in dlq.receive() if m.message_id not in seen]:
            seen.update(m.message_id for m in batch)
            good = [m for m in batch if _is_s3_event(m.body)]
            counts.poison_left += len(batch) - len(good)
            if good:
                self.ingest.send([m.body for m in good])
                dlq.delete(good)
                counts.moved += len(good)
            if self.progress:
                self.progress(counts)

    def failures(
        self, records: Iterable[FailureRecord], objects: ObjectLookup, counts: RedriveCounts
    ) -> None:
        """One new event per failure record, for the object as it is now."""
        bodies: list[str] = []
        for record in records:
            if record.stage is Stage.SINK:
                counts.sink_records_left += 1
                continue
            found = objects.head(record.bucket, record.key)
            if found is None:
                counts.gone += 1
                continue
            size, etag = found
            body = backfill_body(
                record.bucket,
                record.key,
                size=size,
                etag=etag,
                region=self.region,
                event_time=datetime.now(UTC),
                event_name=REDRIVE_EVENT,
                request_id=redrive_request_id(record),
            )
            bodies.append(body)
            if len(bodies) == SQS_BATCH:
                self._send(bodies, counts)
                bodies = []
        if bodies:
            self._send(bodies, counts)

    def sink_dead_letters(self, dlq: DeadLetters, sink: ChangeQueue, counts: RedriveCounts) -> None:
        """Move every change batch of the sink's dead-letter queue back to the sink queue
        (sent, then deleted). A copy moved twice (an interrupted redrive) carries the same
        deduplication id, derived from the dead letter's id: SQS keeps one."""
        seen: set[str] = set()
        while batch := [m for m in dlq.receive() if m.message_id not in seen]:
            seen.update(m.message_id for m in batch)
            good = [(m, _change_batch(m.body)) for m in batch]
            movable = [(m, b) for m, b in good if b is not None]
            counts.poison_left += len(batch) - len(movable)
            if movable:
                sink.send_batches(
                    [b for _, b in movable if b is not None],
                    [
                        "redrive-" + hashlib.sha256(m.message_id.encode()).hexdigest()[:40]
                        for m, _ in movable
                    ],
                )
                dlq.delete([m for m, _ in movable])
                counts.sink_moved += len(movable)
            if self.progress:
                self.progress(counts)

    def _send(self, bodies: list[str], counts: RedriveCounts) -> None:
        self.ingest.send(bodies)
        counts.redriven += len(bodies)
        if self.progress:
            self.progress(counts)


def _change_batch(body: str) -> ChangeBatch | None:
    try:
        return ChangeBatch.model_validate_json(body)
    except ValidationError:
        return None


def _is_s3_event(body: str) -> bool:
    try:
        return bool(parse_body(body))
    except NotAnS3Event:
        return False
