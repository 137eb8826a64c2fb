"""In-memory fakes of the domain's interfaces, with the same conditional-write semantics."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from media_ingest.errors import ErrorCode, TransientError
from media_ingest.events import ObjectEvent
from media_ingest.groups.rules import GroupMeta, GroupRef, GroupStatus, Joined
from media_ingest.ingest.registration import RemoveResult, RemoveStatus, WriteResult
from media_ingest.manifests.removals import RemovalPart
from media_ingest.manifests.writer import Conflict, ManifestIndex, Part, Versioned
from media_ingest.records import CatalogItem, FailureRecord, OutcomeKind, OutcomeMark, Removal
from media_ingest.sinks.label_studio import ProjectTask, TaskRefused


class MemoryPartStore:
    """Parts and index with ETags; writes conditional exactly as S3's IfMatch/IfNoneMatch."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()
        self.writes = 0
        self.fail_next_writes = 0

    def part_key(self, dataset: str, number: int) -> str:
        return f"{dataset}/part-{number:05d}.json"

    def read_part(self, dataset: str, number: int) -> Versioned[Part] | None:
        got = self.objects.get(self.part_key(dataset, number))
        if got is None:
            return None
        stored = json.loads(got[0])
        return Versioned(Part.from_encord(stored["body"], stored["sealed"]), got[1])

    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> None:
        # As S3PartStore: the body is the Encord file, `sealed` travels beside it.
        stored = {"body": part.to_encord(), "sealed": part.sealed}
        self._write(self.part_key(dataset, number), json.dumps(stored), etag)

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
        got = self.objects.get(f"{dataset}/index.json")
        return Versioned(ManifestIndex.model_validate_json(got[0]), got[1]) if got else None

    def write_index(self, dataset: str, index: ManifestIndex, etag: str | None) -> None:
        self._write(f"{dataset}/index.json", index.model_dump_json(), etag)

    def _write(self, key: str, body: str, etag: str | None) -> None:
        with self.lock:
            if self.fail_next_writes:
                self.fail_next_writes -= 1
                raise Conflict(key)
            current = self.objects.get(key)
            if (etag is None and current is not None) or (
                etag is not None and (current is None or current[1] != etag)
            ):
                raise Conflict(key)
            self.objects[key] = (body, uuid.uuid4().hex)
            self.writes += 1

    def parts(self, dataset: str) -> list[Part]:
        found = []
        number = 1
        while (got := self.read_part(dataset, number)) is not None:
            found.append(got.value)
            number += 1
        return found


class MemoryCatalog:
    """The catalog table's rows per (dataset, URL): an item (live or removed) or an outcome
    mark, with adapters/catalog.py's conditions."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], CatalogItem] = {}
        self.marks: dict[tuple[str, str], OutcomeMark] = {}
        self.notes: dict[tuple[str, str], OutcomeMark] = {}
        self.failures: list[FailureRecord] = []

    def _live(self, key: tuple[str, str]) -> CatalogItem | None:
        item = self.items.get(key)
        return item if item is not None and item.live else None

    def _write(self, item: CatalogItem) -> WriteResult:
        key = (item.dataset, item.object_url)
        previous = self.items.get(key)
        self.items[key] = item
        self.marks.pop(key, None)
        self.notes.pop(key, None)
        return WriteResult(written=True, previous=previous)

    def put_new(self, item: CatalogItem) -> WriteResult:
        live = self._live((item.dataset, item.object_url))
        if live is not None:
            return WriteResult(written=False, previous=live)
        return self._write(item)

    def put_newer(self, item: CatalogItem) -> WriteResult:
        live = self._live((item.dataset, item.object_url))
        if live is not None and live.sequencer.rjust(64, "0") >= item.sequencer.rjust(64, "0"):
            return WriteResult(written=False, previous=live)
        return self._write(item)

    def read(self, dataset: str, url: str) -> CatalogItem | None:
        return self.items.get((dataset, url))

    def mark(self, mark: OutcomeMark) -> bool:
        key = (mark.dataset, mark.object_url)
        if self._live(key) is not None:
            return False
        self.items.pop(key, None)
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
            self.items[key] = item.model_copy(update={"removed": removal})
            return RemoveResult(RemoveStatus.REMOVED, item=self.items[key])
        replaced = self.marks.get(key)
        if replaced is None or replaced.kind is not OutcomeKind.DELETED:
            self.marks[key] = deleted
        return RemoveResult(RemoveStatus.UNREGISTERED, replaced=replaced)

    def record_failure(self, record: FailureRecord) -> None:
        self.failures.append(record)

    def items_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CatalogItem]:
        return {key: self.items[key] for key in keys if key in self.items}


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
