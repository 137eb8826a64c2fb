"""Registration rules: one live catalog item per (dataset, object URL), whatever the
redeliveries; who may append its manifest entry; and what a deletion does to it.

The catalog adapter does the conditional writes; this module decides what their answers mean
(new, our own earlier attempt, a duplicate, an update, a registration after a deletion;
removed, already removed, superseded) and whether an earlier run of the same event may still
be appending the entry (its lease). Pure.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from media_ingest.records import (
    CatalogItem,
    FailureRecord,
    Outcome,
    OutcomeKind,
    OutcomeMark,
    Removal,
    UrlChange,
    utcnow,
)


@dataclass(frozen=True)
class Lease:
    """A run's claim on the entries of the items it registers: until `until` (the function's
    deadline), no other run appends them. Random per run, never the SQS message or request id
    (a redelivery is another run)."""

    token: str
    until: datetime

    @classmethod
    def for_run(cls, seconds_left: float) -> Lease:
        return cls(secrets.token_hex(8), utcnow() + timedelta(seconds=seconds_left))


@dataclass(frozen=True)
class WriteResult:
    """What a conditional put answered: whether it wrote, the item it found or replaced (a
    removed item too; None when there was none, or only an outcome mark), and that item's
    lease (who may still be appending its entry)."""

    written: bool
    previous: CatalogItem | None = None
    lease: Lease | None = None


@dataclass(frozen=True)
class Recorded:
    """An event's recorded outcome, and the lease on its item if it registered one."""

    outcome: Outcome
    lease: Lease | None = None


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
    def put_new(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        """Write unless a live item has this URL in this dataset (one write, no read first).
        The item then carries its event's `registered` outcome (the ledger)."""
        ...

    def put_newer(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        """put_new, or replace a live item that comes from an older S3 event (update mode).
        The outcome is recorded apart (`record_outcome`): a later update replaces the item."""
        ...

    def record_failure(self, record: FailureRecord) -> None: ...

    def record_outcome(self, outcome: Outcome) -> None:
        """Record an outcome no catalog write carries (first record of an event wins)."""
        ...

    def recorded(self, event_id: str, dataset: str, url: str) -> Recorded | None:
        """The outcome already recorded for this event, if any (a redelivery's question)."""
        ...

    def release(self, item: CatalogItem, lease: Lease) -> None:
        """Give up the lease on an item whose entry this run did not append after all."""
        ...

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
        deletion (`sequencer`: the deletion's; "" when unknown, as in our own events). A live
        item that carries its event's outcome moves it to an outcome record first (the
        ledger keeps it; a later registration may then replace the removed item). With no
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


def write(
    catalog: Catalog,
    item: CatalogItem,
    update: bool,
    group: str | None = None,
    lease: Lease | None = None,
) -> WriteResult:
    if update:
        return catalog.put_newer(item, group, lease)
    return catalog.put_new(item, group, lease)


def decide(result: WriteResult, item: CatalogItem, update: bool) -> Decision:
    """The outcome of one conditional put, and a human detail for non-new outcomes."""
    previous = result.previous
    if result.written:
        if previous is None or previous.event_id == item.event_id:
            return Decision(OutcomeKind.REGISTERED)
        if previous.removed is not None:
            detail = restored_detail(previous.removed)
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


def restored_detail(removal: Removal) -> str:
    """The detail of a registration that replaced a removed item (the catalog keeps the
    removal it followed on the item, so a replay says the same)."""
    return f"registered again after its deletion at {removal.deleted_at.isoformat()}"


def restored_change(item: CatalogItem) -> UrlChange:
    """The removal log's line for a URL registered again after its deletion."""
    return UrlChange(
        object_url=item.object_url,
        key=item.key,
        change="restored",
        at=item.event_time,
        event_id=item.event_id,
    )


def register(
    catalog: Catalog,
    item: CatalogItem,
    update: bool,
    group: str | None = None,
    lease: Lease | None = None,
) -> Decision:
    """Register one item; return what happened."""
    return decide(write(catalog, item, update, group, lease), item, update)


@dataclass(frozen=True)
class Earlier:
    """The item was written by an earlier run of this same event."""

    decided_at: datetime
    # That run's lease has not expired: it may still append the entry itself.
    held: bool


def earlier_run(
    result: WriteResult, item: CatalogItem, lease: Lease | None, now: datetime
) -> Earlier | None:
    """Whether an earlier run of this event wrote the item (not this run: the same event
    twice in one batch is one registration, appended once)."""
    previous = result.previous
    if result.written or previous is None or previous.event_id != item.event_id:
        return None
    if lease is not None and result.lease is not None and result.lease.token == lease.token:
        return None
    held = result.lease is not None and result.lease.until > now
    return Earlier(previous.registered_at, held)


def carried_by_item(kind: OutcomeKind, update: bool) -> bool:
    """Whether the catalog write itself records this outcome (the ledger, docs/architecture.md):
    a new item in a dataset that never replaces items carries its `registered` outcome;
    every other outcome is an outcome record of its own (a failure's beside its failure
    record, which is the failure log's: the extract function writes them for archive
    members too, and a member is no event)."""
    return kind is OutcomeKind.REGISTERED and not update


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
