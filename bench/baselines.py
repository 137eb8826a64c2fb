"""The baselines the bench measures the project against, in the same run.

`OnePartWriter` is the manifest append as it was before issue 14 (commit 2291a15,
layers/shared/media_ingest/manifests/writer.py), cut to its fresh-append path: every writer
appends to the dataset's one open part by reading it, merging and writing it back with
IfMatch; a lost race sleeps a jittered, growing backoff and tries again; after 25 lost races
it gives up, and its batch waits out the SQS visibility timeout. It runs over the same
store as the current writer, so the two differ only in the algorithm.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from media_ingest.errors import ErrorCode, TransientError
from media_ingest.manifests.writer import Conflict, ManifestIndex, Part, PartInfo, PartStore
from media_ingest.platforms.encord import Entry
from media_ingest.records import utcnow


@dataclass
class OnePartWriter:
    store: PartStore
    max_entries: int = 1000
    max_attempts: int = 25
    sleep: Callable[[float], None] = time.sleep
    _open: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    commits: int = 0
    index_conflicts: int = 0
    worst_streak: int = 0

    def append(self, dataset: str, entries: list[Entry]) -> int:
        pending, added, attempts = list(entries), 0, 0
        while pending:
            if dataset not in self._open:
                index = self.store.read_index(dataset)
                self._open[dataset] = index.value.open_part if index else 1
            number = self._open[dataset]
            current = self.store.read_part(dataset, number)
            part = current.value if current else Part()
            if part.sealed or part.entry_count >= self.max_entries:
                self._open[dataset] = number + 1
                continue
            present = part.entry_keys()
            pending = [e for e in pending if e.key not in present]
            if not pending:
                break
            batch = pending[: self.max_entries - part.entry_count]
            grown = part.plus([], batch, upsert=False)
            grown.sealed = part.entry_count + len(batch) >= self.max_entries
            try:
                self.store.write_part(dataset, number, grown, current.etag if current else None)
            except Conflict:
                attempts += 1
                self.conflicts += 1
                self.worst_streak = max(self.worst_streak, attempts)
                if attempts >= self.max_attempts:
                    raise TransientError(
                        ErrorCode.MANIFEST_CONTENTION, "kept changing: the batch waits"
                    ) from None
                self.sleep(min(2.0, 0.02 * 2 ** min(attempts, 7)) * random.random())
                continue
            self.commits += 1
            added += len(batch)
            if current is None or grown.sealed:
                self._record(dataset, number, grown)
            pending = pending[len(batch) :]
        return added

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
        following = number + 1 if part.sealed else number
        if part.sealed:
            self._open[dataset] = following
        for _ in range(self.max_attempts):
            current = self.store.read_index(dataset)
            index = current.value if current else ManifestIndex(dataset=dataset)
            try:
                self.store.write_index(
                    dataset, index.merge(info, following), current.etag if current else None
                )
                return
            except Conflict:
                self.index_conflicts += 1
                self.sleep(0.05 * random.random())
        raise TransientError(ErrorCode.MANIFEST_CONTENTION, f"index of {dataset} kept changing")
