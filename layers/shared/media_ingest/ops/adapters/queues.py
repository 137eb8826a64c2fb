"""The ingest queue and its dead-letter queue (SQS), as operator commands use them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
from media_ingest.ops.redrive import Message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_ROUNDS = 8


class SendFailed(RuntimeError):
    pass


class SqsIngestQueue:
    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

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


class SqsDeadLetters:
    """The dead-letter queue, read for a redrive."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def receive(self) -> list[Message]:
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            VisibilityTimeout=120,
        ).get("Messages", [])  # fmt: skip
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
