"""The records the pipeline writes: catalog items, failure records and outcomes.

These models are the contract: the catalog table, the failure queue and the CLI's --json
output are their JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from media_ingest.content import ContentIdentity
from media_ingest.errors import ErrorCode, Stage
from media_ingest.events import Deletion, ObjectEvent
from media_ingest.media import MediaInfo, MediaKind


def utcnow() -> datetime:
    return datetime.now(UTC)


class Removal(BaseModel):
    """The deletion of a registered object: the item is kept, marked with this."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    deletion: Deletion
    deleted_at: datetime = Field(description="when S3 removed the object (the event's time)")
    removed_at: datetime = Field(default_factory=utcnow, description="when it was recorded")


class CatalogItem(BaseModel):
    """One registered object: the catalog's unit, keyed by (dataset, object_url).

    A deleted object's item stays, with `removed` set, until the key is registered again;
    the operator commands (`items`, exports) leave it out."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    object_url: str
    bucket: str
    key: str
    title: str
    kind: MediaKind
    mime_type: str
    size: int
    etag: str
    version_id: str | None
    sequencer: str
    event_id: str
    event_time: datetime
    registered_at: datetime
    media: MediaInfo
    # What identifies its bytes (content.py); None for items registered before it existed.
    content: ContentIdentity | None = None
    removed: Removal | None = None

    @property
    def live(self) -> bool:
        return self.removed is None

    @classmethod
    def from_probe(
        cls,
        event: ObjectEvent,
        dataset: str,
        url: str,
        media: MediaInfo,
        content: ContentIdentity | None = None,
    ) -> CatalogItem:
        return cls(
            dataset=dataset,
            object_url=url,
            bucket=event.bucket,
            key=event.key,
            title=event.key,
            kind=media.kind,
            mime_type=media.mime_type,
            size=event.size,
            etag=event.etag,
            version_id=event.version_id,
            sequencer=event.sequencer,
            event_id=event.event_id,
            event_time=event.event_time,
            registered_at=utcnow(),
            media=media,
            content=content,
        )


class FailureRecord(BaseModel):
    """What the failure queue carries and the catalog keeps for every failed object."""

    model_config = ConfigDict(frozen=True)

    object_url: str
    bucket: str
    key: str
    dataset: str | None
    stage: Stage
    error_code: ErrorCode
    message: str
    attempt: int = Field(ge=1, description="SQS receive count of the message that failed")
    event_id: str
    event_time: datetime
    size: int
    failed_at: datetime = Field(default_factory=utcnow)
    # The reader that raised, when the failure is an exception no reader meant to raise
    # (PARSER_ERROR): `probing.dicom_header (pydicom)`.
    parser: str | None = None


class OutcomeKind(StrEnum):
    REGISTERED = "registered"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    FAILED = "failed"
    IGNORED = "ignored"
    # An archive handed to the extract queue: its members are drops with their own outcomes.
    ARCHIVE = "archive"
    # A group's marker object (`_SEALED`): consumed, and its group sealed.
    MARKER = "marker"
    # An object-removed event (a deletion or a delete marker): its item is marked removed.
    DELETED = "deleted"


class UrlChange(BaseModel):
    """A registered URL removed, or registered again after its removal: what the manifest's
    removal log lists so an importer can act on it (manifests/removals.py)."""

    model_config = ConfigDict(frozen=True)

    object_url: str
    key: str
    change: Literal["removed", "restored"]
    at: datetime = Field(description="when S3 removed or wrote the object (the event's time)")
    event_id: str


class OutcomeMark(BaseModel):
    """The last outcome of an object URL that left no live catalog item (failed, handed to
    extraction, skipped as a duplicate of other content, deleted): kept in the item's place
    so that `reconcile` can tell an object that had its outcome from one whose event was
    lost, and the failure log a failure settled by a deletion."""

    model_config = ConfigDict(frozen=True)

    kind: OutcomeKind
    dataset: str
    object_url: str
    bucket: str
    key: str
    etag: str
    event_id: str
    at: datetime = Field(default_factory=utcnow)
    detail: str | None = None
    # A copy skipped as a duplicate: the URL of the registered object with the same bytes.
    duplicate_of: str | None = None


class Outcome(BaseModel):
    """The one recorded outcome of one object-created event (the ledger's unit)."""

    model_config = ConfigDict(frozen=True)

    kind: OutcomeKind
    event_id: str
    bucket: str
    key: str
    object_url: str | None = None
    dataset: str | None = None
    detail: str | None = None
    processed_at: datetime = Field(default_factory=utcnow)
    item: CatalogItem | None = None
    failure: FailureRecord | None = None
    # The group (grouping.GroupRef.group_id) a member joined or a marker sealed: a member's
    # manifest entry is its group's, written when the group is sealed.
    group: str | None = None
    # A removal, or a registration after one, for the manifest's removal log.
    url_change: UrlChange | None = None

    @property
    def needs_manifest(self) -> bool:
        """A registered object, or an update (its new metadata: Encord upserts it), that is
        not a group member (its group's entry is written when the group is sealed)."""
        return (
            self.kind in (OutcomeKind.REGISTERED, OutcomeKind.UPDATED)
            and self.item is not None
            and not self.group
        )


class Refusal(BaseModel):
    """An object an export format cannot carry: listed in its refused.csv, never dropped."""

    model_config = ConfigDict(frozen=True)

    object_url: str
    kind: str
    reason: str
