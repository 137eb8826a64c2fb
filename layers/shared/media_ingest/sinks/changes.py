"""Catalog changes as sinks receive them: the ingest function publishes one `ChangeBatch` per
dataset per SQS batch (one message, one batched call), a sink applies it.

Pure: outcomes in, batches out. A change names the object and the event that decided it, not
its metadata: the sink reads the catalog item when it applies the change, so a message stays
small whatever the owner metadata weighs, and a late message never writes stale metadata.
Applying a change twice changes nothing (sinks are idempotent by object URL), so redelivered
batches and replayed outcomes may publish again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from media_ingest.media import MediaKind
from media_ingest.records import Outcome, OutcomeKind


class ChangeAction(StrEnum):
    UPSERT = "upsert"  # registered or updated: the platform should hold the object as it is
    DELETE = "delete"  # deleted from its bucket: the platform should drop or flag it


# Which outcomes sinks hear about. A `deleted` outcome carries its item only when this
# removal marked it removed (ingest/ingestor.py), so each deletion is heard once.
ACTION_OF_OUTCOME: dict[OutcomeKind, ChangeAction] = {
    OutcomeKind.REGISTERED: ChangeAction.UPSERT,
    OutcomeKind.UPDATED: ChangeAction.UPSERT,
    OutcomeKind.DELETED: ChangeAction.DELETE,
}


class Change(BaseModel):
    """One object's change, as a sink needs it to find the object and its catalog item."""

    model_config = ConfigDict(frozen=True)

    action: ChangeAction
    dataset: str
    object_url: str
    bucket: str
    key: str
    kind: MediaKind | None = Field(default=None, description="known for upserts")
    # The S3 event that decided it: tells an update from a redelivery, and names the
    # sink's failure record (`<event_id>#sink`).
    event_id: str
    event_time: datetime
    size: int = 0
    group: str | None = Field(default=None, description="GroupRef.group_id of a member")


class ChangeBatch(BaseModel):
    """One message on the sink queue: the changes of one dataset from one ingest batch."""

    dataset: str
    changes: list[Change]

    def body(self) -> str:
        return self.model_dump_json()

    def deduplication_id(self) -> str:
        """The same batch published twice (a redelivered ingest batch) is one message."""
        return hashlib.sha256(self.body().encode()).hexdigest()


def change_of(outcome: Outcome) -> Change | None:
    """The change an outcome makes to the catalog, if sinks hear about its kind."""
    action = ACTION_OF_OUTCOME.get(outcome.kind)
    item = outcome.item
    if action is None or item is None:
        return None
    return Change(
        action=action,
        dataset=item.dataset,
        object_url=item.object_url,
        bucket=item.bucket,
        key=item.key,
        kind=item.kind,
        event_id=item.event_id,
        event_time=item.event_time,
        size=item.size,
        group=outcome.group,
    )


def batches_of(outcomes: Iterable[Outcome]) -> list[ChangeBatch]:
    """The batches to publish for these outcomes, one per dataset, in a stable order."""
    by_dataset: dict[str, dict[str, Change]] = defaultdict(dict)
    for outcome in outcomes:
        change = change_of(outcome)
        if change is not None:
            # The same object twice in one batch (an event delivered twice): once.
            by_dataset[change.dataset][change.object_url] = change
    return [
        ChangeBatch(dataset=dataset, changes=list(changes.values()))
        for dataset, changes in sorted(by_dataset.items())
    ]
