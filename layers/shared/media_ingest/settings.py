"""Configuration: every environment variable the functions read, validated once at cold start."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from media_ingest.faults import parse_faults
from media_ingest.groups.rules import DEFAULT_MARKER, GroupKind
from media_ingest.platforms import encord
from media_ingest.sinks.label_studio import ProjectRoutes
from media_ingest.sources import DATASET_NAME, SourceBucket, parse_sources

DEFAULT_IGNORE = (".DS_Store", "Thumbs.db", "desktop.ini", "._*", "*/")

UrlStyle = Literal["virtual", "path", "s3"]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """The ingest function's configuration (template.yaml sets each variable)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    catalog_table: str = Field(validation_alias="CATALOG_TABLE")
    manifest_bucket: str = Field(validation_alias="MANIFEST_BUCKET")
    manifest_prefix: str = Field(default="manifests/", validation_alias="MANIFEST_PREFIX")
    failure_queue_url: str = Field(validation_alias="FAILURE_QUEUE_URL")
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")

    default_dataset: str = Field(default="default", validation_alias="DEFAULT_DATASET")
    dataset_routes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias="DATASET_ROUTES"
    )
    update_datasets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="UPDATE_DATASETS"
    )
    # "on": each object's content identity is looked up before it is registered (one
    # HeadObject and a conditional PutItem per checksum); "off": no duplicate_of, no skips.
    content_identity: Literal["on", "off"] = Field(
        default="off", validation_alias="CONTENT_IDENTITY"
    )
    # Datasets where an object whose bytes are already registered (content.py) is skipped
    # (outcome duplicate) instead of registered with `duplicate_of`.
    skip_duplicate_datasets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="SKIP_DUPLICATE_DATASETS"
    )
    # Buckets teams already have (sources.py): their prefixes and datasets, for routing.
    source_buckets: Annotated[tuple[SourceBucket, ...], NoDecode] = Field(
        default=(), validation_alias="SOURCE_BUCKETS"
    )
    ignore_patterns: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_IGNORE, validation_alias="IGNORE_PATTERNS"
    )
    object_url_style: UrlStyle = Field(default="virtual", validation_alias="OBJECT_URL_STYLE")
    # "" (off) or the suffix of sidecar JSON files: `clip.mp4` + `.json` (client_metadata.py).
    sidecar_suffix: str = Field(
        default="", pattern=r"^$|^[A-Za-z0-9._-]{1,64}$", validation_alias="SIDECAR_SUFFIX"
    )

    # "on": key frames from the container index go into a video's `$encord` block
    # (probing/mp4_frames.py, mkv_index.py).
    key_frames: Literal["off", "on"] = Field(default="off", validation_alias="KEY_FRAMES")
    # Which videos' Encord entries carry `videoMetadata` (platforms/encord.py: constant-rate
    # ones by default; Encord synchronises the frames of the others itself).
    encord_video_metadata: encord.VideoMetadataPolicy = Field(
        default=encord.DEFAULT_VIDEO_METADATA, validation_alias="ENCORD_VIDEO_METADATA"
    )

    manifest_part_max_entries: int = Field(
        default=1000,
        ge=1,
        le=encord.MAX_ITEMS_PER_FILE,
        validation_alias="MANIFEST_PART_MAX_ENTRIES",
    )
    # Every append rewrites the open part: its bytes bound each append's memory and transfer
    # (entries may carry up to 256 KB of client metadata each).
    manifest_part_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        le=1024**3,
        validation_alias="MANIFEST_PART_MAX_BYTES",
    )
    presign_seconds: int = Field(default=300, ge=30, le=3600, validation_alias="PRESIGN_SECONDS")
    probe_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, validation_alias="PROBE_TIMEOUT_SECONDS"
    )
    ffprobe_path: str = Field(default="ffprobe", validation_alias="FFPROBE_PATH")
    # Limits of each ffprobe process (probing/ffprobe.py): address space, CPU time.
    ffprobe_memory_mb: int = Field(
        default=256, ge=64, le=8192, validation_alias="FFPROBE_MEMORY_MB"
    )
    ffprobe_cpu_seconds: int = Field(
        default=20, ge=1, le=600, validation_alias="FFPROBE_CPU_SECONDS"
    )
    # Archive drops (archives.py): where the ingest function hands archives; empty: archives
    # fail with UNSUPPORTED_KIND. The caps bound what the extract function streams.
    extract_queue_url: str = Field(default="", validation_alias="EXTRACT_QUEUE_URL")
    # The extract function writes members here (they are drops); only it reads this.
    drop_bucket: str = Field(default="", validation_alias="DROP_BUCKET")
    # The role it assumes, per archive, to write that archive's members ("" = its own role).
    member_writer_role_arn: str = Field(default="", validation_alias="MEMBER_WRITER_ROLE_ARN")
    max_archive_bytes: int = Field(default=5 * 1024**3, ge=1, validation_alias="MAX_ARCHIVE_BYTES")
    max_extracted_bytes: int = Field(
        default=20 * 1024**3, ge=1, validation_alias="MAX_EXTRACTED_BYTES"
    )
    max_member_bytes: int = Field(default=5 * 1024**3, ge=1, validation_alias="MAX_MEMBER_BYTES")
    max_archive_members: int = Field(default=10_000, ge=1, validation_alias="MAX_ARCHIVE_MEMBERS")
    max_compression_ratio: int = Field(default=200, ge=2, validation_alias="MAX_COMPRESSION_RATIO")
    # Grouping (grouping.py): the group table ("" turns grouping off: every file is its own
    # entry), key prefix -> image_groups | image_sequences, the quiet period after which an
    # open group is sealed, and the name of the marker object that seals one at once.
    group_table: str = Field(default="", validation_alias="GROUP_TABLE")
    group_routes: Annotated[dict[str, GroupKind], NoDecode] = Field(
        default_factory=dict, validation_alias="GROUP_ROUTES"
    )
    group_quiet_seconds: int = Field(
        default=300, ge=1, le=7 * 24 * 3600, validation_alias="GROUP_QUIET_SECONDS"
    )
    group_marker: str = Field(
        default=DEFAULT_MARKER, min_length=1, pattern=r"^[^/]+$", validation_alias="GROUP_MARKER"
    )
    # The scheduled reconcile (reconcile/): S3 Inventory destinations (s3://bucket/prefix/,
    # comma-separated) whose latest report it compares with the catalog, whether it enqueues
    # what was missed, how recent an object may be before it is judged, and where it enqueues.
    reconcile_inventories: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="RECONCILE_INVENTORIES"
    )
    reconcile_apply: bool = Field(default=True, validation_alias="RECONCILE_APPLY")
    reconcile_grace_minutes: int = Field(
        default=60, ge=0, validation_alias="RECONCILE_GRACE_MINUTES"
    )
    ingest_queue_url: str = Field(default="", validation_alias="INGEST_QUEUE_URL")
    # Game days and the LocalStack fault tests only (media_ingest.faults); empty: off.
    fault_injection: str = Field(default="", validation_alias="FAULT_INJECTION")
    # Sinks (sinks/): the FIFO queue the ingest function publishes catalog changes to (""
    # publishes nothing), and the Label Studio sink's secret (its ARN or name: url and
    # personal access token), projects and the sink queue's receive count before it gives up.
    sink_queue_url: str = Field(default="", validation_alias="SINK_QUEUE_URL")
    label_studio_secret: str = Field(default="", validation_alias="LABEL_STUDIO_SECRET")
    label_studio_projects: Annotated[ProjectRoutes, NoDecode] = Field(
        default_factory=ProjectRoutes, validation_alias="LABEL_STUDIO_PROJECTS"
    )
    sink_max_receive_count: int = Field(
        default=10, ge=1, le=1000, validation_alias="SINK_MAX_RECEIVE_COUNT"
    )

    @field_validator("dataset_routes", "group_routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("source_buckets", mode="before")
    @classmethod
    def _parse_sources(cls, value: object) -> object:
        return parse_sources(value) if isinstance(value, str) else value

    @field_validator("label_studio_projects", mode="before")
    @classmethod
    def _parse_projects(cls, value: object) -> object:
        if isinstance(value, str):
            return {"routes": json.loads(value) if value.strip() else {}}
        return value

    @field_validator(
        "update_datasets",
        "skip_duplicate_datasets",
        "ignore_patterns",
        "reconcile_inventories",
        mode="before",
    )
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("default_dataset")
    @classmethod
    def _check_dataset(cls, value: str) -> str:
        if not DATASET_NAME.match(value):
            raise ValueError(f"dataset name {value!r} must match {DATASET_NAME.pattern}")
        return value

    @field_validator("dataset_routes")
    @classmethod
    def _check_routes(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix, name in value.items():
            if not DATASET_NAME.match(name):
                raise ValueError(f"route {prefix!r}: dataset name {name!r} is not valid")
        return value

    @field_validator("group_routes")
    @classmethod
    def _check_group_routes(cls, value: dict[str, GroupKind]) -> dict[str, GroupKind]:
        for prefix, kind in value.items():
            if kind is GroupKind.DICOM_SERIES:
                raise ValueError(
                    f"group route {prefix!r}: DICOM files are grouped by series wherever they "
                    "are; a route names image_groups or image_sequences"
                )
            if not prefix.endswith("/"):
                raise ValueError(f"group route {prefix!r} must end with '/'")
        return value

    @field_validator("fault_injection")
    @classmethod
    def _check_faults(cls, value: str) -> str:
        parse_faults(value)
        return value

    @field_validator("manifest_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return value if value.endswith("/") or not value else value + "/"


@cache
def load_settings() -> Settings:
    """Read the environment once per execution environment; a missing variable is named."""
    return Settings()
