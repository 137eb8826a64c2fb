"""What the operator commands compute from a stack: outcome counts, queue depths, parts.

Reads only, through ops/adapters; never changes the stack. The CLI renders these models as
tables or JSON.
"""

from __future__ import annotations

import time
from collections import Counter

from pydantic import BaseModel, Field

from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.ops.adapters.manifests import ManifestFiles, PartRow
from media_ingest.ops.adapters.queues import QueueDepths
from media_ingest.ops.stack import StackOutputs
from media_ingest.records import Outcome, OutcomeKind

__all__ = ["PartRow", "QueueDepth", "Status", "manifest_parts", "queue_depths", "status"]


class QueueDepth(BaseModel):
    name: str
    visible: int
    in_flight: int


# Queues after an event's outcome: their messages say nothing about unaccounted events.
_DOWNSTREAM = frozenset({"failures", "sink", "sink-dead-letter"})


class Status(BaseModel):
    events: int = Field(description="recorded outcomes plus events in progress")
    outcomes: dict[str, int]
    in_progress: int = Field(
        description="messages being processed now (in flight on the ingest queue: each is "
        "one S3 event, whose outcome some may have recorded already), and events a previous "
        "version of the stack left in progress"
    )
    queues: list[QueueDepth]

    @property
    def accounted(self) -> bool:
        """Every event with a recorded outcome; nothing waiting or dead-lettered. The sink's
        queues are downstream of outcomes (a Label Studio outage must not stall this)."""
        waiting = sum(q.visible + q.in_flight for q in self.queues if q.name not in _DOWNSTREAM)
        return self.in_progress == 0 and waiting == 0


def status(outputs: StackOutputs, depths: QueueDepths | None = None) -> Status:
    outcomes, left_in_progress = CatalogReader(outputs.RegistryTableName).ledger()
    counts = Counter(o.kind.value for o in outcomes)
    queues = queue_depths(outputs, depths)
    in_progress = left_in_progress + sum(q.in_flight for q in queues if q.name == "ingest")
    return Status(
        events=len(outcomes) + in_progress,
        outcomes={kind.value: counts.get(kind.value, 0) for kind in OutcomeKind},
        in_progress=in_progress,
        queues=queues,
    )


def queue_depths(outputs: StackOutputs, depths: QueueDepths | None = None) -> list[QueueDepth]:
    reader = depths or QueueDepths()
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
    if outputs.SinkQueueUrl and outputs.SinkDeadLetterQueueUrl:  # stacks with the sink
        queues += [
            ("sink", outputs.SinkQueueUrl),
            ("sink-dead-letter", outputs.SinkDeadLetterQueueUrl),
        ]
    found = []
    for name, url in queues:
        visible, in_flight = reader.depth(url)
        found.append(QueueDepth(name=name, visible=visible, in_flight=in_flight))
    return found


def manifest_parts(outputs: StackOutputs) -> list[PartRow]:
    """Every part of every dataset, from the bucket listing (the index may lag on the open part)."""
    return ManifestFiles(outputs.ManifestBucketName, outputs.ManifestPrefix).parts()


def wait_for_outcomes(
    outputs: StackOutputs,
    keys: set[str],
    timeout: float = 180.0,
    poll: float = 2.0,
) -> list[Outcome]:
    """Poll the ledger until every key in `keys` has a recorded outcome (bounded by timeout).

    Returns the outcomes of those keys; raises TimeoutError naming the keys still missing.
    """
    reader = CatalogReader(outputs.RegistryTableName)
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
