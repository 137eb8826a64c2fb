"""The queues as operator commands use them (SQS): sending to the sink queue (redrive
--sink), reading dead-letter queues (redrive), and every queue's depth (status). Sending to
the ingest queue (backfill, redrive, reconcile) is adapters/queues.SqsIngestQueue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
from media_ingest.adapters.queues import SendFailed, change_entry
from media_ingest.ops.redrive import Message
from media_ingest.sinks.changes import ChangeBatch

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsSinkQueue:
    """The sink queue (FIFO) as a redrive sends to it."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def send_batches(self, batches: list[ChangeBatch], ids: list[str]) -> None:
        response = self.sqs.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=[
                change_entry(number, batch, dedup)
                for number, (batch, dedup) in enumerate(zip(batches, ids, strict=True))
            ],
        )
        failed = response.get("Failed", [])
        if failed:
            raise SendFailed(f"the sink queue refused {len(failed)} batches: {failed[0]}")


class SqsDeadLetters:
    """The dead-letter queue, read for a redrive."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def receive(self) -> list[Message]:
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=120,
        ).get("Messages", [])
        return [
            Message(message_id=m["MessageId"], receipt=m["ReceiptHandle"], body=m["Body"])
            for m in got
        ]

    def delete(self, messages: list[Message]) -> None:
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(messages)
                ],
            )


class QueueDepths:
    """How many messages wait in a queue and how many are in flight."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, client: SQSClient | None = None) -> None:
        self.sqs = client

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages, as SQS approximates them."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )
