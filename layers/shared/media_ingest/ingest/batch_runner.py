"""One SQS batch of S3 events: its messages decided concurrently, one manifest append per
dataset, then the groups its markers seal.

The messages run through `Ingestor.ingest` on a bounded pool of threads (their time is round
trips and ffprobe subprocesses, not Python); the ingestor records each event's one outcome
(the ledger, ingest/registration.py), so a redelivery replays it. Each run holds a lease
(its deadline) on the items it registers: it alone appends their entries, in one append per
dataset after all messages. An entry decided by an earlier run of its event is appended
only if no part holds it yet, and only once that run's lease has expired (else its message
is retried later). A failed append fails only the messages that fed it, and gives up their
leases so that their redelivery need not wait. The batch's removals (and registrations
after one) go to their datasets' removal logs the same way, and its catalog changes are
then published to the sinks in one call (sinks/changes.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from media_ingest.deadline import Deadline
from media_ingest.events import parse_body
from media_ingest.groups.rules import GroupRef
from media_ingest.groups.sealing import GroupSealer
from media_ingest.ingest.ingestor import Registered
from media_ingest.ingest.registration import Lease
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.observability import logger, metrics
from media_ingest.platforms.encord import (
    DEFAULT_VIDEO_METADATA,
    Entry,
    VideoMetadataPolicy,
    entry_for,
)
from media_ingest.records import CatalogItem, Outcome, OutcomeKind, UrlChange, utcnow
from media_ingest.sinks.changes import ChangeBatch, batches_of, change_of

if TYPE_CHECKING:  # its module takes 50 ms to import: the handler has no use for it at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Messages of one batch decided at once: ten ffprobes fit the function's 1,024 MB with room
# to spare (bench/cost.py measures their peak), and ten is also botocore's default
# connection pool per client.
WORKERS = 10

IngestFn = Callable[..., Outcome]


class Leases(Protocol):
    def release(self, item: CatalogItem, lease: Lease) -> None: ...


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
    sealer: GroupSealer | None = None
    # Where leases are given up (the catalog); None: they expire at the run's deadline.
    leases: Leases | None = None
    workers: int = WORKERS
    # SDK retries since the last call (the AwsRetries metric); None: not counted.
    aws_retries: Callable[[], int] | None = None
    # Where catalog changes go for the sinks (the sink queue); None: no sink deployed.
    changes: ChangePublisher | None = None
    # Removed URLs (and URLs registered again) for importers; None: not logged.
    removal_log: RemovalLogWriter | None = None
    # The Ingestor's setting: a replayed outcome's entry is built again exactly as it was.
    video_metadata: VideoMetadataPolicy = DEFAULT_VIDEO_METADATA
    # Set from each invocation's context: probes that could not finish before it are not
    # started (their messages are retried), so a batch never times out as a whole.
    deadline: Deadline | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if self.deadline is not None:
            self.deadline.start(context)
        started = utcnow()
        lease = Lease.for_run(context.get_remaining_time_in_millis() / 1000)
        records: list[dict[str, Any]] = event.get("Records", [])
        ids = [r["messageId"] for r in records]
        decided = dict(zip(ids, self._decide(records, lease), strict=True))
        metrics.publish_waiting()  # the workers' figures, printed from this thread only
        outcomes = {m: r for m, r in decided.items() if r is not None}
        failed = {m for m, r in decided.items() if r is None}
        _count(outcomes, started)
        failed |= self._append_manifests(outcomes, started)
        failed |= self._log_removals(outcomes, started)
        failed |= self._seal_groups(outcomes)
        failed |= self._publish(outcomes)
        self._release(outcomes, failed, lease, started)
        if self.aws_retries is not None:
            metrics.add_metric(name="AwsRetries", unit=MetricUnit.Count, value=self.aws_retries())
        if failed:
            metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=len(failed))
        return {"batchItemFailures": [{"itemIdentifier": m} for m in ids if m in failed]}

    def _decide(
        self, records: list[dict[str, Any]], lease: Lease
    ) -> Iterator[list[Outcome] | None]:
        """Each message's outcomes (None: it failed and returns to the queue), in order."""
        if len(records) <= 1:
            return iter([self._record(r, lease) for r in records])
        return self._executor().map(lambda r: self._record(r, lease), records)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:  # one pool per execution environment, made on first use
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="record")
            return self._pool

    def _record(self, record: dict[str, Any], lease: Lease) -> list[Outcome] | None:
        try:
            return self._ingest_record(record, lease)
        except Exception:
            logger.exception("message failed; it returns to the queue for a retry")
            return None
        finally:
            logger.thread_safe_clear_keys()

    def _ingest_record(self, record: dict[str, Any], lease: Lease) -> list[Outcome]:
        attributes = record.get("attributes") or {}
        attempt = int(attributes.get("ApproximateReceiveCount") or 1)
        if attempt > 1:
            metrics.add_metric(name="Redelivered", unit=MetricUnit.Count, value=1)
        sent = attributes.get("SentTimestamp")
        if sent:
            age_ms = max(utcnow().timestamp() * 1000 - int(sent), 0)
            metrics.add_metric(name="QueueAge", unit=MetricUnit.Milliseconds, value=age_ms)
        events = parse_body(record["body"])
        if not events:
            logger.info("S3 test event or no object-created record: consumed")
        outcomes = []
        for object_event in events:
            logger.thread_safe_append_keys(key=object_event.key, bucket=object_event.bucket)
            outcome = self.ingest(event=object_event, attempt=attempt, lease=lease)
            logger.thread_safe_append_keys(dataset=outcome.dataset)
            outcomes.append(outcome)
        return outcomes

    def _append_manifests(self, outcomes: dict[str, list[Outcome]], started: datetime) -> set[str]:
        """Append every registered item, one append per dataset; the message ids whose append
        failed (or must wait for an earlier run's lease) are returned to be retried."""
        by_dataset: dict[str, list[tuple[str, Outcome]]] = defaultdict(list)
        for message_id, results in outcomes.items():
            for outcome in results:
                if outcome.needs_manifest and outcome.dataset:
                    by_dataset[outcome.dataset].append((message_id, outcome))
        failed: set[str] = set()
        conflicts = self.manifests.conflicts
        for dataset, pairs in by_dataset.items():
            try:
                entries, waiting = self._to_append(dataset, pairs, started)
                added = self.manifests.append(dataset, entries)
            except Exception:
                logger.exception("manifest append failed", extra={"dataset": dataset})
                failed |= {message_id for message_id, _ in pairs}
                continue
            if waiting:
                logger.info(
                    "an earlier run of these events may still be writing their entries: "
                    "their messages are retried after it ends",
                    extra={"dataset": dataset, "messages": len(waiting)},
                )
            failed |= waiting
            metrics.add_metric(name="ManifestEntries", unit=MetricUnit.Count, value=added)
        if self.manifests.conflicts > conflicts:
            # Lost races on a part (another writer got there first): re-read and re-applied.
            metrics.add_metric(
                name="ManifestConflicts",
                unit=MetricUnit.Count,
                value=self.manifests.conflicts - conflicts,
            )
        return failed

    def _to_append(
        self, dataset: str, pairs: list[tuple[str, Outcome]], started: datetime
    ) -> tuple[list[Entry], set[str]]:
        """The entries this run appends, and the messages that must wait: those decided in
        this run, then those an earlier run decided that no part holds yet and whose run's
        lease has expired."""
        fresh = [_entry(o, self.video_metadata) for _, o in pairs if o.processed_at >= started]
        earlier = [(m, o) for m, o in pairs if o.processed_at < started]
        if not earlier:
            return fresh, set()
        since = min(o.processed_at for _, o in earlier)
        entries = [(m, o, _entry(o, self.video_metadata)) for m, o in earlier]
        found = self.manifests.present(dataset, [e for _, _, e in entries], since)
        waiting = set()
        for message_id, outcome, entry in entries:
            if entry.key in found:  # this very payload (an update's older one does not count)
                continue
            if isinstance(outcome, Registered) and outcome.held:
                waiting.add(message_id)
            else:
                fresh.append(entry)
        return fresh, waiting

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

    def _release(
        self, outcomes: dict[str, list[Outcome]], failed: set[str], lease: Lease, started: datetime
    ) -> None:
        """Items this run registered but whose entries it did not append: their redelivery
        need not wait for this run's deadline (without the release it waits, no more)."""
        if self.leases is None:
            return
        for message_id in failed & set(outcomes):
            for outcome in outcomes[message_id]:
                if outcome.needs_manifest and outcome.item and outcome.processed_at >= started:
                    try:
                        self.leases.release(outcome.item, lease)
                    except Exception:
                        logger.exception("lease release failed; it expires at the deadline")


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
