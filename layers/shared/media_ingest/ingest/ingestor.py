"""Ingesting one object event: route, probe, identify, register, and decide and record its
one outcome; or, for a removal, mark the catalog item removed and record `deleted`.

Pure orchestration over small interfaces (catalog, prober, failure recorder, membership,
content identity, object lookup). Each outcome is recorded once, where
ingest/registration.py says: by the catalog write itself, or by an outcome record. An outcome
that leaves no live item also leaves an outcome mark on the URL's row (reconcile's per-URL
state). A redelivered event (SQS receive count above one) first asks the catalog for its
recorded outcome and replays it, unprobed. The batch runner appends registered items to the
manifests and changes to the removal log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from media_ingest.errors import ErrorCode, MediaError, Stage, permanent
from media_ingest.events import Deletion, ObjectEvent
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.groups.membership import Marked, Membership
from media_ingest.groups.rules import GroupRef, GroupStatus
from media_ingest.ingest import registration
from media_ingest.ingest.identity import ContentIdentifier
from media_ingest.ingest.registration import Catalog, Lease, RemoveStatus
from media_ingest.media import MediaKind
from media_ingest.observability import logger, metrics
from media_ingest.platforms.encord import Entry, entry_for
from media_ingest.probing.prober import Prober
from media_ingest.records import (
    CatalogItem,
    Outcome,
    OutcomeKind,
    OutcomeMark,
    Removal,
    UrlChange,
    utcnow,
)
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


class ObjectLookup(Protocol):
    def head(self, bucket: str, key: str) -> tuple[int, str] | None:
        """(size, ETag) of the object as it is now; None when there is none."""
        ...


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
    # Same bytes under another key (ingest/identity.py); None: not looked for.
    identity: ContentIdentifier | None = None
    # What a removal checks first (is the key there again?); None: removals are trusted.
    objects: ObjectLookup | None = None

    def ingest(self, event: ObjectEvent, attempt: int = 1, lease: Lease | None = None) -> Outcome:
        """The one outcome of one event, recorded. Raises only for transient (retryable)
        problems. `lease`: the running batch's (who may append the entries it registers)."""
        route = self.router.route(event.key, event.bucket)
        base: dict[str, Any] = {
            "event_id": event.event_id,
            "bucket": event.bucket,
            "key": event.key,
        }
        if route.dataset is None:
            rule = f"ignore rule {route.ignored_by!r}"
            return self._recorded(Outcome(kind=OutcomeKind.IGNORED, detail=rule, **base))
        base["dataset"] = route.dataset
        url = object_url(
            event.bucket, event.key, self.settings.region, self.settings.object_url_style
        )
        if not event.removed:
            marked = self.membership.marker(route.dataset, event.key) if self.membership else None
            if marked is not None:
                return self._recorded(_marker(marked, base))
        base["object_url"] = url
        if attempt > 1:
            found = self.catalog.recorded(event.event_id, route.dataset, url)
            if found is not None:
                return self._replayed(found)
        if event.removed:
            return self._recorded(self._remove(event, url, base))
        return self._register(event, route.dataset, attempt, lease, base)

    def _register(
        self,
        event: ObjectEvent,
        dataset: str,
        attempt: int,
        lease: Lease | None,
        base: dict[str, Any],
    ) -> Outcome:
        url = base["object_url"]
        group: GroupRef | None = None
        stage = Stage.PROBE
        try:
            started = time.perf_counter()
            media = self.prober.probe(event)
            probe_ms = (time.perf_counter() - started) * 1000
            metrics.add_metric(name="ProbeDuration", unit=MetricUnit.Milliseconds, value=probe_ms)
            if media.kind is MediaKind.ARCHIVE:
                return self._hand_over(event, url, base)
            identity = self.identity.identify(event, dataset, url) if self.identity else None
            item = CatalogItem.from_probe(event, dataset, url, media, identity)
            duplicate_of = identity.duplicate_of if identity is not None else None
            if duplicate_of is not None and dataset in self.settings.skip_duplicate_datasets:
                return self._skip(event, url, duplicate_of, base)
            stage = Stage.MANIFEST
            # Raises for an item Encord would refuse.
            entry = entry_for(item, self.settings.encord_video_metadata)
            stage = Stage.REGISTER
            # Joined before registering: a file refused by a sealed group is not catalogued.
            group = self.membership.place(item) if self.membership else None
            group_id = group.group_id if group is not None else None
            update = dataset in self.settings.update_datasets
            written = registration.write(self.catalog, item, update, group_id, lease)
            decision = registration.decide(written, item, update)
        except Exception as exc:
            return self._failed(exc, stage, event, attempt, base)
        if decision.holder is not None and decision.holder.etag != event.etag:
            # An overwrite called a duplicate: reconcile must know this version had its outcome.
            self.catalog.saw(decision.holder, _note(OutcomeKind.DUPLICATE, event, url, base))
        logger.info("outcome", extra={"outcome": decision.kind.value, "kind": item.kind.value})
        earlier = registration.earlier_run(written, item, lease, utcnow())
        if earlier is not None and written.previous is not None:
            # An earlier run of this event registered it: its item and its moment stand.
            item, base["processed_at"] = written.previous, earlier.decided_at
            entry = entry_for(item, self.settings.encord_video_metadata)
        change = registration.restored_change(item) if decision.restores is not None else None
        outcome = Outcome(
            kind=decision.kind,
            detail=decision.detail,
            item=item,
            group=group_id,
            url_change=change,
            **base,
        )
        if not registration.carried_by_item(decision.kind, update):
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
        url = base["object_url"]
        failure = self.failures.record(
            event, error, url=url, dataset=base["dataset"], attempt=attempt, stage=stage
        )
        self._mark(OutcomeKind.FAILED, event, url, base, error.message)
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

    def _hand_over(self, event: ObjectEvent, url: str, base: dict[str, Any]) -> Outcome:
        """An archive's one outcome: sent to extraction (its members are drops of their own)."""
        if self.extractions is None:
            raise MediaError(
                ErrorCode.UNSUPPORTED_KIND, "archives are not extracted by this deployment"
            )
        self.extractions.send(event)
        detail = "sent to extraction; each member is a drop"
        self._mark(OutcomeKind.ARCHIVE, event, url, base, detail)
        logger.info("outcome", extra={"outcome": OutcomeKind.ARCHIVE.value, "kind": "archive"})
        return self._recorded(Outcome(kind=OutcomeKind.ARCHIVE, detail=detail, **base))

    def _skip(self, event: ObjectEvent, url: str, original: str, base: dict[str, Any]) -> Outcome:
        """Same bytes as a registered object, in a dataset that skips such duplicates."""
        detail = f"same content as {original}"
        mark = _note(OutcomeKind.DUPLICATE, event, url, base, detail)
        self.catalog.mark(mark.model_copy(update={"duplicate_of": original}))
        logger.info("outcome", extra={"outcome": "duplicate", "duplicate_of": original})
        return self._recorded(Outcome(kind=OutcomeKind.DUPLICATE, detail=detail, **base))

    def _mark(
        self, kind: OutcomeKind, event: ObjectEvent, url: str, base: dict[str, Any], detail: str
    ) -> None:
        """Keep the outcome of a URL left without a live item (reconcile reads it)."""
        self.catalog.mark(_note(kind, event, url, base, detail))

    def _remove(self, event: ObjectEvent, url: str, base: dict[str, Any]) -> Outcome:
        """A removal's one outcome (an outcome record, the caller's): the URL's live item
        marked removed (kept, with when), or the URL's mark saying deleted."""
        now = self.objects.head(event.bucket, event.key) if self.objects else None
        if now is not None:
            # Events are unordered: the key was written again after this deletion, and that
            # write's own event decides the URL.
            detail = f"the key was written again since (ETag {now[1]}): nothing removed"
            return Outcome(kind=OutcomeKind.DELETED, detail=detail, **base)
        removal = Removal(
            event_id=event.event_id,
            deletion=event.deletion or Deletion.DELETE,
            deleted_at=event.event_time,
        )
        deleted = _note(OutcomeKind.DELETED, event, url, base, f"deleted ({removal.deletion})")
        result = self.catalog.remove(deleted, removal, event.sequencer)
        mine = result.status is RemoveStatus.REMOVED or (
            result.status is RemoveStatus.ALREADY
            and result.item is not None
            and result.item.removed is not None
            and result.item.removed.event_id == event.event_id
        )
        earlier = result.item.removed if result.item is not None else None
        if mine and result.status is RemoveStatus.ALREADY and earlier is not None:
            # An earlier run of this event removed it (a crash, or S3's duplicate message): its
            # moment stands, so the removal log looks for its line in parts sealed since.
            base["processed_at"] = earlier.removed_at
        change = None
        if mine:
            change = UrlChange(
                object_url=url,
                key=event.key,
                change="removed",
                at=event.event_time,
                event_id=event.event_id,
            )
        detail = registration.removal_detail(result, event.event_id)
        logger.info("outcome", extra={"outcome": OutcomeKind.DELETED.value, "detail": detail})
        item = result.item if mine else None
        return Outcome(
            kind=OutcomeKind.DELETED, detail=detail, item=item, url_change=change, **base
        )


def _note(
    kind: OutcomeKind, event: ObjectEvent, url: str, base: dict[str, Any], detail: str = ""
) -> OutcomeMark:
    return OutcomeMark(
        kind=kind,
        dataset=base["dataset"],
        object_url=url,
        bucket=event.bucket,
        key=event.key,
        etag=event.etag,
        event_id=event.event_id,
        at=utcnow(),
        detail=detail or None,
    )


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
