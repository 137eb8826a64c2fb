"""Registration rules: one catalog item per (dataset, object URL), whatever the redeliveries,
and who may append its manifest entry.

The catalog adapter does the conditional write; this module decides what its answer means
(new, our own earlier attempt, a duplicate, an update) and whether an earlier run of the
same event may still be appending the entry (its lease). Pure.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from media_ingest.records import CatalogItem, FailureRecord, Outcome, OutcomeKind, utcnow


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
    """What a conditional put answered: whether it wrote, the item it found or replaced, and
    that item's lease (who may still be appending its entry)."""

    written: bool
    previous: CatalogItem | None = None
    lease: Lease | None = None


@dataclass(frozen=True)
class Recorded:
    """An event's recorded outcome, and the lease on its item if it registered one."""

    outcome: Outcome
    lease: Lease | None = None


class Catalog(Protocol):
    def put_new(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        """Write only if no item has this URL in this dataset (one write, no read first). The
        item then carries its event's `registered` outcome (the ledger)."""
        ...

    def put_newer(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        """Write if absent or if the stored item comes from an older S3 event (update mode).
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


def decide(result: WriteResult, item: CatalogItem, update: bool) -> tuple[OutcomeKind, str | None]:
    """The outcome of one conditional put, and a human detail for non-new outcomes."""
    previous = result.previous
    if result.written:
        if previous is None or previous.event_id == item.event_id:
            return OutcomeKind.REGISTERED, None
        return OutcomeKind.UPDATED, f"replaced the version registered from {previous.event_id}"
    if previous is not None and previous.event_id == item.event_id:
        # Our own earlier attempt wrote it before dying: finish it, do not call it a duplicate.
        return OutcomeKind.REGISTERED, None
    origin = previous.event_id if previous else "an earlier event"
    if update:
        return OutcomeKind.DUPLICATE, f"a newer version is already registered ({origin})"
    return OutcomeKind.DUPLICATE, f"URL already registered from {origin}"


def register(
    catalog: Catalog,
    item: CatalogItem,
    update: bool,
    group: str | None = None,
    lease: Lease | None = None,
) -> tuple[OutcomeKind, str | None]:
    """Register one item; return its outcome and a human detail for non-new outcomes."""
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
