"""The ingest queue (SQS), written to by operator commands (backfill): batches of ten."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..aws import ClientSlot

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
