"""The queues the functions send to (SQS): the failure queue (one FailureRecord JSON per
message, with its code and stage as attributes), the extract queue (one ObjectEvent JSON
per archive), the sink queue (FIFO: one ChangeBatch JSON per dataset per ingest batch) and
the ingest queue (S3-shaped events of objects already there: backfill, redrive, reconcile).
Operators' queue reads (dead letters, depths) are ops/adapters/queues.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.events import ObjectEvent
from media_ingest.records import FailureRecord
from media_ingest.sinks.changes import ChangeBatch

SEND_BATCH_MAX = 10  # SendMessageBatch's limit

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


def change_entry(
    number: int, batch: ChangeBatch, deduplication_id: str | None = None
) -> SendMessageBatchRequestEntryTypeDef:
    """One change batch as a sink-queue message (the functions' and a redrive's). FIFO: a
    dataset's changes are applied in order, one at a time; a batch sent twice within five
    minutes (a retried send) is delivered once."""
    return {
        "Id": str(number),
        "MessageBody": batch.body(),
        "MessageGroupId": batch.dataset,
        "MessageDeduplicationId": deduplication_id or batch.deduplication_id(),
    }


class SqsFailureQueue:
    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def send(self, record: FailureRecord) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=record.model_dump_json(),
            MessageAttributes={
                "error_code": {"DataType": "String", "StringValue": record.error_code.value},
                "stage": {"DataType": "String", "StringValue": record.stage.value},
            },
        )


class SqsExtractQueue:
    """The ingest function's side of the extract queue."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def send(self, event: ObjectEvent) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=event.model_dump_json())


class SqsChangeQueue:
    """The ingest function's side of the sink queue: all of a batch's changes in one
    SendMessageBatch (an entry per dataset; more than ten datasets take more calls)."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def publish(self, batches: list[ChangeBatch]) -> None:
        for start in range(0, len(batches), SEND_BATCH_MAX):
            chunk = batches[start : start + SEND_BATCH_MAX]
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[change_entry(number, batch) for number, batch in enumerate(chunk)],
            )
            failed = response.get("Failed", [])
            if failed:
                raise TransientError(
                    ErrorCode.AWS_TRANSIENT,
                    f"{len(failed)} change batches not accepted by the sink queue: "
                    f"{failed[0].get('Code', '?')}",
                )


MAX_ROUNDS = 8


class SendFailed(RuntimeError):
    pass


class SqsIngestQueue:
    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    @property
    def region(self) -> str:
        """The queue's region (events sent to it are shaped for this region)."""
        return str(self.sqs.meta.region_name)

    def send(self, bodies: list[str]) -> None:
        """Send up to ten bodies; entries SQS refuses (throttling) are sent again, bounded."""
        pending = {str(i): body for i, body in enumerate(bodies)}
        for round_ in range(MAX_ROUNDS):
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": i, "MessageBody": b} for i, b in pending.items()],
            )
            failed = response.get("Failed", [])
            permanent = [f for f in failed if f.get("SenderFault")]
            if permanent:
                raise SendFailed(f"SQS refused {len(permanent)} messages: {permanent[0]}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                return
            time.sleep(min(0.1 * 2**round_, 5))
        raise SendFailed(f"{len(pending)} messages not accepted after {MAX_ROUNDS} rounds")
