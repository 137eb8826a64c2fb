"""Recording a failure: the one home of "catalog row, then queue message, then log line".

Every function that fails an object (ingest, extract, the sink) records it here, so a failure record
always looks the same and is always written in the same order. The catalog row comes first:
if the function dies before the queue message, the row still says what failed, and the
redelivered event, replaying its recorded outcome, does not fail it twice. Never creates a
client itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media_ingest.errors import MediaError, Stage
from media_ingest.events import ObjectEvent
from media_ingest.observability import logger
from media_ingest.records import FailureRecord


class FailureCatalog(Protocol):
    def record_failure(self, record: FailureRecord) -> None: ...


class FailureSink(Protocol):
    """The failure queue: one message per failure record."""

    def send(self, record: FailureRecord) -> None: ...


@dataclass
class FailureRecorder:
    catalog: FailureCatalog
    queue: FailureSink

    def record(
        self,
        event: ObjectEvent,
        error: MediaError,
        *,
        url: str,
        dataset: str | None,
        attempt: int,
        stage: Stage | None = None,
        size: int | None = None,
        member: str | None = None,
    ) -> FailureRecord:
        """Record that `event`'s object (or one `member` of the archive it names) failed."""
        record = FailureRecord(
            object_url=url,
            bucket=event.bucket,
            key=event.key,
            dataset=dataset,
            stage=stage or error.stage,
            error_code=error.code,
            message=error.message,
            attempt=attempt,
            # One record per member: the catalog keys failure records by event id.
            event_id=event.event_id + (f"#{member}" if member is not None else ""),
            event_time=event.event_time,
            size=event.size if size is None else size,
            parser=error.parser,
        )
        return self.write(record, member=member)

    def write(self, record: FailureRecord, *, member: str | None = None) -> FailureRecord:
        """Keep a record built elsewhere (the sink builds its own from a registration)."""
        self.catalog.record_failure(record)
        self.queue.send(record)
        logger.warning(
            "failed",
            extra={
                "error_code": record.error_code.value,
                "stage": record.stage.value,
                "member": member,
                "reason": record.message,
                "parser": record.parser,
            },
        )
        return record
