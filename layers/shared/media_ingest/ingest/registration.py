"""Registration rules: one catalog item per (dataset, object URL), whatever the redeliveries.

The catalog adapter does the conditional write; this module decides what its answer means
(new, our own earlier attempt, a duplicate, an update). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media_ingest.records import CatalogItem, FailureRecord, OutcomeKind


@dataclass(frozen=True)
class WriteResult:
    """What a conditional put answered: whether it wrote, and the item it found or replaced."""

    written: bool
    previous: CatalogItem | None = None


class Catalog(Protocol):
    def put_new(self, item: CatalogItem) -> WriteResult:
        """Write only if no item has this URL in this dataset (one write, no read first)."""
        ...

    def put_newer(self, item: CatalogItem) -> WriteResult:
        """Write if absent or if the stored item comes from an older S3 event (update mode)."""
        ...

    def record_failure(self, record: FailureRecord) -> None: ...


def register(catalog: Catalog, item: CatalogItem, update: bool) -> tuple[OutcomeKind, str | None]:
    """Register one item; return its outcome and a human detail for non-new outcomes."""
    result = catalog.put_newer(item) if update else catalog.put_new(item)
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
