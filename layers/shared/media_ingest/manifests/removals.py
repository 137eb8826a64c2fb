"""The removal log: registered URLs whose objects were deleted (and registered again), listed
beside the manifest so an importer can act on them.

A manifest part is an Encord file of entries to import; a deletion cannot be written into a
part already imported. So each dataset also has a log, `removed-00001.json`, ..., listed in
`index.json` under `removals` exactly as parts are under `parts`: each line is a change,
`removed` (delete the URL from the platform) or `restored` (the key was registered again after
its deletion: import its entry again, from the part that lists it), in the order they were
recorded. A log part is sealed at `max_entries` changes and the next begins, so each write
rewrites a bounded part, never the dataset's history.

Concurrency and crashes as in manifests/writer.py: every write is conditional (If-None-Match
to create, If-Match to replace), a lost race re-reads and re-applies, changes are
deduplicated by (URL, change, event) against the open part and, for replayed outcomes,
against the log parts sealed since they were decided.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from media_ingest.errors import ErrorCode, TransientError
from media_ingest.manifests.writer import Conflict, ManifestIndex, PartInfo, Versioned
from media_ingest.records import UrlChange, utcnow


class RemovalPart(BaseModel):
    """One part of the removal log (its JSON is the file)."""

    dataset: str
    number: int
    sealed: bool = False
    changes: list[UrlChange] = Field(default_factory=list)

    def keys(self) -> set[tuple[str, str, str]]:
        return {_key(c) for c in self.changes}


class RemovalStore(Protocol):
    def removals_key(self, dataset: str, number: int) -> str: ...
    def read_removals(self, dataset: str, number: int) -> Versioned[RemovalPart] | None: ...
    def write_removals(
        self, dataset: str, number: int, part: RemovalPart, etag: str | None
    ) -> None: ...
    def read_index(self, dataset: str) -> Versioned[ManifestIndex] | None: ...
    def write_index(self, dataset: str, index: ManifestIndex, etag: str | None) -> None: ...


def _key(change: UrlChange) -> tuple[str, str, str]:
    return (change.object_url, change.change, change.event_id)


@dataclass
class RemovalLog:
    """Appends URL changes to a dataset's open removal-log part."""

    store: RemovalStore
    max_entries: int = 1000
    max_attempts: int = 25
    sleep: Callable[[float], None] = time.sleep
    _open: dict[str, int] = field(default_factory=dict)

    def record(
        self, dataset: str, changes: list[UrlChange], replayed_since: datetime | None = None
    ) -> int:
        """Add the changes not yet logged; returns how many were added."""
        pending = list({_key(c): c for c in changes}.values())
        if replayed_since is not None:
            pending = self._drop_sealed_since(dataset, pending, replayed_since)
        added = attempts = 0
        while pending:
            number = self._open_part(dataset)
            current = self.store.read_removals(dataset, number)
            part = current.value if current else RemovalPart(dataset=dataset, number=number)
            if part.sealed or len(part.changes) >= self.max_entries:
                self._open[dataset] = number + 1
                continue
            logged = part.keys()
            pending = [c for c in pending if _key(c) not in logged]
            if not pending:
                break
            room = self.max_entries - len(part.changes)
            batch, rest = pending[:room], pending[room:]
            part.changes.extend(batch)
            part.sealed = len(part.changes) >= self.max_entries
            try:
                self.store.write_removals(dataset, number, part, current.etag if current else None)
            except Conflict:
                attempts += 1
                if attempts >= self.max_attempts:
                    raise TransientError(
                        ErrorCode.MANIFEST_CONTENTION,
                        f"removal log part {number} of {dataset} kept changing; will retry",
                    ) from None
                self.sleep(min(2.0, 0.02 * 2 ** min(attempts, 7)) * random.random())
                continue
            added += len(batch)
            if current is None or part.sealed:
                self._record(dataset, number, part)
            pending = rest
        return added

    def _open_part(self, dataset: str) -> int:
        if dataset not in self._open:
            index = self.store.read_index(dataset)
            self._open[dataset] = index.value.open_removals if index else 1
        return self._open[dataset]

    def _record(self, dataset: str, number: int, part: RemovalPart) -> None:
        now = utcnow()
        info = PartInfo(
            number=number,
            key=self.store.removals_key(dataset, number),
            entries=len(part.changes),
            urls=len(part.changes),
            sealed=part.sealed,
            created_at=now,
            sealed_at=now if part.sealed else None,
        )
        next_open = number + 1 if part.sealed else number
        if part.sealed:
            self._open[dataset] = next_open
        for _ in range(self.max_attempts):
            current = self.store.read_index(dataset)
            index = current.value if current else ManifestIndex(dataset=dataset)
            try:
                self.store.write_index(
                    dataset,
                    index.merge_removals(info, next_open),
                    current.etag if current else None,
                )
                return
            except Conflict:
                self.sleep(0.05 * random.random())
        raise TransientError(ErrorCode.MANIFEST_CONTENTION, f"index of {dataset} kept changing")

    def _drop_sealed_since(
        self, dataset: str, pending: list[UrlChange], since: datetime
    ) -> list[UrlChange]:
        """A replayed change may already sit in a log part sealed after it was decided."""
        index = self.store.read_index(dataset)
        if index is None:
            return pending
        seen: set[tuple[str, str, str]] = set()
        for info in index.value.removals:
            if info.sealed and info.sealed_at is not None and info.sealed_at >= since:
                stored = self.store.read_removals(dataset, info.number)
                if stored is not None:
                    seen |= stored.value.keys()
        return [c for c in pending if _key(c) not in seen]
