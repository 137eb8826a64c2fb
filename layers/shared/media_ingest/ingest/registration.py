"""Registration rules: one live catalog item per (dataset, object URL), whatever the
redeliveries, and what a deletion does to it.

The catalog adapter does the conditional writes; this module decides what their answers
mean (new, our own earlier attempt, a duplicate, an update, a registration after a deletion;
removed, already removed, superseded). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol

from media_ingest.records import CatalogItem, FailureRecord, OutcomeKind, OutcomeMark, Removal


@dataclass(frozen=True)
class WriteResult:
    """What a conditional put answered: whether it wrote, and the item it found or replaced
    (a removed item too; None when there was none, or only an outcome mark)."""

    written: bool
    previous: CatalogItem | None = None


class RemoveStatus(StrEnum):
    REMOVED = "removed"  # a live item is now marked removed
    ALREADY = "already"  # it was removed before (by this event: a retry)
    NEWER = "newer"  # the registered item comes from a later write than the deletion
    UNREGISTERED = "unregistered"  # no item: the URL's outcome mark (if any) says deleted


@dataclass(frozen=True)
class RemoveResult:
    status: RemoveStatus
    item: CatalogItem | None = None  # the item as it is now
    replaced: OutcomeMark | None = None  # the mark the deletion replaced (a failure...)


class Catalog(Protocol):
    def put_new(self, item: CatalogItem) -> WriteResult:
        """Write unless a live item has this URL in this dataset (one write, no read first)."""
        ...

    def put_newer(self, item: CatalogItem) -> WriteResult:
        """put_new, or replace a live item that comes from an older S3 event (update mode)."""
        ...

    def record_failure(self, record: FailureRecord) -> None: ...

    def mark(self, mark: OutcomeMark) -> bool:
        """Keep the outcome of a URL that has no live item; False (nothing written) when a
        live item holds the URL: the mark would say less than the item does."""
        ...

    def saw(self, item: CatalogItem, mark: OutcomeMark) -> None:
        """On the live item `item`: the last event of its URL that did not register (an
        overwrite called a duplicate), so reconcile knows that version had its outcome."""
        ...

    def remove(self, deleted: OutcomeMark, removal: Removal, sequencer: str) -> RemoveResult:
        """Mark the URL's live item removed, unless it comes from a later write than the
        deletion (`sequencer`: the deletion's; "" when unknown, as in our own events). With no
        live item, `deleted` (a mark of kind deleted) takes the URL's place."""
        ...


class Decision(NamedTuple):
    """A registration's outcome, a human detail for non-new outcomes, and the deletion it
    follows when the URL is registered again after one."""

    kind: OutcomeKind
    detail: str | None = None
    restores: Removal | None = None
    # The live item that kept the URL (a duplicate): reconcile's note of this event goes there.
    holder: CatalogItem | None = None


def register(catalog: Catalog, item: CatalogItem, update: bool) -> Decision:
    """Register one item; return what happened."""
    result = catalog.put_newer(item) if update else catalog.put_new(item)
    previous = result.previous
    if result.written:
        if previous is None or previous.event_id == item.event_id:
            return Decision(OutcomeKind.REGISTERED)
        if previous.removed is not None:
            when = previous.removed.deleted_at.isoformat()
            detail = f"registered again after its deletion at {when}"
            return Decision(OutcomeKind.REGISTERED, detail, restores=previous.removed)
        detail = f"replaced the version registered from {previous.event_id}"
        return Decision(OutcomeKind.UPDATED, detail)
    if previous is not None and previous.event_id == item.event_id:
        # Our own earlier attempt wrote it before dying: finish it, do not call it a duplicate.
        return Decision(OutcomeKind.REGISTERED)
    origin = previous.event_id if previous else "an earlier event"
    if update:
        detail = f"a newer version is already registered ({origin})"
    else:
        detail = f"URL already registered from {origin}"
    return Decision(OutcomeKind.DUPLICATE, detail, holder=previous)


def removal_detail(result: RemoveResult, event_id: str) -> str:
    """The human detail of a deletion's outcome."""
    if result.status is RemoveStatus.REMOVED:
        return "catalog item marked removed"
    if result.status is RemoveStatus.ALREADY:
        removal = result.item.removed if result.item is not None else None
        if removal is not None and removal.event_id == event_id:
            return "catalog item marked removed"
        return "already removed" + (f" by {removal.event_id}" if removal else "")
    if result.status is RemoveStatus.NEWER:
        return "a later write of the key is registered: nothing removed"
    if result.replaced is not None and result.replaced.kind is OutcomeKind.FAILED:
        return "was not registered (it had failed): its failure is settled"
    return "was not registered: nothing to remove"
