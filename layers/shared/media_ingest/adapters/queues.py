"""The queues the functions send to (SQS): the failure queue (one FailureRecord JSON per
message, with its code and stage as attributes) and the extract queue (one ObjectEvent JSON
per archive). Operators' queue access (ingest, dead letters, depths) is ops/adapters/queues.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
from media_ingest.events import ObjectEvent
from media_ingest.records import FailureRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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
