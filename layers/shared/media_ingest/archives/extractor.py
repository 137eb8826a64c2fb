"""One extract-queue message: extract the archive it names, and record what was refused.

Every refusal (of the archive, or of one member) becomes a failure record in the catalog
and on the failure queue; the archive's own event already has its outcome (`archive`, from
the ingest function), and each written member gets its own from its own event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_ingest.archives.rules import (
    SNIFF_BYTES,
    AnnotationStore,
    ArchiveReader,
    ArchiveRefused,
    Extraction,
    Limits,
    LinkBook,
    MemberWriter,
    Result,
    member_url,
    prefix_of,
)
from media_ingest.errors import ErrorCode, MediaError, Stage, permanent
from media_ingest.events import ObjectEvent
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.observability import logger, metrics
from media_ingest.probing.prober import EXTRACTED_CONTAINERS
from media_ingest.probing.sniffer import detect
from media_ingest.routing import Router
from media_ingest.settings import Settings
from media_ingest.urls import object_url


class Archive(ArchiveReader, Protocol):
    def head(self, length: int) -> bytes: ...


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_archive_bytes=settings.max_archive_bytes,
        max_extracted_bytes=settings.max_extracted_bytes,
        max_member_bytes=settings.max_member_bytes,
        max_members=settings.max_archive_members,
        max_ratio=settings.max_compression_ratio,
    )


@dataclass
class Extractor:
    settings: Settings
    router: Router
    failures: FailureRecorder
    archive: Callable[[ObjectEvent], Archive]
    # The writer of one archive's members, by the prefix they go under (adapters/objects.py
    # MemberWriters: scoped by IAM to that prefix).
    writers: Callable[[str], MemberWriter]
    store: AnnotationStore
    links: LinkBook

    def extract(self, event: ObjectEvent, attempt: int = 1) -> Result:
        """Extract one archive version. Raises only for transient (retryable) problems."""
        url = object_url(
            event.bucket, event.key, self.settings.region, self.settings.object_url_style
        )
        dataset = self.router.route(event.key).dataset
        reader = self.archive(event)
        try:
            found = detect(reader.head(min(SNIFF_BYTES, max(event.size, 1))), event.key)
            if found.container not in EXTRACTED_CONTAINERS:
                raise ArchiveRefused(
                    ErrorCode.UNSUPPORTED_KIND, f"{found.container} archives are not extracted"
                )
            result = Extraction(
                key=event.key,
                container=found.container,
                size=event.size,
                source=event.version_id or event.etag,
                reader=reader,
                writer=self.writers(prefix_of(event.key)),
                store=self.store,
                links=self.links,
                limits=limits_of(self.settings),
            ).run()
        except Exception as exc:
            # The archive's one failure boundary (as the ingestor's for any object): what
            # its bytes made a reader raise is its failure record, never a retry loop.
            error = permanent(exc, Stage.EXTRACT)
            if error is None:
                raise
            if error is not exc:
                logger.exception("archive reader failed", extra={"parser": error.parser})
            self.failures.record(event, error, url=url, dataset=dataset, attempt=attempt)
            return Result()
        for refused in result.refused:
            problem = MediaError(
                refused.code, f"{refused.member}: {refused.message}", refused.stage
            )
            self.failures.record(
                event,
                problem,
                url=member_url(url, refused.member),
                dataset=dataset,
                attempt=attempt,
                size=refused.size,
                member=refused.member,
            )
        metrics.add_metric(name="MembersWritten", unit=MetricUnit.Count, value=len(result.written))
        metrics.add_metric(name="MembersRefused", unit=MetricUnit.Count, value=len(result.refused))
        logger.info(
            "extracted",
            extra={
                "written": len(result.written),
                "skipped": len(result.skipped),
                "refused": len(result.refused),
                "annotations": result.annotations,
            },
        )
        return result


@dataclass
class ExtractRunner:
    """One SQS batch of the extract queue (the extract function's whole job)."""

    extractor: Extractor

    def run(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        with processor(records=event.get("Records", []), handler=self._record):
            processor.process()
        return dict(processor.response())

    def _record(self, record: SQSRecord) -> Result:
        # A body that is no ObjectEvent raises: retried, then dead-lettered (poison).
        archive = ObjectEvent.model_validate_json(record.body)
        logger.append_keys(key=archive.key, bucket=archive.bucket)
        try:
            attempt = int(record.attributes.approximate_receive_count or 1)
            return self.extractor.extract(archive, attempt)
        except Exception:
            logger.exception("extraction failed; the message returns to the queue for a retry")
            raise
        finally:
            logger.remove_keys(["key", "bucket"])


__all__ = ["ErrorCode", "ExtractRunner", "Extractor"]
