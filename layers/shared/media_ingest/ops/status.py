"""What the operator commands compute from a stack: outcome counts, queue depths, parts.

Reads only; never changes the stack. The CLI renders these models as tables or JSON.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from media_ingest.adapters.catalog import DynamoCatalog
from media_ingest.adapters.clients import client as default_client
from media_ingest.adapters.manifests import S3PartStore
from media_ingest.ops.stack import StackOutputs
from media_ingest.records import Outcome, OutcomeKind

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


class QueueDepth(BaseModel):
    name: str
    visible: int
    in_flight: int


class Status(BaseModel):
    events: int
    outcomes: dict[str, int]
    in_progress: int
    queues: list[QueueDepth]

    @property
    def accounted(self) -> bool:
        """Every event with a recorded outcome; nothing waiting or dead-lettered."""
        waiting = sum(q.visible + q.in_flight for q in self.queues if q.name != "failures")
        return self.in_progress == 0 and waiting == 0


class PartRow(BaseModel):
    dataset: str
    number: int
    key: str
    entries: int
    bytes: int
    sealed: bool


def status(outputs: StackOutputs, sqs: SQSClient | None = None) -> Status:
    outcomes, in_progress = DynamoCatalog(outputs.RegistryTableName).ledger()
    counts = Counter(o.kind.value for o in outcomes)
    return Status(
        events=len(outcomes) + in_progress,
        outcomes={kind.value: counts.get(kind.value, 0) for kind in OutcomeKind},
        in_progress=in_progress,
        queues=queue_depths(outputs, sqs),
    )


def queue_depths(outputs: StackOutputs, sqs: SQSClient | None = None) -> list[QueueDepth]:
    client = sqs or default_client("sqs")
    depths = []
    queues = [
        ("ingest", outputs.IngestQueueUrl),
        ("dead-letter", outputs.DeadLetterQueueUrl),
        ("failures", outputs.FailureQueueUrl),
    ]
    if outputs.ExtractQueueUrl and outputs.ExtractDeadLetterQueueUrl:  # stacks with archives
        queues += [
            ("extract", outputs.ExtractQueueUrl),
            ("extract-dead-letter", outputs.ExtractDeadLetterQueueUrl),
        ]
    for name, url in queues:
        attributes = client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths.append(
            QueueDepth(
                name=name,
                visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            )
        )
    return depths


def manifest_parts(outputs: StackOutputs, s3: S3Client | None = None) -> list[PartRow]:
    """Every part of every dataset, from the bucket listing (the index may lag on the open part)."""
    client = s3 or default_client("s3")
    store = S3PartStore(outputs.ManifestBucketName, outputs.ManifestPrefix, client)
    rows = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=outputs.ManifestBucketName, Prefix=outputs.ManifestPrefix
    ):
        for obj in page.get("Contents", []):
            dataset, _, name = obj["Key"].removeprefix(outputs.ManifestPrefix).rpartition("/")
            if not (name.startswith("part-") and name.endswith(".json")):
                continue
            number = int(name[5:-5])
            head: dict[str, Any] = dict(
                client.head_object(Bucket=outputs.ManifestBucketName, Key=obj["Key"])
            )
            metadata = head.get("Metadata", {})
            rows.append(
                PartRow(
                    dataset=dataset,
                    number=number,
                    key=store.part_key(dataset, number),
                    entries=int(metadata.get("entries", 0)),
                    bytes=int(obj["Size"]),
                    sealed=metadata.get("sealed") == "true",
                )
            )
    return sorted(rows, key=lambda r: (r.dataset, r.number))


def wait_for_outcomes(
    outputs: StackOutputs,
    keys: set[str],
    timeout: float = 180.0,
    poll: float = 2.0,
) -> list[Outcome]:
    """Poll the ledger until every key in `keys` has a recorded outcome (bounded by timeout).

    Returns the outcomes of those keys; raises TimeoutError naming the keys still missing.
    """
    reader = DynamoCatalog(outputs.RegistryTableName)
    deadline = time.monotonic() + timeout
    while True:
        outcomes, _ = reader.ledger()
        mine = [o for o in outcomes if o.key in keys]
        missing = keys - {o.key for o in mine}
        if not missing:
            return mine
        if time.monotonic() > deadline:
            shown = ", ".join(sorted(missing)[:5])
            raise TimeoutError(
                f"{len(missing)} objects without an outcome after {timeout:g}s: {shown}"
            )
        time.sleep(poll)
