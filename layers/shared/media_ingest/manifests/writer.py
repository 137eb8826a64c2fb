"""Incremental manifests: parts, their index, and the conditional append algorithm.

A dataset's manifest is a series of parts (`part-00001.json`, ...), each a complete Encord
cloud-registration JSON file that imports as it is, plus an index listing them. New entries
go into the one open part; it is sealed when full and the next part begins.

Concurrency: every part write is an S3 conditional write (`IfNoneMatch="*"` to create,
`IfMatch=<etag>` to replace), so two writers racing on one part cannot both win: the loser
re-reads and re-applies. Entries are deduplicated by URL against the part they go into,
and, for replayed outcomes, against the parts sealed since they were first produced.
Cost per append is bounded by the part size, never by the dataset's history.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from media_ingest.errors import ErrorCode, TransientError
from media_ingest.platforms import encord
from media_ingest.platforms.encord import Entry, urls_of
from media_ingest.records import utcnow


class Part(BaseModel):
    """One manifest part: the Encord file's content, and whether it is sealed.

    `upsert_metadata`: the part belongs to a dataset whose overwrites update (UpdateDatasets),
    so Encord replaces the metadata of a URL it holds already (platforms/encord.py)."""

    sections: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    sealed: bool = False
    upsert_metadata: bool = False

    @property
    def entry_count(self) -> int:
        return sum(len(entries) for entries in self.sections.values())

    @property
    def url_count(self) -> int:
        return sum(len(urls_of(e)) for entries in self.sections.values() for e in entries)

    def entry_keys(self) -> set[str]:
        return set(self.payloads())

    def payloads(self) -> dict[str, dict[str, Any]]:
        """Each entry's payload by its key (first URL)."""
        return {urls_of(e)[0]: e for entries in self.sections.values() for e in entries}

    def add(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.sections.setdefault(entry.section, []).append(entry.payload)

    def replace(self, entry: Entry) -> None:
        """Put an updated entry where the entry of its URL is (an overwrite in an update
        dataset: one entry per URL in a part, carrying the newest metadata)."""
        held = self.sections.get(entry.section, [])
        for position, payload in enumerate(held):
            if urls_of(payload)[0] == entry.key:
                held[position] = entry.payload
                return
        raise KeyError(entry.key)

    def to_encord(self) -> dict[str, Any]:
        """The part as the Encord file it is (platforms/encord.py owns the format)."""
        return encord.registration_file(self.sections, upsert_metadata=self.upsert_metadata)

    @classmethod
    def from_encord(cls, doc: dict[str, Any], sealed: bool) -> Part:
        return cls(
            sections=encord.file_sections(doc),
            sealed=sealed,
            upsert_metadata=bool(doc.get("upsert_metadata", False)),
        )


class PartInfo(BaseModel):
    number: int
    key: str
    entries: int
    urls: int
    sealed: bool
    created_at: datetime
    sealed_at: datetime | None = None


class ManifestIndex(BaseModel):
    """`index.json` beside the parts: every part, which is open, and when each was sealed;
    and the removal log's parts (manifests/removals.py: URLs deleted from the bucket)."""

    dataset: str
    format: str = "encord-json"
    open_part: int = 1
    parts: list[PartInfo] = Field(default_factory=list)
    open_removals: int = 1
    removals: list[PartInfo] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)

    def merge(self, info: PartInfo, next_open: int) -> ManifestIndex:
        """Record a part's state; monotonic, so concurrent merges commute."""
        return self.model_copy(
            update={
                "open_part": max(self.open_part, next_open),
                "parts": _merged(self.parts, info),
                "updated_at": utcnow(),
            }
        )

    def merge_removals(self, info: PartInfo, next_open: int) -> ManifestIndex:
        """Record a removal-log part's state, as `merge` does for manifest parts."""
        return self.model_copy(
            update={
                "open_removals": max(self.open_removals, next_open),
                "removals": _merged(self.removals, info),
                "updated_at": utcnow(),
            }
        )


def _merged(known_parts: list[PartInfo], info: PartInfo) -> list[PartInfo]:
    parts = {p.number: p for p in known_parts}
    known = parts.get(info.number)
    if known is None or (info.sealed and not known.sealed) or info.entries > known.entries:
        parts[info.number] = info
    return sorted(parts.values(), key=lambda p: p.number)


@dataclass(frozen=True)
class Versioned[T]:
    value: T
    etag: str


class Conflict(Exception):
    """A conditional write lost a race (412 PreconditionFailed, 409 ConditionalRequestConflict)."""


class PartStore(Protocol):
    def part_key(self, dataset: str, number: int) -> str: ...
    def read_part(self, dataset: str, number: int) -> Versioned[Part] | None: ...
    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> None: ...
    def read_index(self, dataset: str) -> Versioned[ManifestIndex] | None: ...
    def write_index(self, dataset: str, index: ManifestIndex, etag: str | None) -> None: ...


@dataclass
class ManifestWriter:
    """Appends entries to a dataset's open part under optimistic concurrency."""

    store: PartStore
    max_entries: int = 1000
    # Encord's per-file limit on URLs (a group entry carries many): a part rolls over first.
    max_urls: int = encord.MAX_URLS_PER_FILE
    # Datasets whose overwrites update (UpdateDatasets): their parts carry upsert_metadata.
    update_datasets: frozenset[str] = frozenset()
    max_attempts: int = 25
    sleep: Callable[[float], None] = time.sleep
    # Called after each part write with the entries it added (fault injection hooks in here).
    on_added: Callable[[str, list[Entry]], None] | None = None
    # Which part was open last time, per dataset: saves reading the index on warm starts.
    _open: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0

    def append(
        self, dataset: str, entries: list[Entry], replayed_since: datetime | None = None
    ) -> int:
        """Add entries not yet present (an entry with new metadata for a URL the open part
        holds replaces it); returns how many were added or replaced."""
        pending = _unique(entries)
        self._check_fits(pending)
        if replayed_since is not None:
            pending = self._drop_sealed_since(dataset, pending, replayed_since)
        added = attempts = 0
        while pending:
            number = self._open_part(dataset)
            current = self.store.read_part(dataset, number)
            part = current.value if current else Part()
            if part.sealed or part.entry_count >= self.max_entries:
                self._open[dataset] = number + 1
                continue
            part.upsert_metadata = dataset in self.update_datasets
            # Decided again after a lost race: `pending` changes only once a write succeeds.
            updates, batch, rest = self._plan(part, pending)
            if not (updates or batch or rest):
                break
            for entry in updates:
                part.replace(entry)
            part.add(batch)
            # Roll over before either Encord limit would be exceeded: full of entries, or
            # the next entry's URLs would not fit (a part with no room is sealed as it is).
            part.sealed = part.entry_count >= self.max_entries or (
                bool(rest) and part.url_count + len(rest[0].urls) > self.max_urls
            )
            try:
                self.store.write_part(dataset, number, part, current.etag if current else None)
            except Conflict:
                attempts += 1
                self._back_off(attempts, f"manifest part {number} of {dataset}")
                continue
            added += len(batch) + len(updates)
            if (batch or updates) and self.on_added is not None:
                self.on_added(dataset, updates + batch)
            if current is None or part.sealed:
                self._record(dataset, number, part)
            pending = rest
        return added

    def _check_fits(self, pending: list[Entry]) -> None:
        too_big = [e for e in pending if len(e.urls) > self.max_urls]
        if too_big:
            raise ValueError(
                f"entry {too_big[0].key} has {len(too_big[0].urls):,} URLs; one file holds "
                f"at most {self.max_urls:,}"
            )

    def _back_off(self, attempts: int, what: str) -> None:
        """After a lost race: wait (jittered, growing), or give up as transient."""
        self.conflicts += 1
        if attempts >= self.max_attempts:
            raise TransientError(
                ErrorCode.MANIFEST_CONTENTION, f"{what} kept changing; will retry"
            ) from None
        self.sleep(min(2.0, 0.02 * 2 ** min(attempts, 7)) * random.random())

    def _plan(
        self, part: Part, pending: list[Entry]
    ) -> tuple[list[Entry], list[Entry], list[Entry]]:
        """What one write of the open part does: the updates it takes in place, the new
        entries that fit it, and the rest (for the next part). An entry of a URL the part
        holds is a redelivery (the same payload: dropped) or an update (new metadata: it
        takes the old entry's place)."""
        present = part.payloads()
        updates = [e for e in pending if e.key in present and present[e.key] != e.payload]
        fresh = [e for e in pending if e.key not in present]
        batch = self._fitting(part, fresh)
        return updates, batch, fresh[len(batch) :]

    def _fitting(self, part: Part, pending: list[Entry]) -> list[Entry]:
        """The leading entries that fit the part's room in entries and in URLs."""
        room = self.max_entries - part.entry_count
        urls = part.url_count
        batch: list[Entry] = []
        for entry in pending[:room]:
            if urls + len(entry.urls) > self.max_urls:
                break
            batch.append(entry)
            urls += len(entry.urls)
        return batch

    def _open_part(self, dataset: str) -> int:
        if dataset not in self._open:
            index = self.store.read_index(dataset)
            self._open[dataset] = index.value.open_part if index else 1
        return self._open[dataset]

    def _record(self, dataset: str, number: int, part: Part) -> None:
        now = utcnow()
        info = PartInfo(
            number=number,
            key=self.store.part_key(dataset, number),
            entries=part.entry_count,
            urls=part.url_count,
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
                    dataset, index.merge(info, next_open), current.etag if current else None
                )
                return
            except Conflict:
                self.sleep(0.05 * random.random())
        raise TransientError(ErrorCode.MANIFEST_CONTENTION, f"index of {dataset} kept changing")

    def _drop_sealed_since(
        self, dataset: str, pending: list[Entry], since: datetime
    ) -> list[Entry]:
        """A replayed entry may already sit in a part sealed after it was first produced
        (the very payload: an update's URL is in an earlier part with its old metadata)."""
        index = self.store.read_index(dataset)
        if index is None:
            return pending
        seen: set[str] = set()
        for info in index.value.parts:
            if info.sealed and info.sealed_at is not None and info.sealed_at >= since:
                stored = self.store.read_part(dataset, info.number)
                if stored is not None:
                    seen |= {_canonical(p) for p in stored.value.payloads().values()}
        return [e for e in pending if _canonical(e.payload) not in seen]


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _unique(entries: list[Entry]) -> list[Entry]:
    seen: set[str] = set()
    out = []
    for entry in entries:
        if entry.key not in seen:
            seen.add(entry.key)
            out.append(entry)
    return out
