"""Fault injection for game days and the LocalStack fault tests: the deployed function crashes
or hangs at a named point of the ingest path, for keys under a chosen prefix.

Off unless FAULT_INJECTION is set (template parameter FaultInjection, empty by default).
A fault fires only when the write it follows really happened (a new catalog item, entries
newly added to a manifest part), so the redelivery that follows finds the write done and
completes the item: that recovery is what the faults are there to show. Never set it on a
production stack outside a game day.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from media_ingest.ingest.registration import (
    Catalog,
    Lease,
    Recorded,
    RemoveResult,
    WriteResult,
)
from media_ingest.observability import logger
from media_ingest.platforms.encord import Entry
from media_ingest.records import CatalogItem, FailureRecord, Outcome, OutcomeMark, Removal

SPEC = re.compile(r"^(crash|hang)@(registered|appended):(\S+)$")
SPEC_HELP = "ACTION@POINT:KEY_PREFIX[,...], ACTION crash|hang, POINT registered|appended"


class FaultAction(StrEnum):
    CRASH = "crash"  # the process exits at once: nothing after it runs, nothing is cleaned up
    HANG = "hang"  # the invocation runs into the function timeout


class FaultPoint(StrEnum):
    REGISTERED = "registered"  # right after a new catalog item is written
    APPENDED = "appended"  # right after a manifest part write that added the item


class Fault(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: FaultAction
    point: FaultPoint
    key_prefix: str


def parse_faults(spec: str) -> tuple[Fault, ...]:
    """`crash@registered:chaos/a/,hang@appended:chaos/b/` -> faults; a bad part is named."""
    faults = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        match = SPEC.match(part)
        if match is None:
            raise ValueError(f"fault {part!r} is not {SPEC_HELP}")
        action, point, prefix = match.groups()
        faults.append(Fault(action=FaultAction(action), point=FaultPoint(point), key_prefix=prefix))
    return tuple(faults)


def _crash() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(137)  # as a kill would: no finally blocks, no lease released


def _hang() -> None:
    time.sleep(24 * 3600)  # the function timeout ends it (the runtime kills the sandbox)


@dataclass
class FaultInjector:
    faults: tuple[Fault, ...]
    actions: dict[FaultAction, Callable[[], None]] = field(
        default_factory=lambda: {FaultAction.CRASH: _crash, FaultAction.HANG: _hang}
    )

    def reached(self, point: FaultPoint, keys: Iterable[str]) -> None:
        keys = list(keys)
        for fault in self.faults:
            hit = next((k for k in keys if k.startswith(fault.key_prefix)), None)
            if fault.point is point and hit is not None:
                logger.warning(
                    "fault injected",
                    extra={"fault": f"{fault.action}@{fault.point}", "fault_key": hit},
                )
                self.actions[fault.action]()


@dataclass
class FaultyCatalog:
    """A catalog that reaches FaultPoint.REGISTERED after each write that created an item."""

    inner: Catalog
    injector: FaultInjector

    def put_new(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        return self._after(item, self.inner.put_new(item, group, lease))

    def put_newer(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        return self._after(item, self.inner.put_newer(item, group, lease))

    def record_failure(self, record: FailureRecord) -> None:
        self.inner.record_failure(record)

    def record_outcome(self, outcome: Outcome) -> None:
        self.inner.record_outcome(outcome)

    def recorded(self, event_id: str, dataset: str, url: str) -> Recorded | None:
        return self.inner.recorded(event_id, dataset, url)

    def release(self, item: CatalogItem, lease: Lease) -> None:
        self.inner.release(item, lease)

    def mark(self, mark: OutcomeMark) -> bool:
        return self.inner.mark(mark)

    def saw(self, item: CatalogItem, mark: OutcomeMark) -> None:
        self.inner.saw(item, mark)

    def remove(self, deleted: OutcomeMark, removal: Removal, sequencer: str) -> RemoveResult:
        return self.inner.remove(deleted, removal, sequencer)

    def _after(self, item: CatalogItem, result: WriteResult) -> WriteResult:
        if result.written:
            self.injector.reached(FaultPoint.REGISTERED, [item.key])
        return result


def _key_of(entry: Entry) -> str:
    """A file's key, or a group's scope (its folder `seq/run7`; a DICOM series' UID)."""
    client = entry.payload.get("clientMetadata", {})
    return str(client.get("key") or client.get("group") or "")


def appended_hook(injector: FaultInjector) -> Callable[[str, list[Entry]], None]:
    """ManifestWriter's `on_added`: reaches FaultPoint.APPENDED with the keys just added."""

    def on_added(dataset: str, entries: list[Entry]) -> None:
        injector.reached(FaultPoint.APPENDED, (_key_of(e) for e in entries))

    return on_added
