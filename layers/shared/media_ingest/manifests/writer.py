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
    """One manifest part: the Encord file's content, and whether it is sealed."""

    sections: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    sealed: bool = False

    @property
    def entry_count(self) -> int:
        return sum(len(entries) for entries in self.sections.values())

    @property
    def url_count(self) -> int:
        return sum(len(urls_of(e)) for entries in self.sections.values() for e in entries)

    def entry_keys(self) -> set[str]:
        return {urls_of(e)[0] for entries in self.sections.values() for e in entries}

    def add(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.sections.setdefault(entry.section, []).append(entry.payload)

    def to_encord(self) -> dict[str, Any]:
        """The part as the Encord file it is (platforms/encord.py owns the format)."""
        return encord.registration_file(self.sections)

    @classmethod
    def from_encord(cls, doc: dict[str, Any], sealed: bool) -> Part:
        return cls(sections=encord.file_sections(doc), sealed=sealed)


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
        """Add entries not yet present; returns how many were added."""
        pending = _unique(entries)
        too_big = [e for e in pending if len(e.urls) > self.max_urls]
        if too_big:
            raise ValueError(
                f"entry {too_big[0].key} has {len(too_big[0].urls):,} URLs; one file holds "
                f"at most {self.max_urls:,}"
            )
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
            present = part.entry_keys()
            pending = [e for e in pending if e.key not in present]
            if not pending:
                break
            batch = self._fitting(part, pending)
            rest = pending[len(batch) :]
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
                self.conflicts += 1
                if attempts >= self.max_attempts:
                    raise TransientError(
                        ErrorCode.MANIFEST_CONTENTION,
                        f"manifest part {number} of {dataset} kept changing; will retry",
                    ) from None
                self.sleep(min(2.0, 0.02 * 2 ** min(attempts, 7)) * random.random())
                continue
            added += len(batch)
            if batch and self.on_added is not None:
                self.on_added(dataset, batch)
            if current is None or part.sealed:
                self._record(dataset, number, part)
            pending = rest
        return added

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
        """A replayed entry may already sit in a part sealed after it was first produced."""
        index = self.store.read_index(dataset)
        if index is None:
            return pending
        seen: set[str] = set()
        for info in index.value.parts:
            if info.sealed and info.sealed_at is not None and info.sealed_at >= since:
                stored = self.store.read_part(dataset, info.number)
                if stored is not None:
                    seen |= stored.value.entry_keys()
        return [e for e in pending if e.key not in seen]


def _unique(entries: list[Entry]) -> list[Entry]:
    seen: set[str] = set()
    out = []
    for entry in entries:
        if entry.key not in seen:
            seen.add(entry.key)
            out.append(entry)
    return out
