"""In-memory fakes of the domain's interfaces, with the same conditional-write semantics."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from media_ingest.archives.rules import MemberExists
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.events import ObjectEvent
from media_ingest.groups.rules import Claim, GroupMeta, GroupRef, GroupStatus, Joined
from media_ingest.ingest.registration import (
    Lease,
    Recorded,
    RemoveResult,
    RemoveStatus,
    WriteResult,
    restored_change,
    restored_detail,
)
from media_ingest.manifests.removals import RemovalPart
from media_ingest.manifests.writer import Conflict, Listed, ManifestIndex, Part, Versioned
from media_ingest.media import SOURCE_METADATA, AnnotationLinks, ImageInfo, MediaInfo, MediaKind
from media_ingest.records import (
    CatalogItem,
    FailureRecord,
    Outcome,
    OutcomeKind,
    OutcomeMark,
    Removal,
    utcnow,
)
from media_ingest.sinks.label_studio import ProjectTask, TaskRefused

# What the scripted prober answers by default: a small PNG.
IMAGE = MediaInfo(
    kind=MediaKind.IMAGE,
    mime_type="image/png",
    container="png",
    size=1000,
    image=ImageInfo(width=4, height=3, format="png"),
)
ARCHIVE = MediaInfo(kind=MediaKind.ARCHIVE, mime_type="application/zip", container="zip", size=9)


@dataclass
class ScriptedProber:
    """Answers each key with what `script` says (media, or an error to raise), IMAGE
    otherwise; records the keys probed and the most probes that ran at once (each taking
    `delay` seconds)."""

    script: dict[str, MediaInfo | Exception] = field(default_factory=dict)
    probed: list[str] = field(default_factory=list)
    delay: float = 0.0
    running: int = 0
    most: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def probe(self, event: ObjectEvent) -> MediaInfo:
        with self.lock:
            self.probed.append(event.key)
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        answer = self.script.get(event.key, IMAGE)
        if isinstance(answer, Exception):
            raise answer
        return answer


class MemoryPartStore:
    """Parts and index with ETags; writes conditional exactly as S3's IfMatch/IfNoneMatch, and
    a listing with each part's last write (S3's LastModified)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow, latency: float = 0.0) -> None:
        self.objects: dict[str, tuple[str, str]] = {}
        self.modified: dict[str, datetime] = {}
        self.clock = clock
        # Seconds each call takes (a round trip): threads then really interleave between a
        # read and the write that follows it, as writers on S3 do.
        self.latency = latency
        self.lock = threading.Lock()
        self.writes = 0
        self.fail_next_writes = 0

    def part_key(self, dataset: str, number: int) -> str:
        return f"{dataset}/part-{number:05d}.json"

    def read_part(self, dataset: str, number: int) -> Versioned[Part] | None:
        self._wait()
        got = self.objects.get(self.part_key(dataset, number))
        if got is None:
            return None
        stored = json.loads(got[0])
        return Versioned(Part.from_encord(stored["body"], stored["sealed"]), got[1])

    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> str:
        # As S3PartStore: the body is the Encord file, `sealed` travels beside it.
        stored = {"body": part.to_encord(), "sealed": part.sealed}
        return self._write(self.part_key(dataset, number), json.dumps(stored), etag)

    def part_body(self, dataset: str, number: int) -> dict[str, Any] | None:
        """The Encord file as stored (what an import reads)."""
        got = self.objects.get(self.part_key(dataset, number))
        if got is None:
            return None
        body: dict[str, Any] = json.loads(got[0])["body"]
        return body

    def removals_key(self, dataset: str, number: int) -> str:
        return f"{dataset}/removed-{number:05d}.json"

    def read_removals(self, dataset: str, number: int) -> Versioned[RemovalPart] | None:
        got = self.objects.get(self.removals_key(dataset, number))
        return Versioned(RemovalPart.model_validate_json(got[0]), got[1]) if got else None

    def write_removals(
        self, dataset: str, number: int, part: RemovalPart, etag: str | None
    ) -> None:
        self._write(self.removals_key(dataset, number), part.model_dump_json(), etag)

    def read_index(self, dataset: str) -> Versioned[ManifestIndex] | None:
        self._wait()
        got = self.objects.get(f"{dataset}/index.json")
        return Versioned(ManifestIndex.model_validate_json(got[0]), got[1]) if got else None

    def write_index(self, dataset: str, index: ManifestIndex, etag: str | None) -> None:
        self._write(f"{dataset}/index.json", index.model_dump_json(), etag)

    def list_parts(self, dataset: str, after: int = 0) -> list[Listed]:
        self._wait()
        with self.lock:
            found = [
                Listed(int(key[-10:-5]), self.modified[key])
                for key in self.objects
                if key.startswith(f"{dataset}/part-")
            ]
        return sorted((p for p in found if p.number > after), key=lambda p: p.number)

    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def _write(self, key: str, body: str, etag: str | None) -> str:
        self._wait()
        with self.lock:
            if self.fail_next_writes:
                self.fail_next_writes -= 1
                raise Conflict(key)
            current = self.objects.get(key)
            if (etag is None and current is not None) or (
                etag is not None and (current is None or current[1] != etag)
            ):
                raise Conflict(key)
            written = uuid.uuid4().hex
            self.objects[key] = (body, written)
            self.modified[key] = self.clock()
            self.writes += 1
            return written

    def parts(self, dataset: str) -> list[Part]:
        found = []
        number = 1
        while (got := self.read_part(dataset, number)) is not None:
            found.append(got.value)
            number += 1
        return found


class MemoryPartNumbers:
    """The part-number counter (DynamoDB's atomic ADD in the stack): never the same twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {}

    def next(self, dataset: str, floor: int) -> int:
        with self.lock:
            # As `SET n = if_not_exists(n, :floor) + :one`: the floor counts only at creation.
            self.counters[dataset] = self.counters.get(dataset, floor) + 1
            return self.counters[dataset]


class MemoryCatalog:
    """The catalog table's rows per (dataset, URL): an item (live or removed) or an outcome
    mark, with adapters/catalog.py's conditions; failure records; and the outcome ledger's
    two homes (items that carry their outcome, outcome records), as adapters/catalog.py
    keeps them."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], CatalogItem] = {}
        self.marks: dict[tuple[str, str], OutcomeMark] = {}
        self.notes: dict[tuple[str, str], OutcomeMark] = {}
        self.failures: list[FailureRecord] = []
        self.outcomes: dict[str, Outcome] = {}
        self.carried: set[tuple[str, str]] = set()
        self.groups: dict[tuple[str, str], str] = {}
        self.leases: dict[tuple[str, str], Lease] = {}
        self.released: list[tuple[str, str]] = []
        self.restores: dict[tuple[str, str], Removal] = {}

    def _live(self, key: tuple[str, str]) -> CatalogItem | None:
        item = self.items.get(key)
        return item if item is not None and item.live else None

    def put_new(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        key = (item.dataset, item.object_url)
        live = self._live(key)
        if live is not None:
            return WriteResult(False, live, self.leases.get(key))
        previous = self.items.get(key)  # a removed item (it carries no outcome) or None
        self._store(item, group, lease)
        self.carried.add(key)
        if previous is not None and previous.removed is not None:
            self.restores[key] = previous.removed
        return WriteResult(True, previous)

    def put_newer(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        key = (item.dataset, item.object_url)
        previous = self.items.get(key)
        if key in self.carried and previous is not None:  # registered before UpdateDatasets
            self._uncarry(key)
        live = self._live(key)
        if live is not None and live.sequencer.rjust(64, "0") >= item.sequencer.rjust(64, "0"):
            return WriteResult(False, live, self.leases.get(key))
        old_lease = self.leases.get(key)
        self._store(item, group, lease)
        return WriteResult(True, previous, old_lease if previous else None)

    def _store(self, item: CatalogItem, group: str | None, lease: Lease | None) -> None:
        key = (item.dataset, item.object_url)
        self.items[key] = item
        self.marks.pop(key, None)
        self.notes.pop(key, None)
        self.restores.pop(key, None)
        self.leases.pop(key, None)
        self.groups.pop(key, None)
        if lease is not None:
            self.leases[key] = lease
        if group is not None:
            self.groups[key] = group

    def _uncarry(self, key: tuple[str, str]) -> None:
        self.record_outcome(self._carried_outcome(key))
        self.carried.discard(key)

    def read(self, dataset: str, url: str) -> CatalogItem | None:
        return self.items.get((dataset, url))

    def mark(self, mark: OutcomeMark) -> bool:
        key = (mark.dataset, mark.object_url)
        if self._live(key) is not None:
            return False
        self.items.pop(key, None)
        self.carried.discard(key)  # only a removed item (none carried) can be replaced
        self.marks[key] = mark
        return True

    def saw(self, item: CatalogItem, mark: OutcomeMark) -> None:
        key = (item.dataset, item.object_url)
        live = self._live(key)
        if live is not None and live.event_id == item.event_id:
            self.notes[key] = mark

    def remove(self, deleted: OutcomeMark, removal: Removal, sequencer: str) -> RemoveResult:
        key = (deleted.dataset, deleted.object_url)
        item = self.items.get(key)
        if item is not None and item.removed is not None:
            return RemoveResult(RemoveStatus.ALREADY, item=item)
        if item is not None:
            if sequencer and item.sequencer.rjust(64, "0") > sequencer.rjust(64, "0"):
                return RemoveResult(RemoveStatus.NEWER, item=item)
            if key in self.carried:  # the ledger keeps the registering event's outcome
                self._uncarry(key)
            self.items[key] = item.model_copy(update={"removed": removal})
            return RemoveResult(RemoveStatus.REMOVED, item=self.items[key])
        replaced = self.marks.get(key)
        if replaced is None or replaced.kind is not OutcomeKind.DELETED:
            self.marks[key] = deleted
        return RemoveResult(RemoveStatus.UNREGISTERED, replaced=replaced)

    def record_failure(self, record: FailureRecord) -> None:
        self.failures.append(record)

    def record_outcome(self, outcome: Outcome) -> None:
        kept = (
            outcome
            if outcome.kind is OutcomeKind.DELETED
            else outcome.model_copy(update={"item": None})
        )
        self.outcomes.setdefault(outcome.event_id, kept)

    def recorded(self, event_id: str, dataset: str, url: str) -> Recorded | None:
        key = (dataset, url)
        item = self.items.get(key)
        mine = item is not None and item.event_id == event_id
        found = [o for o in self.ledger() if o.event_id == event_id]
        if not found:
            return None
        outcome = min(found, key=lambda o: o.processed_at)
        if mine and outcome.item is None and outcome.kind is OutcomeKind.REGISTERED:
            outcome = outcome.model_copy(update={"item": item})
        return Recorded(outcome, self.leases.get(key) if mine else None)

    def release(self, item: CatalogItem, lease: Lease) -> None:
        key = (item.dataset, item.object_url)
        if self.leases.get(key) == lease:
            del self.leases[key]
            self.released.append(key)

    def _carried_outcome(self, key: tuple[str, str]) -> Outcome:
        item = self.items[key]
        return Outcome(
            kind=OutcomeKind.REGISTERED,
            event_id=item.event_id,
            bucket=item.bucket,
            key=item.key,
            object_url=item.object_url,
            dataset=item.dataset,
            processed_at=item.registered_at,
            item=item,
            group=self.groups.get(key),
            detail=restored_detail(restores) if (restores := self.restores.get(key)) else None,
            url_change=restored_change(item) if key in self.restores else None,
        )

    def ledger(self) -> list[Outcome]:
        """Every recorded outcome, one per event (the first recorded)."""
        found = [self._carried_outcome(key) for key in self.carried]
        found += list(self.outcomes.values())
        first: dict[str, Outcome] = {}
        for outcome in sorted(found, key=lambda o: o.processed_at):
            first.setdefault(outcome.event_id, outcome)
        return list(first.values())

    def items_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CatalogItem]:
        return {key: item for key in keys if (item := self._live(key)) is not None}


class MemoryFailureQueue:
    def __init__(self) -> None:
        self.sent: list[FailureRecord] = []

    def send(self, record: FailureRecord) -> None:
        self.sent.append(record)


class MemoryGroupStore:
    """Group state and members, with the group table's conditions (join refused once sealed;
    one sealer wins)."""

    def __init__(self) -> None:
        self.metas: dict[str, GroupMeta] = {}
        self.member_items: dict[str, dict[str, CatalogItem]] = {}
        # group id -> (claimed until, claims so far): the claim on writing its entry.
        self.claims: dict[str, tuple[datetime, int]] = {}

    def join(self, ref: GroupRef, item: CatalogItem, now: datetime, due: datetime) -> Joined:
        meta = self.metas.get(ref.group_id)
        members = self.member_items.setdefault(ref.group_id, {})
        if item.object_url in members:
            return Joined.PRESENT
        if meta is not None and meta.status is GroupStatus.SEALED:
            return Joined.SEALED
        members[item.object_url] = item
        self.metas[ref.group_id] = GroupMeta(
            ref=ref, status=GroupStatus.OPEN, members=len(members), last_member_at=now
        )
        return Joined.ADDED

    def touch(self, ref: GroupRef, now: datetime, due: datetime) -> GroupMeta:
        meta = self.metas.get(ref.group_id) or GroupMeta(
            ref=ref, status=GroupStatus.OPEN, last_member_at=now
        )
        self.metas[ref.group_id] = meta
        return meta

    def seal(self, ref: GroupRef, now: datetime, quiet_since: datetime | None = None) -> bool:
        meta = self.metas.get(ref.group_id)
        if meta is None or meta.status is not GroupStatus.OPEN or not meta.members:
            return False
        self.metas[ref.group_id] = meta.model_copy(
            update={"status": GroupStatus.SEALED, "sealed_at": now}
        )
        return True

    def close_empty(self, ref: GroupRef, now: datetime) -> None:
        raise NotImplementedError

    def claim_append(self, ref: GroupRef, now: datetime, until: datetime) -> Claim | None:
        meta = self.metas.get(ref.group_id)
        if meta is None or not meta.pending_append:
            return None
        held = self.claims.get(ref.group_id)
        if held is not None and held[0] >= now:
            return None
        count = held[1] if held is not None else 0
        self.claims[ref.group_id] = (until, count + 1)
        return Claim(until=until, retried=count > 0)

    def release_append(self, ref: GroupRef, claim: Claim, now: datetime) -> None:
        held = self.claims.get(ref.group_id)
        if held is not None and held[0] == claim.until:
            self.claims[ref.group_id] = (datetime.min.replace(tzinfo=UTC), held[1])

    def appended(self, ref: GroupRef, now: datetime) -> None:
        self.metas[ref.group_id] = self.metas[ref.group_id].model_copy(update={"appended_at": now})

    def meta(self, ref: GroupRef) -> GroupMeta | None:
        return self.metas.get(ref.group_id)

    def members(self, ref: GroupRef) -> list[CatalogItem]:
        return list(self.member_items.get(ref.group_id, {}).values())

    def due(self, now: datetime) -> Iterator[GroupMeta]:
        return iter(())


class MemoryExtractQueue:
    def __init__(self) -> None:
        self.sent: list[ObjectEvent] = []

    def send(self, event: ObjectEvent) -> None:
        self.sent.append(event)


# -- archive extraction (archives/rules.py interfaces) ------------------------------------
class _OneWay(io.RawIOBase):
    """Not seekable, like an S3 streaming body."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class MemoryArchive:
    """An archive's bytes, streamed (counted) or seekable."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.streams = 0

    def stream(self) -> IO[bytes]:
        self.streams += 1
        return io.BufferedReader(_OneWay(self.data))

    def seekable(self) -> IO[bytes]:
        return io.BytesIO(self.data)


class MemoryMemberWriter:
    """Members written as S3MemberWriter writes them: create-only (MemberExists)."""

    def __init__(self, bucket: str = "drop") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.writes = 0

    def written(self, key: str, size: int, source: str) -> bool:
        found = self.objects.get(key)
        return (
            found is not None and len(found[0]) == size and found[1].get(SOURCE_METADATA) == source
        )

    def write(self, key: str, chunks: Iterator[bytes], metadata: dict[str, str]) -> None:
        data = b"".join(chunks)
        if key in self.objects:
            raise MemberExists
        self.objects[key] = (data, metadata)
        self.writes += 1


class MemoryAnnotationStore:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return f"s3://manifests/annotations/{path}"


class MemoryLinks:
    """Annotation links by (bucket, key, source), as the catalog records them."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str, str], AnnotationLinks] = {}

    def record_links(self, bucket: str, key: str, source: str, links: AnnotationLinks) -> None:
        self.links[(bucket, key, source)] = links

    def find_links(self, bucket: str, key: str, source: str) -> AnnotationLinks | None:
        return self.links.get((bucket, key, source))

    def of(self, key: str) -> AnnotationLinks | None:
        """The links recorded for `key`, whatever the bucket and source."""
        found = [links for (_, k, _), links in self.links.items() if k == key]
        return found[0] if found else None


class MemoryTaskStore:
    """Label Studio projects as the sink sees them, with the server's rules: an import is all
    or nothing, and refused (400) when a task lacks the key of one of the config's object
    tags. `down` makes every call transient, `refuse` refuses the tasks it matches."""

    def __init__(self, projects: dict[int, frozenset[str]]) -> None:
        self.keys = projects
        self.tasks: dict[int, dict[int, ProjectTask]] = {p: {} for p in projects}
        self.ids = itertools.count(1)
        self.calls: list[str] = []
        self.down = False
        self.refuse: Callable[[dict[str, Any]], bool] = lambda _task: False

    def _enter(self, call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise TransientError(ErrorCode.SINK_UNAVAILABLE, "Label Studio answered 502")

    def data_keys(self, project: int) -> frozenset[str]:
        self._enter("data_keys")
        return self.keys[project]

    def find(self, project: int, data_key: str, uris: Sequence[str]) -> list[ProjectTask]:
        self._enter("find")
        return [t for t in self.tasks[project].values() if t.data.get(data_key) in set(uris)]

    def create(self, project: int, tasks: Sequence[dict[str, Any]]) -> None:
        self._enter("create")
        for number, task in enumerate(tasks):
            missing = self.keys[project] - set(task["data"])
            if missing or self.refuse(task):
                raise TaskRefused(f"Error at item {number}: {sorted(missing)} expected (400)")
        for task in tasks:
            task_id = next(self.ids)
            self.tasks[project][task_id] = ProjectTask(
                id=task_id, data=task["data"], meta=task.get("meta", {})
            )

    def update(self, task_id: int, data: dict[str, Any], meta: dict[str, Any]) -> None:
        self._enter("update")
        for tasks in self.tasks.values():
            if task_id in tasks:
                tasks[task_id] = tasks[task_id].model_copy(update={"data": data, "meta": meta})

    def delete(self, task_id: int) -> None:
        self._enter("delete")
        for tasks in self.tasks.values():
            tasks.pop(task_id, None)

    def uris(self, project: int) -> list[str]:
        return sorted(str(next(iter(t.data.values()))) for t in self.tasks[project].values())


class CountingReader:
    """read_at over bytes, counting GETs and bytes like the S3 adapter's calls would."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0
        self.bytes = 0

    def __call__(self, start: int, length: int) -> bytes:
        self.calls += 1
        got = self.data[start : start + length]
        self.bytes += len(got)
        return got
