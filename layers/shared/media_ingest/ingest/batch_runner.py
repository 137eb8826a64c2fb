"""One SQS batch of S3 events: idempotent per event, one manifest append per dataset.

Each S3 event runs through `Ingestor.ingest` under Powertools idempotency keyed on the
event's identity (bucket, key, version, sequencer), never the SQS message id: a redelivered
event returns its recorded outcome without probing again, and those records are the
outcome ledger the CLI counts. Registered items of the whole batch are then appended to
their datasets' manifests and the batch's removals (and registrations after one) to their
removal logs (a failed write fails only the messages that fed it), and the batch's catalog
changes are published to the sinks in one call (sinks/changes.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_ingest.events import ObjectEvent, parse_body
from media_ingest.groups.rules import GroupRef
from media_ingest.groups.sealing import GroupSealer
from media_ingest.ingest.ingestor import Ingestor, Registered
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.observability import logger, metrics
from media_ingest.platforms.encord import (
    DEFAULT_VIDEO_METADATA,
    Entry,
    VideoMetadataPolicy,
    entry_for,
)
from media_ingest.records import Outcome, OutcomeKind, UrlChange, utcnow
from media_ingest.sinks.changes import ChangeBatch, batches_of, change_of

# The fields that identify one S3 event across redeliveries (see ObjectEvent.event_id).
EVENT_KEY = "[bucket, key, version_id, sequencer, etag, request_id]"

IngestFn = Callable[..., Outcome]


def idempotent_ingest(
    ingestor: Ingestor, persistence: DynamoDBPersistenceLayer, config: IdempotencyConfig
) -> IngestFn:
    """`ingestor.ingest` made idempotent per S3 event; call it with event=..., attempt=..."""

    def ingest_event(event: ObjectEvent, attempt: int) -> Outcome:
        return ingestor.ingest(event, attempt)

    return idempotent_function(  # type: ignore[no-any-return]
        data_keyword_argument="event",
        persistence_store=persistence,
        config=config,
        output_serializer=PydanticSerializer(model=Outcome),
    )(ingest_event)


def idempotency_config(expires_after_seconds: int) -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=EVENT_KEY,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires_after_seconds,
    )


class RemovalLogWriter(Protocol):
    """The removal log beside each dataset's manifest (manifests/removals.py)."""

    def record(
        self, dataset: str, changes: list[UrlChange], replayed_since: datetime | None = None
    ) -> int: ...


class ChangePublisher(Protocol):
    """The sink queue (adapters/queues.py SqsChangeQueue): one call for all batches."""

    def publish(self, batches: list[ChangeBatch]) -> None: ...


@dataclass
class BatchRunner:
    ingest: IngestFn
    manifests: ManifestWriter
    idempotency: IdempotencyConfig | None = None
    sealer: GroupSealer | None = None
    # SDK retries since the last call (the AwsRetries metric); None: not counted.
    aws_retries: Callable[[], int] | None = None
    # Where catalog changes go for the sinks (the sink queue); None: no sink deployed.
    changes: ChangePublisher | None = None
    # Removed URLs (and URLs registered again) for importers; None: not logged.
    removal_log: RemovalLogWriter | None = None
    # The Ingestor's setting: a replayed outcome's entry is built again exactly as it was.
    video_metadata: VideoMetadataPolicy = DEFAULT_VIDEO_METADATA

    def run(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if self.idempotency is not None:
            # Without the context, a record left INPROGRESS by a timed-out run would block
            # retries until it expires instead of until the function's own deadline.
            self.idempotency.register_lambda_context(context)
        started = utcnow()
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        with processor(records=event.get("Records", []), handler=self._record):
            processed = processor.process()
        outcomes = {
            record["messageId"]: result
            for status, result, record in processed
            if status == "success"
        }
        _count(outcomes, started)
        failed = self._append_manifests(outcomes, started)
        failed |= self._log_removals(outcomes, started)
        failed |= self._seal_groups(outcomes)
        failed |= self._publish(outcomes)
        failures = processor.response()["batchItemFailures"]
        failures += [{"itemIdentifier": message_id} for message_id in sorted(failed)]
        if self.aws_retries is not None:
            metrics.add_metric(name="AwsRetries", unit=MetricUnit.Count, value=self.aws_retries())
        if failures:
            metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=len(failures))
        return {"batchItemFailures": failures}

    def _record(self, record: SQSRecord) -> list[Outcome]:
        try:
            return self._ingest_record(record)
        except Exception:
            logger.exception("message failed; it returns to the queue for a retry")
            raise
        finally:
            logger.remove_keys(["key", "bucket", "dataset"])

    def _ingest_record(self, record: SQSRecord) -> list[Outcome]:
        attempt = int(record.attributes.approximate_receive_count or 1)
        if attempt > 1:
            metrics.add_metric(name="Redelivered", unit=MetricUnit.Count, value=1)
        if record.attributes.sent_timestamp:
            age_ms = max(utcnow().timestamp() * 1000 - int(record.attributes.sent_timestamp), 0)
            metrics.add_metric(name="QueueAge", unit=MetricUnit.Milliseconds, value=age_ms)
        events = parse_body(record.body)
        if not events:
            logger.info("S3 test event or no object-created record: consumed")
        outcomes = []
        for object_event in events:
            logger.append_keys(key=object_event.key, bucket=object_event.bucket)
            outcome = self.ingest(event=object_event, attempt=attempt)
            logger.append_keys(dataset=outcome.dataset)
            outcomes.append(outcome)
        return outcomes

    def _append_manifests(self, outcomes: dict[str, list[Outcome]], started: datetime) -> set[str]:
        """Append every registered item, one conditional write per dataset; the message ids
        whose append failed are returned so their messages are retried."""
        by_dataset: dict[str, list[tuple[str, Outcome]]] = defaultdict(list)
        for message_id, results in outcomes.items():
            for outcome in results:
                if outcome.needs_manifest and outcome.dataset:
                    by_dataset[outcome.dataset].append((message_id, outcome))
        failed: set[str] = set()
        conflicts = self.manifests.conflicts
        for dataset, pairs in by_dataset.items():
            replayed = [o.processed_at for _, o in pairs if o.processed_at < started]
            entries = [_entry(o, self.video_metadata) for _, o in pairs]
            try:
                added = self.manifests.append(dataset, entries, min(replayed, default=None))
            except Exception:
                logger.exception("manifest append failed", extra={"dataset": dataset})
                failed |= {message_id for message_id, _ in pairs}
                continue
            metrics.add_metric(name="ManifestEntries", unit=MetricUnit.Count, value=added)
        if self.manifests.conflicts > conflicts:
            # Lost races on a part (another writer got there first): re-read and re-applied.
            metrics.add_metric(
                name="ManifestConflicts",
                unit=MetricUnit.Count,
                value=self.manifests.conflicts - conflicts,
            )
        return failed

    def _log_removals(self, outcomes: dict[str, list[Outcome]], started: datetime) -> set[str]:
        """Log the batch's removals and registrations after a removal, one write per
        dataset, as appends are made; the message ids whose write failed are returned."""
        if self.removal_log is None:
            return set()
        by_dataset: dict[str, list[tuple[str, Outcome]]] = defaultdict(list)
        for message_id, results in outcomes.items():
            for outcome in results:
                if outcome.url_change is not None and outcome.dataset:
                    by_dataset[outcome.dataset].append((message_id, outcome))
        failed: set[str] = set()
        for dataset, pairs in by_dataset.items():
            replayed = [o.processed_at for _, o in pairs if o.processed_at < started]
            changes = [o.url_change for _, o in pairs if o.url_change is not None]
            try:
                self.removal_log.record(dataset, changes, min(replayed, default=None))
            except Exception:
                logger.exception("removal log write failed", extra={"dataset": dataset})
                failed |= {message_id for message_id, _ in pairs}
        return failed

    def _publish(self, outcomes: dict[str, list[Outcome]]) -> set[str]:
        """Tell the sinks what the batch registered or updated, replays included (a sink
        applies a change twice as once): one batched send. On failure the messages that had
        changes are retried; their outcomes replay and are published again."""
        if self.changes is None:
            return set()
        batches = batches_of(o for results in outcomes.values() for o in results)
        if not batches:
            return set()
        try:
            self.changes.publish(batches)
        except Exception:
            logger.exception("publishing changes to the sinks failed")
            return {
                message_id
                for message_id, results in outcomes.items()
                if any(change_of(o) is not None for o in results)
            }
        published = sum(len(b.changes) for b in batches)
        metrics.add_metric(name="ChangesPublished", unit=MetricUnit.Count, value=published)
        return set()

    def _seal_groups(self, outcomes: dict[str, list[Outcome]]) -> set[str]:
        """Seal the groups whose marker came in this batch (after its other records, so
        frames in the same batch are members); a replayed marker finishes an unwritten one.
        Returns the message ids to retry."""
        failed: set[str] = set()
        if self.sealer is None:
            return failed
        for message_id, results in outcomes.items():
            for outcome in results:
                if outcome.kind is not OutcomeKind.MARKER or not outcome.group:
                    continue
                try:
                    self.sealer.seal(GroupRef.parse(outcome.group))
                except Exception:
                    logger.exception("sealing failed", extra={"group": outcome.group})
                    failed.add(message_id)
        return failed


def _entry(outcome: Outcome, video_metadata: VideoMetadataPolicy) -> Entry:
    """The entry decided with the outcome; a replayed outcome's built again from its item."""
    if isinstance(outcome, Registered):
        return outcome.entry
    assert outcome.item is not None  # needs_manifest: a registered item
    return entry_for(outcome.item, video_metadata)


def _count(outcomes: dict[str, list[Outcome]], started: datetime) -> None:
    """Outcome metrics for events decided in this run (replays were counted when decided)."""
    for results in outcomes.values():
        for outcome in results:
            if outcome.processed_at >= started:
                metrics.add_metric(name=outcome.kind.value.title(), unit=MetricUnit.Count, value=1)
                registered = outcome.kind in (OutcomeKind.REGISTERED, OutcomeKind.UPDATED)
                video = outcome.item.media.video if outcome.item is not None else None
                if registered and video is not None and video.variable_rate:
                    # Variable-rate videos registered (README, "Frame timing").
                    metrics.add_metric(
                        name="VariableFrameRateVideos", unit=MetricUnit.Count, value=1
                    )
