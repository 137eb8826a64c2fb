"""The production object graphs: settings in, each function's ready runner out (once per cold
start). One way to build each collaborator, so two functions never disagree on one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_ingest.adapters.catalog import CatalogRows, DynamoCatalog, DynamoPartNumbers
from media_ingest.adapters.claims import DynamoClaims
from media_ingest.adapters.clients import retries
from media_ingest.adapters.groups import DynamoGroupStore
from media_ingest.adapters.listing import InventoryLister, latest_manifest
from media_ingest.adapters.manifests import S3AnnotationStore, S3PartStore
from media_ingest.adapters.objects import MemberWriters, S3ArchiveReader, S3Objects
from media_ingest.adapters.queues import (
    SqsChangeQueue,
    SqsExtractQueue,
    SqsFailureQueue,
    SqsIngestQueue,
)
from media_ingest.adapters.secrets import LabelStudioSecret
from media_ingest.deadline import Deadline
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.faults import FaultInjector, FaultyCatalog, appended_hook, parse_faults
from media_ingest.groups.membership import Membership
from media_ingest.groups.rules import GroupRoutes
from media_ingest.groups.sealing import GroupSealer
from media_ingest.ingest.batch_runner import WORKERS, BatchRunner
from media_ingest.ingest.identity import ContentIdentifier
from media_ingest.ingest.ingestor import Ingestor
from media_ingest.ingest.registration import Catalog
from media_ingest.listing import Lister, RateLimit
from media_ingest.manifests.removals import RemovalLog
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.probing.ffprobe import FfprobeRunner
from media_ingest.probing.prober import ObjectProber
from media_ingest.reconcile.runner import Reconciler, Unsaved
from media_ingest.reconcile.scheduled import ScheduledReconcile
from media_ingest.reconcile.snapshot import Snapshot
from media_ingest.routing import Router
from media_ingest.settings import Settings
from media_ingest.sinks.label_studio import LabelStudioSink
from media_ingest.sinks.runner import SinkRunner

if TYPE_CHECKING:
    from media_ingest.archives.extractor import ExtractRunner

# Validated annotation CSVs, in the manifest bucket (no notifications: never ingested).
ANNOTATIONS_PREFIX = "annotations/"
# Messages per second the scheduled reconcile enqueues at most (as backfill's default).
RECONCILE_RATE = 100.0


def build_runner(settings: Settings) -> BatchRunner:
    """The ingest function's graph."""
    faults = parse_faults(settings.fault_injection)
    injector = FaultInjector(faults) if faults else None
    tables = DynamoCatalog(settings.catalog_table)
    catalog: Catalog = tables
    if injector is not None:
        catalog = FaultyCatalog(catalog, injector)
    manifests = _manifests(settings, injector)
    objects = S3Objects(settings.presign_seconds)
    deadline = Deadline()
    ingestor = Ingestor(
        settings=settings,
        router=Router.of(settings),
        prober=ObjectProber(
            reader=objects,
            ffprobe=FfprobeRunner(
                settings.ffprobe_path,
                settings.probe_timeout_seconds,
                memory_mb=settings.ffprobe_memory_mb,
                cpu_seconds=settings.ffprobe_cpu_seconds,
                deadline=deadline,
            ),
            sidecar_suffix=settings.sidecar_suffix,
            keyframes=settings.key_frames == "on",
            links=DynamoCatalog(settings.catalog_table),
        ),
        catalog=catalog,
        failures=_failures(settings, catalog),
        extractions=(
            SqsExtractQueue(settings.extract_queue_url) if settings.extract_queue_url else None
        ),
        membership=(
            Membership(
                GroupRoutes(settings.group_routes, settings.group_marker),
                DynamoGroupStore(settings.group_table),
                settings.group_quiet_seconds,
            )
            if settings.group_table
            else None
        ),
        identity=(
            ContentIdentifier(
                reader=objects,
                claims=DynamoClaims(settings.catalog_table),
                items=tables,
                hasher=objects,
            )
            if settings.content_identity == "on"
            else None
        ),
        objects=objects,
    )
    return BatchRunner(
        ingest=ingestor.ingest,
        manifests=manifests,
        sealer=_sealer(settings, manifests) if settings.group_table else None,
        leases=catalog,
        deadline=deadline,
        aws_retries=retries.take,
        changes=SqsChangeQueue(settings.sink_queue_url) if settings.sink_queue_url else None,
        video_metadata=settings.encord_video_metadata,
        # A fault (game days, tests/integration/test_faults.py) is reached by the record it
        # names: records decided one at a time, so that no kill cuts another short.
        workers=1 if injector is not None else WORKERS,
        removal_log=RemovalLog(
            S3PartStore(settings.manifest_bucket, settings.manifest_prefix),
            max_entries=settings.manifest_part_max_entries,
        ),
    )


def build_reconciler(settings: Settings) -> ScheduledReconcile:
    """The scheduled reconcile's graph: inventory reports, the catalog, the ingest queue."""
    if not settings.ingest_queue_url:
        raise ValueError("INGEST_QUEUE_URL must name the ingest queue for the reconcile function")
    objects, queue = S3Objects(), SqsIngestQueue(settings.ingest_queue_url)

    def reconciler(lister: Lister) -> Reconciler:
        return Reconciler(
            catalog=CatalogRows(settings.catalog_table),
            lister=lister,
            objects=objects,
            queue=queue,
            router=Router.of(settings),
            groups=GroupRoutes(settings.group_routes, settings.group_marker),
            region=settings.region,
            url_style=settings.object_url_style,
            snapshot=Snapshot.temporary(),  # on /tmp (EphemeralStorage), not in memory
            store=Unsaved(),
            rate=RateLimit(RECONCILE_RATE),
        )

    return ScheduledReconcile(
        inventories=settings.reconcile_inventories,
        apply=settings.reconcile_apply,
        grace_seconds=settings.reconcile_grace_minutes * 60,
        latest=latest_manifest,
        lister=lambda manifest: InventoryLister(None, manifest),
        reconciler=reconciler,
    )


def build_sealer(settings: Settings) -> GroupSealer:
    """The sweeper's graph: the group table and the manifest writer."""
    if not settings.group_table:
        raise ValueError("GROUP_TABLE is not set: the sweeper has no groups to seal")
    return _sealer(settings, _manifests(settings))


def build_sink_runner(settings: Settings) -> SinkRunner:
    """The Label Studio sink's graph: its secret, the catalog it reads, the failures it
    records. The SDK is imported here, not at module level: only the sink's layer has it."""
    from media_ingest.adapters.label_studio import SdkTaskStore  # noqa: PLC0415

    if not settings.label_studio_secret:
        raise ValueError("LABEL_STUDIO_SECRET must name the Label Studio sink's secret")
    catalog = DynamoCatalog(settings.catalog_table)
    return SinkRunner(
        LabelStudioSink(
            tasks=SdkTaskStore(LabelStudioSecret(settings.label_studio_secret).read),
            catalog=catalog,
            routes=settings.label_studio_projects,
            failures=_failures(settings, catalog),
        ),
        max_receive_count=settings.sink_max_receive_count,
    )


def build_extract_runner(settings: Settings) -> ExtractRunner:
    """The extract function's graph."""
    # Here, not at the top: the ingest function never extracts, and the extractor's
    # Powertools batch utility is 25 ms of every cold start that imports it.
    from media_ingest.archives.extractor import Extractor, ExtractRunner  # noqa: PLC0415

    if not settings.drop_bucket:
        raise ValueError("DROP_BUCKET must name the drop bucket for the extract function")
    catalog = DynamoCatalog(settings.catalog_table)
    return ExtractRunner(
        Extractor(
            settings=settings,
            router=Router.of(settings),
            failures=_failures(settings, catalog),
            archive=S3ArchiveReader,
            writers=MemberWriters(settings.drop_bucket, settings.member_writer_role_arn),
            store=S3AnnotationStore(
                settings.manifest_bucket,
                ANNOTATIONS_PREFIX,
                settings.region,
                settings.object_url_style,
            ),
            links=catalog,
        )
    )


def _manifests(settings: Settings, injector: FaultInjector | None = None) -> ManifestWriter:
    return ManifestWriter(
        S3PartStore(settings.manifest_bucket, settings.manifest_prefix),
        max_entries=settings.manifest_part_max_entries,
        max_bytes=settings.manifest_part_max_bytes,
        update_datasets=frozenset(settings.update_datasets),
        on_added=appended_hook(injector) if injector is not None else None,
        numbers=DynamoPartNumbers(settings.catalog_table),
    )


def _sealer(settings: Settings, manifests: ManifestWriter) -> GroupSealer:
    return GroupSealer(
        DynamoGroupStore(settings.group_table), manifests, settings.group_quiet_seconds
    )


def _failures(settings: Settings, catalog: Catalog) -> FailureRecorder:
    return FailureRecorder(catalog, SqsFailureQueue(settings.failure_queue_url))
