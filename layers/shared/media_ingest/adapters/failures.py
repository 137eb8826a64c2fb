"""The failure queue (SQS): one JSON `FailureRecord` per message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
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
