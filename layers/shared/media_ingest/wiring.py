"""The production object graph: settings in, a ready `BatchRunner` out (once per cold start)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from media_ingest.adapters.catalog import DynamoCatalog
from media_ingest.adapters.clients import client
from media_ingest.adapters.extraction import (
    S3AnnotationStore,
    S3ArchiveReader,
    S3MemberWriter,
    SqsExtractQueue,
)
from media_ingest.adapters.failures import SqsFailureQueue
from media_ingest.adapters.groups import DynamoGroupStore
from media_ingest.adapters.manifests import S3PartStore
from media_ingest.adapters.objects import S3Objects
from media_ingest.archives.extractor import Extractor, ExtractRunner
from media_ingest.faults import FaultInjector, FaultyCatalog, appended_hook, parse_faults
from media_ingest.groups.membership import Grouping, GroupSealer
from media_ingest.groups.rules import GroupRoutes
from media_ingest.ingest.batch_runner import BatchRunner, idempotency_config, idempotent_ingest
from media_ingest.ingest.ingestor import Ingestor
from media_ingest.ingest.registration import Catalog
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.probing.ffprobe import FfprobeRunner
from media_ingest.probing.prober import ObjectProber
from media_ingest.routing import Router
from media_ingest.settings import Settings

# Validated annotation CSVs, in the manifest bucket (no notifications: never ingested).
ANNOTATIONS_PREFIX = "annotations/"


def build_runner(settings: Settings) -> BatchRunner:
    faults = parse_faults(settings.fault_injection)
    injector = FaultInjector(faults) if faults else None
    catalog: Catalog = DynamoCatalog(settings.catalog_table)
    if injector is not None:
        catalog = FaultyCatalog(catalog, injector)
    manifests = ManifestWriter(
        S3PartStore(settings.manifest_bucket, settings.manifest_prefix),
        max_entries=settings.manifest_part_max_entries,
        on_added=appended_hook(injector) if injector is not None else None,
    )
    grouping = sealer = None
    if settings.group_table:
        store = DynamoGroupStore(settings.group_table)
        routes = GroupRoutes(settings.group_routes, settings.group_marker)
        grouping = Grouping(routes, store, settings.group_quiet_seconds)
        sealer = GroupSealer(store, manifests, settings.group_quiet_seconds)
    ingestor = Ingestor(
        settings=settings,
        router=Router.of(settings),
        prober=ObjectProber(
            reader=S3Objects(settings.presign_seconds),
            ffprobe=FfprobeRunner(settings.ffprobe_path, settings.probe_timeout_seconds),
            sidecar_suffix=settings.sidecar_suffix,
            keyframes=settings.key_frames == "on",
        ),
        catalog=catalog,
        failures=SqsFailureQueue(settings.failure_queue_url),
        extractions=(
            SqsExtractQueue(settings.extract_queue_url) if settings.extract_queue_url else None
        ),
        grouping=grouping,
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.catalog_table, key_attr="pk", boto3_client=client("dynamodb")
    )
    config = idempotency_config(settings.idempotency_seconds)
    return BatchRunner(
        ingest=idempotent_ingest(ingestor, persistence, config),
        manifests=manifests,
        idempotency=config,
        sealer=sealer,
    )


def build_sealer(settings: Settings) -> GroupSealer:
    """The sweeper's object graph: the group table and the manifest writer."""
    if not settings.group_table:
        raise ValueError("GROUP_TABLE is not set: the sweeper has no groups to seal")
    manifests = ManifestWriter(
        S3PartStore(settings.manifest_bucket, settings.manifest_prefix),
        max_entries=settings.manifest_part_max_entries,
    )
    return GroupSealer(
        DynamoGroupStore(settings.group_table), manifests, settings.group_quiet_seconds
    )


def build_extract_runner(settings: Settings) -> ExtractRunner:
    """The extract function's object graph (once per cold start)."""
    if not settings.drop_bucket:
        raise ValueError("DROP_BUCKET must name the drop bucket for the extract function")
    return ExtractRunner(
        Extractor(
            settings=settings,
            router=Router(
                settings.default_dataset, settings.dataset_routes, settings.ignore_patterns
            ),
            catalog=DynamoCatalog(settings.catalog_table),
            failures=SqsFailureQueue(settings.failure_queue_url),
            archive=S3ArchiveReader,
            writer=S3MemberWriter(settings.drop_bucket),
            store=S3AnnotationStore(
                settings.manifest_bucket,
                ANNOTATIONS_PREFIX,
                settings.region,
                settings.object_url_style,
            ),
        )
    )
