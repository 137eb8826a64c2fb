"""Sealing groups and writing their one manifest entry, over the group store interface.

Used by the ingest function (a marker object's group, after its batch) and by the sweeper
(groups quiet for the quiet period, and sealed groups whose entry is not yet written). Every
step can be repeated: the seal is conditional, the members of a sealed group never change,
so its entry is the same each time. Writing the entry is claimed first (one writer at a
time: the marker's batch and the sweeper may both try), and a writer that follows an
earlier attempt skips an entry that attempt already wrote. Never creates a client itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from media_ingest.groups.rules import Claim, GroupMeta, GroupRef, GroupStatus, seal_decision
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.observability import logger, metrics
from media_ingest.platforms.encord import group_entry
from media_ingest.records import CatalogItem, utcnow

# How long a claim on writing a group's entry keeps others away if its writer dies: no
# Lambda invocation runs longer. A writer that fails (without dying) gives it up at once.
CLAIM_SECONDS = 900


class GroupStore(Protocol):
    def seal(self, ref: GroupRef, now: datetime, quiet_since: datetime | None = None) -> bool: ...
    def close_empty(self, ref: GroupRef, now: datetime) -> None: ...
    def claim_append(self, ref: GroupRef, now: datetime, until: datetime) -> Claim | None:
        """Claim writing a sealed, unwritten group's entry; None while another claim holds."""
        ...

    def release_append(self, ref: GroupRef, claim: Claim, now: datetime) -> None: ...
    def appended(self, ref: GroupRef, now: datetime) -> None: ...
    def meta(self, ref: GroupRef) -> GroupMeta | None: ...
    def members(self, ref: GroupRef) -> list[CatalogItem]: ...
    def due(self, now: datetime) -> Iterator[GroupMeta]: ...


@dataclass
class SweepResult:
    sealed: int = 0
    written: int = 0
    closed_empty: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class GroupSealer:
    store: GroupStore
    manifests: ManifestWriter
    quiet_seconds: int
    clock: Callable[[], datetime] = utcnow

    def seal(self, ref: GroupRef) -> bool:
        """Seal the group now (if open and not empty) and write its entry; True if written
        by this call. An empty group stays open: its frames may still be on their way."""
        now = self.clock()
        if self.store.seal(ref, now):
            logger.info("group sealed", extra={"group": ref.group_id})
            metrics.add_metric(name="GroupsSealed", unit=MetricUnit.Count, value=1)
        return self.finish(ref)

    def finish(self, ref: GroupRef) -> bool:
        """Write a sealed group's entry unless already written (or being written)."""
        meta = self.store.meta(ref)
        if meta is None or not meta.pending_append:
            return False
        ref = meta.ref  # the stored one: it has the title
        now = self.clock()
        claim = self.store.claim_append(ref, now, now + timedelta(seconds=CLAIM_SECONDS))
        if claim is None:
            logger.info("group being written by another run", extra={"group": ref.group_id})
            return False
        try:
            members = self.store.members(ref)
            entry = group_entry(ref, members)
            since = meta.sealed_at if claim.retried else None
            self.manifests.append(ref.dataset, [entry], replayed_since=since)
        except Exception:
            self.store.release_append(ref, claim, self.clock())
            raise
        self.store.appended(ref, self.clock())
        metrics.add_metric(name="GroupEntries", unit=MetricUnit.Count, value=1)
        logger.info("group written", extra={"group": ref.group_id, "files": len(members)})
        return True

    def sweep(self) -> SweepResult:
        """Seal every group quiet for the quiet period; finish every sealed, unwritten one."""
        now = self.clock()
        result = SweepResult()
        due = 0
        for meta in self.store.due(now):
            due += 1
            ref = meta.ref
            try:
                if meta.status is GroupStatus.OPEN and not meta.members:
                    if seal_decision(meta, now, self.quiet_seconds):
                        self.store.close_empty(ref, now)
                        result.closed_empty += 1
                    continue
                # Sealed only if still quiet: a member that joined since the index was read
                # restarts the quiet period.
                quiet_since = now - timedelta(seconds=self.quiet_seconds)
                if seal_decision(meta, now, self.quiet_seconds) and self.store.seal(
                    ref, now, quiet_since
                ):
                    result.sealed += 1
                if self.finish(ref):
                    result.written += 1
            except Exception as exc:  # one bad group must not stop the others; next run retries
                logger.exception("sealing a group failed", extra={"group": ref.group_id})
                result.errors.append(f"{ref.group_id}: {exc}")
        metrics.add_metric(name="GroupsDue", unit=MetricUnit.Count, value=due)
        return result
