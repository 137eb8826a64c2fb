"""Ingesting one object-created event: route, probe, register, and decide its one outcome.

Pure orchestration over small interfaces (catalog, prober, failure sink); the batch module
wraps it in Powertools idempotency and appends registered items to the manifests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from media_ingest.errors import ErrorCode, MediaError, Stage
from media_ingest.events import ObjectEvent
from media_ingest.groups.membership import Grouping
from media_ingest.groups.rules import GroupRef, GroupStatus
from media_ingest.ingest import registration
from media_ingest.ingest.registration import Catalog
from media_ingest.manifests.writer import entry_for
from media_ingest.observability import logger, metrics
from media_ingest.probing.prober import Prober
from media_ingest.probing.sniffer import MediaKind
from media_ingest.records import CatalogItem, FailureRecord, Outcome, OutcomeKind
from media_ingest.routing import Router
from media_ingest.settings import Settings
from media_ingest.urls import object_url

# Encord refuses URLs longer than 16 KB.
MAX_URL_BYTES = 16 * 1024


class FailureSink(Protocol):
    def send(self, record: FailureRecord) -> None: ...


class ExtractionQueue(Protocol):
    """Where archives go to be extracted (the extract queue; archives.py consumes it)."""

    def send(self, event: ObjectEvent) -> None: ...


@dataclass
class Ingestor:
    settings: Settings
    router: Router
    prober: Prober
    catalog: Catalog
    failures: FailureSink
    # None: archives are not extracted and fail with UNSUPPORTED_KIND.
    extractions: ExtractionQueue | None = None
    # Grouping (image groups, sequences, DICOM series); None: every object is its own entry.
    grouping: Grouping | None = None

    def ingest(self, event: ObjectEvent, attempt: int = 1) -> Outcome:
        """The one outcome of one event. Raises only for transient (retryable) problems."""
        route = self.router.route(event.key)
        base = {"event_id": event.event_id, "bucket": event.bucket, "key": event.key}
        if route.dataset is None:
            return Outcome(
                kind=OutcomeKind.IGNORED, detail=f"ignore rule {route.ignored_by!r}", **base
            )
        located = self.grouping.routes.locate(event.key) if self.grouping else None
        if self.grouping is not None and located is not None and located.is_marker:
            base["dataset"] = route.dataset
            return self._marker(self.grouping, located.ref(route.dataset), base)
        url = object_url(
            event.bucket, event.key, self.settings.region, self.settings.object_url_style
        )
        base |= {"dataset": route.dataset, "object_url": url}
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
            _check_entry(item)
            stage = Stage.REGISTER
            if self.grouping is not None:
                # Join before registering: a file refused by a sealed group is not catalogued.
                group = self.grouping.ref_for(item, located)
                if group is not None:
                    self.grouping.join(group, item)
            update = route.dataset in self.settings.update_datasets
            kind, detail = registration.register(self.catalog, item, update)
        except MediaError as error:
            failure = self._fail(event, route.dataset, url, error, stage=stage, attempt=attempt)
            return Outcome(kind=OutcomeKind.FAILED, detail=error.message, failure=failure, **base)
        logger.info("outcome", extra={"outcome": kind.value, "kind": item.kind.value})
        group_id = group.group_id if group is not None else None
        return Outcome(kind=kind, detail=detail, item=item, group=group_id, **base)

    def _marker(self, grouping: Grouping, ref: GroupRef, base: dict[str, Any]) -> Outcome:
        """A marker object is never probed: it records that its group may be sealed (the
        batch seals it after its other records, so frames in the same batch are in)."""
        meta = grouping.mark(ref)
        if meta.status is GroupStatus.SEALED:
            detail = f"marker of {ref.kind.value} {ref.title!r}, already sealed"
        else:
            detail = f"marker of {ref.kind.value} {ref.title!r} ({meta.members} files so far)"
        logger.info("outcome", extra={"outcome": OutcomeKind.MARKER.value, "group": ref.group_id})
        return Outcome(kind=OutcomeKind.MARKER, detail=detail, group=ref.group_id, **base)

    def _hand_over(self, event: ObjectEvent, base: dict[str, Any]) -> Outcome:
        """An archive's one outcome: sent to extraction (its members are drops of their own)."""
        if self.extractions is None:
            raise MediaError(
                ErrorCode.UNSUPPORTED_KIND, "archives are not extracted by this deployment"
            )
        self.extractions.send(event)
        logger.info("outcome", extra={"outcome": OutcomeKind.ARCHIVE.value, "kind": "archive"})
        return Outcome(
            kind=OutcomeKind.ARCHIVE, detail="sent to extraction; each member is a drop", **base
        )

    def _fail(
        self, event: ObjectEvent, dataset: str, url: str, error: MediaError, *, stage: Stage,
        attempt: int,
    ) -> FailureRecord:  # fmt: skip
        record = FailureRecord(
            object_url=url, bucket=event.bucket, key=event.key, dataset=dataset,
            stage=stage,
            error_code=error.code, message=error.message, attempt=attempt,
            event_id=event.event_id, event_time=event.event_time, size=event.size,
        )  # fmt: skip
        self.catalog.record_failure(record)
        self.failures.send(record)
        logger.warning(
            "failed", extra={"error_code": error.code.value, "stage": record.stage.value,
                             "reason": error.message},
        )  # fmt: skip
        return record


def _check_entry(item: CatalogItem) -> None:
    entry = entry_for(item)
    if any(len(url.encode()) > MAX_URL_BYTES for url in entry.urls):
        raise MediaError(
            ErrorCode.ENTRY_TOO_LARGE, "object URL is longer than Encord's 16 KB", Stage.MANIFEST
        )
