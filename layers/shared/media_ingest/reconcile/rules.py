"""What reconcile finds, decided per object and per catalog row. Pure.

Three kinds of miss, each only for objects older than the grace period (younger ones may
still have their event on the way):
- **lost event**: an object in the bucket with no outcome for its key (no catalog row, or
  only a removed item or a deleted mark: the key came back and that event was lost);
- **missed overwrite**: an object whose version (ETag) is neither the registered one nor one
  whose event had its outcome since (a duplicate noted on the item, a failure, ...);
- **missed deletion**: a catalog row of a live item or an outcome mark whose object is no
  longer in the bucket.

What fixes each is what the live path would have done: an S3-shaped event for the object
(or its removal) on the ingest queue. Their identities are stable (the object's ETag and
LastModified, or the removed row's event), so enqueueing twice is one event, one outcome.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from media_ingest.events import RECONCILE_CREATED, RECONCILE_REMOVED, backfill_body
from media_ingest.listing import ListedObject

State = Literal["live", "removed", "failed", "archive", "duplicate", "deleted"]
# Rows that say an object is there (a deletion would change them).
PRESENT: frozenset[str] = frozenset({"live", "failed", "archive", "duplicate"})


class RowState(BaseModel):
    """What one catalog row says about one object URL (adapters/catalog.row_state)."""

    model_config = ConfigDict(frozen=True)

    key: str
    dataset: str
    object_url: str
    bucket: str
    state: State
    # Versions of the object that had their outcome: the item's, and the noted or marked one.
    etags: tuple[str, ...] = ()
    event_id: str = ""
    # When the object version it describes was written (the item's event time, the mark's).
    written_at: datetime


class Finding(StrEnum):
    OK = "ok"
    IGNORED = "ignored"
    RECENT = "recent"
    LOST = "lost"
    OVERWRITTEN = "overwritten"
    DELETED = "deleted"


def classify(obj: ListedObject, routed: bool, row: RowState | None, cutoff: datetime) -> Finding:
    """A listed object: `routed` is False when a rule ignores it or it is a group marker."""
    if not routed:
        return Finding.IGNORED
    if obj.last_modified > cutoff:
        return Finding.RECENT
    if row is None or row.state in ("removed", "deleted"):
        return Finding.LOST
    if not obj.etag or obj.etag in row.etags:  # an inventory without ETags: presence only
        return Finding.OK
    return Finding.OVERWRITTEN


def classify_unlisted(row: RowState, cutoff: datetime) -> Finding:
    """A catalog row whose key the listing did not show."""
    if row.state not in PRESENT:
        return Finding.OK
    if row.written_at > cutoff:
        return Finding.RECENT  # written after the listing looked (or its event is late)
    return Finding.DELETED


def created_body(obj: ListedObject, region: str) -> str:
    """The event the live path would have had for this object version. Its LastModified
    is in the identity: the same bytes uploaded again after a deletion are a new event."""
    return backfill_body(
        obj.bucket,
        obj.key,
        size=obj.size,
        etag=obj.etag,
        region=region,
        event_time=obj.last_modified,
        event_name=RECONCILE_CREATED,
        request_id=f"reconcile-{int(obj.last_modified.timestamp() * 1000)}",
    )


def removed_body(row: RowState, region: str, now: datetime) -> str:
    """The removal the live path would have had: identified by the row it removes."""
    digest = hashlib.sha256(f"{row.object_url}\n{row.event_id}".encode()).hexdigest()[:24]
    return backfill_body(
        row.bucket,
        row.key,
        size=0,
        etag="",
        region=region,
        event_time=now,
        event_name=RECONCILE_REMOVED,
        request_id=f"reconcile-{digest}",
    )
