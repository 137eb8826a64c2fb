"""In-memory fakes of the domain's interfaces, with the same conditional-write semantics."""

from __future__ import annotations

import threading
import uuid

from media_ingest.ingest.registration import WriteResult
from media_ingest.manifests.writer import Conflict, ManifestIndex, Part, Versioned
from media_ingest.records import CatalogItem, FailureRecord


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
        return Versioned(Part.model_validate_json(got[0]), got[1]) if got else None

    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> None:
        self._write(self.part_key(dataset, number), part.model_dump_json(), etag)

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
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], CatalogItem] = {}
        self.failures: list[FailureRecord] = []

    def put_new(self, item: CatalogItem) -> WriteResult:
        key = (item.dataset, item.object_url)
        if key in self.items:
            return WriteResult(written=False, previous=self.items[key])
        self.items[key] = item
        return WriteResult(written=True)

    def put_newer(self, item: CatalogItem) -> WriteResult:
        key = (item.dataset, item.object_url)
        previous = self.items.get(key)
        if previous is not None and previous.sequencer.rjust(64, "0") >= item.sequencer.rjust(
            64, "0"
        ):
            return WriteResult(written=False, previous=previous)
        self.items[key] = item
        return WriteResult(written=True, previous=previous)

    def record_failure(self, record: FailureRecord) -> None:
        self.failures.append(record)


class MemoryFailureQueue:
    def __init__(self) -> None:
        self.sent: list[FailureRecord] = []

    def send(self, record: FailureRecord) -> None:
        self.sent.append(record)
