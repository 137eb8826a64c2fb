"""Ingesting one object-created event: route, probe, register, and decide and record its one
outcome.

Pure orchestration over small interfaces (catalog, prober, failure recorder, membership).
Each outcome is recorded once, where ingest/registration.py says: by the catalog write
itself, or by an outcome record. A redelivered event (SQS receive count
above one) first asks the catalog for its recorded outcome and replays it, unprobed. The
batch runner appends registered items to the manifests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from media_ingest.errors import ErrorCode, MediaError, Stage, permanent
from media_ingest.events import ObjectEvent
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.groups.membership import Marked, Membership
from media_ingest.groups.rules import GroupRef, GroupStatus
from media_ingest.ingest import registration
from media_ingest.ingest.registration import Catalog, Lease
from media_ingest.media import MediaKind
from media_ingest.observability import logger, metrics
from media_ingest.platforms.encord import Entry, entry_for
from media_ingest.probing.prober import Prober
from media_ingest.records import CatalogItem, Outcome, OutcomeKind, utcnow
from media_ingest.routing import Router
from media_ingest.settings import Settings
from media_ingest.urls import object_url


class Registered(Outcome):
    """A registration with the manifest entry the batch runner appends for it: built to decide
    it, or (replayed) built again from its item, the same (deterministic). Neither field is
    part of the ledger."""

    entry: Entry = Field(exclude=True)
    # Decided by an earlier run whose lease has not expired: that run may still be appending
    # the entry itself (ingest/registration.py).
    held: bool = Field(default=False, exclude=True)


class ExtractionQueue(Protocol):
    """Where archives go to be extracted (the extract queue; archives/ consumes it)."""

    def send(self, event: ObjectEvent) -> None: ...


@dataclass
class Ingestor:
    settings: Settings
    router: Router
    prober: Prober
    catalog: Catalog
    failures: FailureRecorder
    # None: archives are not extracted and fail with UNSUPPORTED_KIND.
    extractions: ExtractionQueue | None = None
    # Grouping (image groups, sequences, DICOM series); None: every object is its own entry.
    membership: Membership | None = None

    def ingest(self, event: ObjectEvent, attempt: int = 1, lease: Lease | None = None) -> Outcome:
        """The one outcome of one event, recorded. Raises only for transient (retryable)
        problems. `lease`: the running batch's (who may append the entries it registers)."""
        route = self.router.route(event.key)
        base: dict[str, Any] = {
            "event_id": event.event_id,
            "bucket": event.bucket,
            "key": event.key,
        }
        if route.dataset is None:
            rule = f"ignore rule {route.ignored_by!r}"
            return self._recorded(Outcome(kind=OutcomeKind.IGNORED, detail=rule, **base))
        base["dataset"] = route.dataset
        marked = self.membership.marker(route.dataset, event.key) if self.membership else None
        if marked is not None:
            return self._recorded(_marker(marked, base))
        url = object_url(
            event.bucket, event.key, self.settings.region, self.settings.object_url_style
        )
        base["object_url"] = url
        if attempt > 1:
            found = self.catalog.recorded(event.event_id, route.dataset, url)
            if found is not None:
                return self._replayed(found)
        group: GroupRef | None = None
        stage = Stage.PROBE
        try:
            started = time.perf_counter()
            media = self.prober.probe(event)
            probe_ms = (time.perf_counter() - started) * 1000
            metrics.add_metric(name="ProbeDuration", unit=MetricUnit.Milliseconds, value=probe_ms)
            if media.kind is MediaKind.ARCHIVE:
                return self._hand_over(event, base)
            item = CatalogItem.from_probe(event, route.dataset, url, media)
            stage = Stage.MANIFEST
            # Raises for an item Encord would refuse.
            entry = entry_for(item, self.settings.encord_video_metadata)
            stage = Stage.REGISTER
            # Joined before registering: a file refused by a sealed group is not catalogued.
            group = self.membership.place(item) if self.membership else None
            group_id = group.group_id if group is not None else None
            update = route.dataset in self.settings.update_datasets
            written = registration.write(self.catalog, item, update, group_id, lease)
            kind, detail = registration.decide(written, item, update)
        except Exception as exc:
            return self._failed(exc, stage, event, attempt, base)
        logger.info("outcome", extra={"outcome": kind.value, "kind": item.kind.value})
        earlier = registration.earlier_run(written, item, lease, utcnow())
        if earlier is not None and written.previous is not None:
            # An earlier run of this event registered it: its item and its moment stand.
            item, base["processed_at"] = written.previous, earlier.decided_at
            entry = entry_for(item, self.settings.encord_video_metadata)
        outcome = Outcome(kind=kind, detail=detail, item=item, group=group_id, **base)
        if not registration.carried_by_item(kind, update):
            self.catalog.record_outcome(outcome)
        if not outcome.needs_manifest:
            return outcome
        held = earlier is not None and earlier.held
        return Registered(**outcome.model_dump(), entry=entry, held=held)

    def _failed(
        self, exc: Exception, stage: Stage, event: ObjectEvent, attempt: int, base: dict[str, Any]
    ) -> Outcome:
        """The object's one failure boundary: whatever its bytes made a reader raise ends as
        its failure record; only what a retry can cure is raised again (back to the queue)."""
        error = permanent(exc, stage)
        if error is None:
            raise exc
        if error is not exc:
            logger.exception("parser failed", extra={"parser": error.parser})
        failure = self.failures.record(
            event,
            error,
            url=base["object_url"],
            dataset=base["dataset"],
            attempt=attempt,
            stage=stage,
        )
        return self._recorded(
            Outcome(kind=OutcomeKind.FAILED, detail=error.message, failure=failure, **base)
        )

    def _replayed(self, found: registration.Recorded) -> Outcome:
        """A redelivered event's recorded outcome; a registration with the entry to append."""
        outcome = found.outcome
        logger.info("outcome replayed", extra={"outcome": outcome.kind.value})
        if not outcome.needs_manifest or outcome.item is None:
            return outcome
        held = found.lease is not None and found.lease.until > utcnow()
        entry = entry_for(outcome.item, self.settings.encord_video_metadata)
        return Registered(**outcome.model_dump(), entry=entry, held=held)

    def _recorded(self, outcome: Outcome) -> Outcome:
        self.catalog.record_outcome(outcome)
        return outcome

    def _hand_over(self, event: ObjectEvent, base: dict[str, Any]) -> Outcome:
        """An archive's one outcome: sent to extraction (its members are drops of their own)."""
        if self.extractions is None:
            raise MediaError(
                ErrorCode.UNSUPPORTED_KIND, "archives are not extracted by this deployment"
            )
        self.extractions.send(event)
        logger.info("outcome", extra={"outcome": OutcomeKind.ARCHIVE.value, "kind": "archive"})
        detail = "sent to extraction; each member is a drop"
        return self._recorded(Outcome(kind=OutcomeKind.ARCHIVE, detail=detail, **base))


def _marker(marked: Marked, base: dict[str, Any]) -> Outcome:
    """A marker object's outcome: its group may be sealed (the batch seals it after its
    other records, so frames in the same batch are in)."""
    ref, meta = marked.ref, marked.meta
    if meta.status is GroupStatus.SEALED:
        detail = f"marker of {ref.kind.value} {ref.title!r}, already sealed"
    else:
        detail = f"marker of {ref.kind.value} {ref.title!r} ({meta.members} files so far)"
    logger.info("outcome", extra={"outcome": OutcomeKind.MARKER.value, "group": ref.group_id})
    return Outcome(kind=OutcomeKind.MARKER, detail=detail, group=ref.group_id, **base)
