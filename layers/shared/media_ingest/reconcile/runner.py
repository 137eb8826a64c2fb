"""One reconcile of `s3://bucket/prefix`, resumable: the catalog's rows into a snapshot, the
listing against it, then the rows the listing did not show.

Reads no object bytes: the listing (ListObjectsV2 pages, or an S3 Inventory report), one
filtered scan of the catalog, and, for the candidates only, a consistent re-read of their
rows and a HeadObject (an event processed meanwhile, or an object changed since it was
listed, is not a finding). With `apply`, each finding is enqueued on the ingest queue as the
live path would have received it (rules.py: stable identities, so a rerun adds nothing);
without, it is counted and sampled. The state is saved after every batch: an interruption
loses at most the batch in flight, which a rerun redoes.

Over interfaces (the catalog's rows, a lister, an object lookup, the queue, a state store);
never creates a client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from media_ingest.groups.rules import GroupRoutes
from media_ingest.listing import ListedObject, Lister, Position, RateLimit, save_atomically
from media_ingest.reconcile.rules import (
    Finding,
    RowState,
    classify,
    classify_unlisted,
    created_body,
    removed_body,
)
from media_ingest.reconcile.snapshot import Snapshot
from media_ingest.records import utcnow
from media_ingest.routing import Router
from media_ingest.settings import UrlStyle
from media_ingest.urls import object_url

BATCH = 100  # objects or rows per step: one consistent read, one save of the state
SQS_BATCH = 10
SAMPLES = 10

Phase = Literal["snapshot", "listing", "deletions", "done"]


class CatalogRows(Protocol):
    def scan(
        self, bucket: str, prefix: str, start: dict[str, object] | None
    ) -> Iterator[tuple[list[RowState], dict[str, object] | None]]:
        """The rows of objects under s3://bucket/prefix, page by page, each with the key to
        resume after it (None after the last)."""
        ...

    def read(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], RowState]:
        """The rows of these (dataset, object URL) pairs as they are now (consistent)."""
        ...


class ObjectStat(Protocol):
    def stat(self, bucket: str, key: str) -> ListedObject | None:
        """The object as it is now (HeadObject); None when there is none."""
        ...


class MessageQueue(Protocol):
    def send(self, bodies: list[str]) -> None: ...


class StateStore(Protocol):
    def save(self, state: ReconcileState) -> None: ...


class Counts(BaseModel):
    rows: int = Field(0, description="catalog rows of the bucket and prefix")
    listed: int = 0
    ok: int = Field(0, description="objects whose version had its outcome")
    ignored: int = Field(0, description="ignore rules, group markers, outside the prefixes")
    recent: int = Field(0, description="newer than the grace period: left to their events")
    lost: int = Field(0, description="objects with no outcome for their key")
    overwritten: int = Field(0, description="objects whose version had no outcome")
    deleted: int = Field(0, description="catalog rows whose object is gone")
    settled: int = Field(0, description="candidates a re-read showed decided meanwhile")
    enqueued: int = 0

    @property
    def found(self) -> int:
        return self.lost + self.overwritten + self.deleted


class ReconcileState(BaseModel):
    """What survives an interruption: where each phase stands, and what was counted."""

    source: str
    inventory: str | None = None
    apply: bool = False
    # The moment the listing describes (the run's start, or the inventory's creation), and
    # the grace period before it: objects and rows younger than that are not judged.
    listed_at: datetime = Field(default_factory=utcnow)
    grace_seconds: float = 900
    phase: Phase = "snapshot"
    scan_start: dict[str, object] | None = None
    position: Position = Position()
    after_row: tuple[str, str] | None = None
    counts: Counts = Counts()
    samples: dict[str, list[str]] = Field(default_factory=dict)
    total: int | None = None
    done: bool = False

    @property
    def cutoff(self) -> datetime:
        return self.listed_at - timedelta(seconds=self.grace_seconds)


@dataclass
class FileStore:
    """The state beside its snapshot, as a JSON file (the CLI's: resumable by rerunning)."""

    path: Path

    def save(self, state: ReconcileState) -> None:
        save_atomically(self.path, state.model_dump_json(indent=2))

    def load(self) -> ReconcileState | None:
        return (
            ReconcileState.model_validate_json(self.path.read_text())
            if self.path.exists()
            else None
        )


class Unsaved:
    """No state kept (the scheduled function: each run starts over from its report)."""

    def save(self, state: ReconcileState) -> None:
        return None


@dataclass
class Reconciler:
    catalog: CatalogRows
    lister: Lister
    objects: ObjectStat
    queue: MessageQueue
    router: Router
    groups: GroupRoutes | None
    region: str
    url_style: UrlStyle
    snapshot: Snapshot
    store: StateStore
    rate: RateLimit
    progress: Callable[[ReconcileState], None] | None = None

    def run(self, state: ReconcileState) -> ReconcileState:
        bucket, _, prefix = state.source.removeprefix("s3://").partition("/")
        if state.phase == "snapshot":
            for rows, start in self.catalog.scan(bucket, prefix, state.scan_start):
                self.snapshot.add(rows)
                state.counts.rows += len(rows)
                state.scan_start = start
                self._save(state)
            state.phase = "listing"
            self._save(state)
        if state.phase == "listing":
            for page in self.lister.pages(state.position):
                for begin in range(0, len(page.objects), BATCH):
                    objects = page.objects[begin : begin + BATCH]
                    self._listed(objects, state)
                    state.position = page.positions[begin + len(objects) - 1]
                    self._save(state)
            state.phase = "deletions"
            self._save(state)
        while state.phase == "deletions":
            rows = self.snapshot.unlisted(state.after_row, BATCH)
            if not rows:
                state.phase = "done"
                break
            self._unlisted(rows, state)
            state.after_row = (rows[-1].key, rows[-1].dataset)
            self._save(state)
        state.done = True
        self._save(state)
        return state

    def _save(self, state: ReconcileState) -> None:
        self.store.save(state)
        if self.progress is not None:
            self.progress(state)

    def _dataset(self, obj: ListedObject) -> str | None:
        route = self.router.route(obj.key, obj.bucket)
        if route.dataset is None:
            return None
        located = self.groups.locate(obj.key) if self.groups else None
        return None if located is not None and located.is_marker else route.dataset

    def _url(self, bucket: str, key: str) -> str:
        return object_url(bucket, key, self.region, self.url_style)

    def _listed(self, objects: list[ListedObject], state: ReconcileState) -> None:
        """Judge a batch of listed objects; confirm and act on the candidates."""
        cutoff = state.cutoff
        candidates: list[tuple[ListedObject, str]] = []
        for obj in objects:
            dataset = self._dataset(obj)
            row = self.snapshot.get(obj.key, dataset) if dataset else None
            finding = classify(obj, dataset is not None, row, cutoff)
            if finding in (Finding.LOST, Finding.OVERWRITTEN):
                candidates.append((obj, dataset or ""))
            else:
                _count(state, finding, obj.key)
        self.snapshot.mark_listed(obj.key for obj in objects)
        state.counts.listed += len(objects)
        if not candidates:
            return
        now = self.catalog.read([(d, self._url(o.bucket, o.key)) for o, d in candidates])
        bodies = []
        for obj, dataset in candidates:
            row = now.get((dataset, self._url(obj.bucket, obj.key)))
            current = self.objects.stat(obj.bucket, obj.key)
            if current is None:  # deleted since it was listed: its removal decides it
                state.counts.settled += 1
                continue
            finding = classify(current, True, row, cutoff)
            _count(state, finding if finding is not Finding.OK else None, obj.key)
            if finding in (Finding.LOST, Finding.OVERWRITTEN):
                bodies.append(created_body(current, self.region))
        self._enqueue(bodies, state)

    def _unlisted(self, rows: list[RowState], state: ReconcileState) -> None:
        """Judge catalog rows the listing did not show; confirm and act on the candidates."""
        cutoff = state.cutoff
        candidates = []
        for row in rows:
            finding = classify_unlisted(row, cutoff)
            if finding is Finding.DELETED:
                candidates.append(row)
            elif finding is Finding.RECENT:
                _count(state, finding, row.key)
        if not candidates:
            return
        now = self.catalog.read([(r.dataset, r.object_url) for r in candidates])
        bodies = []
        for row in candidates:
            current = now.get((row.dataset, row.object_url))
            if (
                current is None
                or current.event_id != row.event_id
                or classify_unlisted(current, cutoff) is not Finding.DELETED
                or self.objects.stat(row.bucket, row.key) is not None
            ):
                state.counts.settled += 1
                continue
            _count(state, Finding.DELETED, row.key)
            bodies.append(removed_body(current, self.region, utcnow()))
        self._enqueue(bodies, state)

    def _enqueue(self, bodies: list[str], state: ReconcileState) -> None:
        if not state.apply:
            return
        for begin in range(0, len(bodies), SQS_BATCH):
            batch = bodies[begin : begin + SQS_BATCH]
            self.rate.wait_for(len(batch))
            self.queue.send(batch)
            state.counts.enqueued += len(batch)


def _count(state: ReconcileState, finding: Finding | None, key: str) -> None:
    """Count one object or row under its finding (None: settled since the snapshot)."""
    if finding is None:
        state.counts.settled += 1
        return
    setattr(state.counts, finding.value, getattr(state.counts, finding.value) + 1)
    if finding in (Finding.LOST, Finding.OVERWRITTEN, Finding.DELETED):
        sample = state.samples.setdefault(finding.value, [])
        if len(sample) < SAMPLES:
            sample.append(key)
