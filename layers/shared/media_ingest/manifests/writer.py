"""Incremental manifests: parts, their index, and the append algorithm under concurrency.

A dataset's manifest is a series of parts (`part-00001.json`, ...), each a complete Encord
cloud-registration JSON file that imports as it is, plus an index. Parts are sealed when
full (`max_entries`, or before the next entry's URLs would pass Encord's per-file limit).

Concurrency (docs/architecture.md, "Manifest appends under concurrency"): every part write
is an S3 conditional write (`IfNoneMatch="*"` to create, `IfMatch=<etag>` to replace), so
no write is ever lost. What keeps writers from queueing on one object is that each writer
*holds* one open part and keeps what it last wrote in memory: a commit is then one PUT, no
read. A writer starts on the index's open part (the *main* part, shared); when another
writer's write gets in between its read and its write, it moves to a part of its own,
numbered by `PartNumbers` (an atomic counter), so a commit loses at most two races: one
to a stale view, one to a concurrent writer. A part whose writer went away is adopted by
the next writer that needs a part once it has been idle for `orphan_seconds`. Writers of a
dataset whose overwrites update share its main part instead (`_shared`): an update must
import after the entry it replaces, and parts import in number order.

Exactly once: an entry is appended only by the one run that registered its item (the
catalog's conditional write and its lease decide that; ingest/batch_runner.py). A run that
takes over an entry an earlier run may have written first asks `present()`, which reads
every part written since the entry was decided. Cost per append is bounded by the part
size, never by the dataset's history.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field, PrivateAttr

from media_ingest.errors import ErrorCode, TransientError
from media_ingest.observability import logger
from media_ingest.platforms import encord
from media_ingest.platforms.encord import Entry, urls_of
from media_ingest.records import utcnow

# S3 stamps LastModified to the second with its own clock: a part written just after an
# entry was decided may look a moment older than that decision.
CLOCK_SLACK = timedelta(seconds=15)
# Parallel reads when looking for entries in the parts written since a moment (rare path).
PRESENT_READERS = 8
# Tries at the index before its update waits for the writer's next one (about a second).
INDEX_ATTEMPTS = 8


class Part(BaseModel):
    """One manifest part: the Encord file's content, and whether it is sealed.

    `upsert_metadata`: the part belongs to a dataset whose overwrites update (UpdateDatasets),
    so Encord replaces the metadata of a URL it holds already (platforms/encord.py)."""

    sections: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    sealed: bool = False
    upsert_metadata: bool = False
    # The bytes as stored, kept until `add` or `replace` changes them (the only mutators:
    # the byte cap is checked on every commit, and a full part is megabytes of JSON).
    _encoded: bytes | None = PrivateAttr(default=None)

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
            self._encoded = None

    def replace(self, entry: Entry) -> None:
        """Put an updated entry where the entry of its URL is (an overwrite in an update
        dataset: one entry per URL in a part, carrying the newest metadata)."""
        held = self.sections.get(entry.section, [])
        for position, payload in enumerate(held):
            if urls_of(payload)[0] == entry.key:
                held[position] = entry.payload
                self._encoded = None
                return
        raise KeyError(entry.key)

    def plus(self, updates: Iterable[Entry], entries: Iterable[Entry], upsert: bool) -> Part:
        """A new part: this one's entries with `updates` in their place, then `entries`
        (this one is left as it is)."""
        grown = Part(
            sections={name: list(rows) for name, rows in self.sections.items()},
            upsert_metadata=upsert,
        )
        for entry in updates:
            grown.replace(entry)
        grown.add(entries)
        return grown

    def to_encord(self) -> dict[str, Any]:
        """The part as the Encord file it is (platforms/encord.py owns the format)."""
        return encord.registration_file(self.sections, upsert_metadata=self.upsert_metadata)

    def encoded(self) -> bytes:
        """The part's bytes as stored (compact UTF-8 JSON): what `max_bytes` counts."""
        if self._encoded is None:
            self._encoded = _encode(self.to_encord())
        return self._encoded

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
    """`index.json` beside the parts: every sealed part (with when it was sealed) and the
    main open part, and the removal log's parts (manifests/removals.py: URLs deleted from
    the bucket). Parts that writers hold open are in the bucket listing, and enter the index
    when sealed."""

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

    def sealed(self) -> set[int]:
        return {p.number for p in self.parts if p.sealed}

    def highest(self) -> int:
        return max([self.open_part, *(p.number for p in self.parts)])

    def first_unsealed(self) -> int:
        """The lowest part number not recorded as sealed: open parts are at or above it."""
        sealed, number = self.sealed(), 1
        while number in sealed:
            number += 1
        return number


def _merged(known_parts: list[PartInfo], info: PartInfo) -> list[PartInfo]:
    parts = {p.number: p for p in known_parts}
    known = parts.get(info.number)
    if known is None or (info.sealed and not known.sealed) or info.entries > known.entries:
        if known is not None:
            info = info.model_copy(update={"created_at": known.created_at})
        parts[info.number] = info
    return sorted(parts.values(), key=lambda p: p.number)


@dataclass(frozen=True)
class Versioned[T]:
    value: T
    etag: str


@dataclass(frozen=True)
class Listed:
    """A part as the bucket listing shows it."""

    number: int
    modified: datetime


class Conflict(Exception):
    """A conditional write lost a race (412 PreconditionFailed, 409 ConditionalRequestConflict)."""


class PartStore(Protocol):
    def part_key(self, dataset: str, number: int) -> str: ...
    def read_part(self, dataset: str, number: int) -> Versioned[Part] | None: ...
    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> str | None:
        """Create (etag None) or replace exactly version `etag`; the new ETag if known.
        Raises Conflict when the condition fails."""
        ...

    def read_index(self, dataset: str) -> Versioned[ManifestIndex] | None: ...
    def write_index(self, dataset: str, index: ManifestIndex, etag: str | None) -> None: ...
    def list_parts(self, dataset: str, after: int = 0) -> list[Listed]:
        """The dataset's parts numbered above `after`, with when each was last written."""
        ...


class PartNumbers(Protocol):
    def next(self, dataset: str, floor: int) -> int:
        """A part number never handed out before, above `floor` (the highest the index knows)."""
        ...


@dataclass
class ListedNumbers:
    """Part numbers from the bucket listing: the highest there plus one. Two writers may get
    the same number; the create-only write lets one have it and the other asks again. The
    stack numbers with an atomic counter instead (adapters/catalog.py DynamoPartNumbers)."""

    store: PartStore

    def next(self, dataset: str, floor: int) -> int:
        listed = self.store.list_parts(dataset, after=floor)
        return max([floor, *(p.number for p in listed)]) + 1


@dataclass
class _Held:
    """The part a writer appends to, as it last saw it (read, or written by itself)."""

    number: int
    part: Part
    etag: str | None  # None: the part does not exist yet (the next write creates it)
    main: bool  # the index's open part, which any writer may join
    fresh: bool  # read in this append: a lost race now means a concurrent writer
    known: bool = True  # False: a write of unknown result came between: read it again


@dataclass
class ManifestWriter:
    """Appends entries to a dataset's manifest under optimistic concurrency (module doc)."""

    store: PartStore
    max_entries: int = 1000
    # Encord's per-file limit on URLs (a group entry carries many): a part rolls over first.
    max_urls: int = encord.MAX_URLS_PER_FILE
    # Bytes of one part as stored (None: no cap): every append rewrites the open part, so
    # this bounds each append's memory and transfer. An entry larger than the cap alone
    # gets a part of its own.
    max_bytes: int | None = None
    # Datasets whose overwrites update (UpdateDatasets): their parts carry upsert_metadata.
    update_datasets: frozenset[str] = frozenset()
    max_attempts: int = 25
    sleep: Callable[[float], None] = time.sleep
    # Called after each part write with the entries it added (fault injection hooks in here).
    on_added: Callable[[str, list[Entry]], None] | None = None
    # Where new part numbers come from; None: the bucket listing (ListedNumbers).
    numbers: PartNumbers | None = None
    # A part nobody has written for this long is taken over by a writer that needs one.
    orphan_seconds: float = 600.0
    clock: Callable[[], datetime] = utcnow
    # The part this writer holds, per dataset (kept across invocations of a warm function).
    _held: dict[str, _Held] = field(default_factory=dict)
    conflicts: int = 0
    commits: int = 0
    # The most races lost before one commit went through (the design bounds it at two).
    worst_streak: int = 0
    index_conflicts: int = 0
    # Index updates that found the index changing too often: written with the next one.
    _unindexed: dict[str, list[Callable[[ManifestIndex], ManifestIndex]]] = field(
        default_factory=dict
    )

    def append(
        self, dataset: str, entries: list[Entry], replayed_since: datetime | None = None
    ) -> int:
        """Add the entries not yet present (an entry with new metadata for a URL the held
        part holds replaces it); returns how many were added or replaced.

        `replayed_since`: the entries may already be in a part written since then (an
        earlier run of their event decided them then): those are left out.
        """
        pending = _unique(entries)
        too_big = [e for e in pending if len(e.urls) > self.max_urls]
        if too_big:
            raise ValueError(
                f"entry {too_big[0].key} has {len(too_big[0].urls):,} URLs; one file holds "
                f"at most {self.max_urls:,}"
            )
        self.flush_index(dataset)
        if replayed_since is not None and pending:
            found = self.present(dataset, pending, replayed_since)
            pending = [e for e in pending if e.key not in found]
        added = lost = streak_start = 0
        while pending:
            held = self._current(dataset)
            if self._full(held.part):
                self._roll(dataset, held)
                continue
            # An entry of a URL the part holds is a redelivery (the same payload: dropped) or
            # an update (new metadata: it takes the old entry's place, in this write).
            present = held.part.payloads()
            pending = [e for e in pending if present.get(e.key) != e.payload]
            if not pending:
                break
            try:
                written, rest = self._commit(dataset, held, pending)
            except Conflict:
                lost += 1
                self.conflicts += 1
                self.worst_streak = max(self.worst_streak, lost - streak_start)
                if lost >= self.max_attempts:
                    raise TransientError(
                        ErrorCode.MANIFEST_CONTENTION,
                        f"manifest part {held.number} of {dataset} kept changing; will retry",
                    ) from None
                self._after_conflict(dataset, held, lost - streak_start)
                continue
            added += written
            pending = rest
            streak_start = lost
        return added

    def _commit(self, dataset: str, held: _Held, pending: list[Entry]) -> tuple[int, list[Entry]]:
        """One conditional write of the held part with the updates it holds the URLs of and
        the leading new entries that fit: how many it took, and what is left for the next
        part. Raises Conflict when another write got there first."""
        present = held.part.entry_keys()
        updates = [e for e in pending if e.key in present]
        fresh = [e for e in pending if e.key not in present]
        batch = self._fitting(held.part, fresh)
        rest = fresh[len(batch) :]
        # Roll over before any limit would be exceeded: full of entries or bytes, or the next
        # entry would not fit (its URLs or its bytes; a part with no room is sealed as it is).
        grown = held.part.plus(updates, batch, upsert=dataset in self.update_datasets)
        grown.sealed = self._full(grown) or (bool(rest) and not self._fitting(grown, rest[:1]))
        # Until the write is known to have happened, the view is not trusted: a writer that
        # dies or fails mid-write reads the part again next time.
        self._held[dataset] = replace(held, known=False)
        etag = self.store.write_part(dataset, held.number, grown, held.etag)
        self.commits += 1
        if etag is not None:
            self._held[dataset] = _Held(held.number, grown, etag, held.main, fresh=False)
        if (updates or batch) and self.on_added is not None:
            self.on_added(dataset, updates + batch)
        if grown.sealed:
            self._sealed(dataset, held.number, grown, held.main)
        elif held.etag is None and held.main:
            self._record(dataset, held.number, grown)
        return len(updates) + len(batch), rest

    def present(self, dataset: str, entries: list[Entry], since: datetime) -> set[str]:
        """The keys of those `entries` a part written at or after `since` (or sealed since)
        holds, payload for payload (an update's URL is in an earlier part with its old
        metadata: not present)."""
        if not entries:
            return set()
        index = self.store.read_index(dataset)
        numbers: set[int] = set()
        after = 0
        if index is not None:
            numbers = {
                p.number
                for p in index.value.parts
                if p.sealed_at is not None and p.sealed_at >= since - CLOCK_SLACK
            }
            after = index.value.first_unsealed() - 1
        numbers |= {
            p.number
            for p in self.store.list_parts(dataset, after=after)
            if p.modified >= since - CLOCK_SLACK
        }
        with ThreadPoolExecutor(PRESENT_READERS) as pool:
            parts = pool.map(lambda n: self.store.read_part(dataset, n), sorted(numbers))
            held = {
                _canonical(e) for p in parts if p is not None for e in p.value.payloads().values()
            }
        return {e.key for e in entries if _canonical(e.payload) in held}

    def _current(self, dataset: str) -> _Held:
        held = self._held.get(dataset)
        if held is not None and held.known:
            return held
        if held is not None:
            number, main = held.number, held.main
        else:
            index = self.store.read_index(dataset)
            if index is not None:
                number, main = index.value.open_part, True
            elif self._shared(dataset):
                number, main = 1, True
            else:
                # A new dataset: the writer numbered first makes the main part (and the index);
                # writers starting beside it take parts of their own, and no index write each.
                number = self._allocate(dataset, 0)
                main = number == 1
        held = self._read(dataset, number, main)
        self._held[dataset] = held
        return held

    def _shared(self, dataset: str) -> bool:
        """Whether all writers of the dataset share its main part. An update (UpdateDatasets)
        must import after the URL's earlier entry, and parts import in number order: with one
        open part at a time, numbers follow time, and an update replaces the entry in the
        open part or lands in a part numbered above the one holding it."""
        return dataset in self.update_datasets

    def _read(self, dataset: str, number: int, main: bool) -> _Held:
        got = self.store.read_part(dataset, number)
        if got is None:
            return _Held(number, Part(), None, main, fresh=True)
        return _Held(number, got.value, got.etag, main, fresh=True)

    def _after_conflict(self, dataset: str, held: _Held, streak: int) -> None:
        """Who goes where after a lost race (module doc): a view kept from an earlier append
        is read again; a race lost on a fresh read moves this writer to a part of its own.
        A dataset whose overwrites update stays on its one main part (`_shared`)."""
        if self._shared(dataset):
            self.sleep(min(2.0, 0.02 * 2 ** min(streak, 7)) * random.random())
            self._held[dataset] = self._read(dataset, held.number, main=True)
            return
        if not held.fresh:
            now = self._read(dataset, held.number, held.main)
            mine = held.etag is not None and now.part.entry_keys() == held.part.entry_keys()
            if held.main or mine:  # the main part is shared; an unchanged part is still ours
                self._held[dataset] = now
                return
        self.sleep(0.005 * random.random())  # two writers that collided do not again at once
        self._held[dataset] = self._fresh_part(dataset, held.number)

    def _sealed(self, dataset: str, number: int, part: Part, main: bool) -> None:
        """This writer sealed its part: the index records it, and the writer moves on (to a
        new main part when it held the main one, else to an orphan or a new part)."""
        info = self._info(dataset, number, part)
        if main:
            following = self._successor(dataset, number)
            self._merge_index(dataset, lambda index: index.merge(info, following))
            self._held[dataset] = _Held(following, Part(), None, main=True, fresh=True)
            return
        self._merge_index(dataset, lambda index: index.merge(info, index.open_part))
        self._held[dataset] = self._orphan(dataset) or self._fresh_part(dataset, number)

    def _roll(self, dataset: str, held: _Held) -> None:
        """The part read is full: sealed by a writer that may have died before the index
        heard of it (recorded now, a no-op otherwise). A full main part that the index still
        names is replaced as main; else the writer joins the main part the index names."""
        held.part.sealed = True
        self._record(dataset, held.number, held.part)
        if not held.main:
            self._held[dataset] = self._orphan(dataset) or self._fresh_part(dataset, held.number)
            return
        index = self.store.read_index(dataset)
        if index is not None and index.value.open_part != held.number:
            self._held[dataset] = self._read(dataset, index.value.open_part, main=True)
            return
        following = self._successor(dataset, held.number)
        self._merge_index(dataset, lambda current: _with_open(current, following))
        self._held[dataset] = _Held(following, Part(), None, main=True, fresh=True)

    def _successor(self, dataset: str, number: int) -> int:
        """The main part after `number`, when it is full. Writers of a dataset that updates
        all take `number + 1`: one open part at a time even when the index lags behind a seal
        (two writers that each met the full part would otherwise open two, and an update
        written to the lower one after its URL's entry went to the higher one would import
        first). Other datasets take a number no one else has."""
        return number + 1 if self._shared(dataset) else self._allocate(dataset, number)

    def _fresh_part(self, dataset: str, floor: int) -> _Held:
        return _Held(self._allocate(dataset, floor), Part(), None, main=False, fresh=True)

    def _allocate(self, dataset: str, floor: int) -> int:
        numbers = self.numbers or ListedNumbers(self.store)
        return numbers.next(dataset, floor)

    def _orphan(self, dataset: str) -> _Held | None:
        """An open part nobody has written for `orphan_seconds` (its writer went away)."""
        index = self.store.read_index(dataset)
        if index is None:
            return None
        sealed, main = index.value.sealed(), index.value.open_part
        idle_since = self.clock() - timedelta(seconds=self.orphan_seconds)
        listed = self.store.list_parts(dataset, after=index.value.first_unsealed() - 1)
        candidates = [
            p.number
            for p in listed
            if p.number not in sealed and p.number != main and p.modified < idle_since
        ]
        random.shuffle(candidates)  # writers looking at once take different ones
        for number in candidates[:3]:
            held = self._read(dataset, number, main=False)
            if held.etag is None:
                continue
            if self._full(held.part):
                held.part.sealed = True
                self._record(dataset, number, held.part)  # sealed but never recorded
                continue
            return held
        return None

    def _fitting(self, part: Part, pending: list[Entry]) -> list[Entry]:
        """The leading entries that fit the part's room in entries, URLs and bytes."""
        room = self.max_entries - part.entry_count
        urls = part.url_count
        size = len(part.encoded()) if self.max_bytes is not None else 0
        batch: list[Entry] = []
        for entry in pending[:room]:
            if urls + len(entry.urls) > self.max_urls:
                break
            grown = size + len(_encode(entry.payload)) + 1  # and its comma
            if (
                self.max_bytes is not None
                and grown > self.max_bytes
                and part.entry_count + len(batch)
            ):
                break
            batch.append(entry)
            urls += len(entry.urls)
            size = grown
        return batch

    def _full(self, part: Part) -> bool:
        """No entry may join the part: sealed, or full of entries or of bytes."""
        return (
            part.sealed
            or part.entry_count >= self.max_entries
            or (self.max_bytes is not None and len(part.encoded()) >= self.max_bytes)
        )

    def _info(self, dataset: str, number: int, part: Part) -> PartInfo:
        now = self.clock()
        return PartInfo(
            number=number,
            key=self.store.part_key(dataset, number),
            entries=part.entry_count,
            urls=part.url_count,
            sealed=part.sealed,
            created_at=now,
            sealed_at=now if part.sealed else None,
        )

    def _record(self, dataset: str, number: int, part: Part) -> None:
        """The index learns of a part: the main part when it is created, any part sealed;
        the main part it names is the one created (a new dataset's first part)."""
        info = self._info(dataset, number, part)
        opened = 0 if part.sealed else number
        self._merge_index(dataset, lambda index: index.merge(info, opened))

    def _merge_index(
        self, dataset: str, change: Callable[[ManifestIndex], ManifestIndex], attempts: int = 0
    ) -> bool:
        """Apply `change`, and any the index has not taken yet, in one conditional write.

        The index only summarises what the parts say (each part's metadata says whether it is
        sealed), so it never holds an append up for long: when it keeps changing under this
        writer, the change waits for this writer's next index write."""
        pending = self._unindexed.setdefault(dataset, [])
        pending.append(change)
        for attempt in range(attempts or INDEX_ATTEMPTS):
            current = self.store.read_index(dataset)
            index = current.value if current else ManifestIndex(dataset=dataset)
            changed = index
            for each in pending:
                changed = each(changed)
            try:
                if current is None or not _same(changed, index):  # else: already recorded
                    self.store.write_index(dataset, changed, current.etag if current else None)
            except Conflict:
                self.index_conflicts += 1
                self.sleep(min(0.2, 0.01 * 2**attempt) * random.random())
                continue
            pending.clear()
            return True
        logger.warning(
            "manifest index kept changing: its update waits for this writer's next one",
            extra={"dataset": dataset, "updates": len(pending)},
        )
        return False

    def flush_index(self, dataset: str) -> bool:
        """Write the index updates still waiting (one attempt); True when none wait."""
        if not self._unindexed.get(dataset):
            return True
        return self._merge_index(dataset, lambda index: index, attempts=1)


def _same(a: ManifestIndex, b: ManifestIndex) -> bool:
    return a.open_part == b.open_part and a.parts == b.parts


def _with_open(index: ManifestIndex, number: int) -> ManifestIndex:
    return index.model_copy(
        update={"open_part": max(index.open_part, number), "updated_at": utcnow()}
    )


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


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
