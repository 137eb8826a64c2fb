"""S3 object events from SQS message bodies: one `ObjectEvent` model for both shapes the
ingest queue carries, and event identity.

The two shapes, each modelled here field for field as AWS documents it and as Powertools'
parser models it (`S3Model`, `S3EventNotificationEventBridgeModel`), but only the fields the
stack reads: importing Powertools' models loads every AWS event type (75 ms of every cold
start, bench/cold_start.py).
- S3 event notifications (`{"Records": [...]}`): the drop bucket's own notification, and the
  events `backfill`, `redrive` and `reconcile` enqueue. Keys are form-encoded (a space is
  `+`), so they are decoded with `unquote_plus`.
- EventBridge envelopes (`{"source": "aws.s3", "detail-type": "Object Created", ...}`): the
  buckets teams already have, attached without touching their notification configuration.
  Keys are percent-encoded with a literal `+` left as it is (observed on LocalStack 2026.3.0;
  on AWS as reported in aws-solutions-library-samples/guidance-for-medialake-on-aws PR #21),
  so they are decoded with `unquote`, never `unquote_plus`.

Both yield the same events: object created, or object removed (a deletion, or a delete
marker in a versioned bucket). Owns the rule that a test event, or any other S3 event type,
is not an ingestion event. Never touches AWS.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus, unquote, unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_KEY_BYTES = 1024
SEQUENCER_WIDTH = 64


class _Bucket(BaseModel):
    name: str


class _Object(BaseModel):
    key: str
    size: int | None = Field(default=None, ge=0)
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class _Entity(BaseModel):
    bucket: _Bucket
    object: _Object | None = None


class _ResponseElements(BaseModel):
    x_amz_request_id: str = Field(alias="x-amz-request-id")


class S3Record(BaseModel):
    """One record of an S3 event notification (the fields the stack reads)."""

    eventName: str
    eventTime: datetime
    awsRegion: str
    responseElements: _ResponseElements
    s3: _Entity

    @model_validator(mode="after")
    def _created_has_object(self) -> S3Record:
        if self.eventName.startswith("ObjectCreated:") and (
            self.s3.object is None or self.s3.object.size is None
        ):
            raise ValueError("an object-created record names its object and its size")
        removed = self.eventName.startswith(("ObjectRemoved:", "LifecycleExpiration:"))
        if removed and self.s3.object is None:
            raise ValueError("an object-removed record names its object")
        return self


class S3Notification(BaseModel):
    Records: list[S3Record]


class _EventBridgeObject(BaseModel):
    key: str
    size: int | None = Field(default=None, ge=0)  # absent from deletions
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class _EventBridgeDetail(BaseModel):
    bucket: _Bucket
    object: _EventBridgeObject
    request_id: str = Field(default="", alias="request-id")
    reason: str | None = None
    deletion_type: str | None = Field(default=None, alias="deletion-type")


class S3EventBridgeEvent(BaseModel):
    """An S3 event EventBridge delivers ("Amazon S3 events delivered to EventBridge": detail
    version 0), the fields the stack reads."""

    detail_type: str = Field(alias="detail-type")
    time: datetime
    region: str
    detail: _EventBridgeDetail


class NotAnS3Event(ValueError):
    """The message body is neither an S3 event nor S3's test event (a poison message)."""


class Action(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


class Deletion(StrEnum):
    """How an object was removed: deleted for good, or hidden behind a delete marker."""

    DELETE = "delete"
    DELETE_MARKER = "delete_marker"


class Delivery(StrEnum):
    """Which shape the event arrived in (for logs and tests; never part of its identity)."""

    NOTIFICATION = "notification"
    EVENTBRIDGE = "eventbridge"


class ObjectEvent(BaseModel):
    """One object-created or object-removed event, with the key decoded as stored in S3."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int = Field(default=0, ge=0)
    etag: str = ""
    version_id: str | None = None
    sequencer: str = ""
    request_id: str = ""
    event_name: str
    event_time: datetime
    region: str
    action: Action = Action.CREATED
    deletion: Deletion | None = None
    delivery: Delivery = Delivery.NOTIFICATION

    @property
    def removed(self) -> bool:
        return self.action is Action.REMOVED

    @property
    def event_id(self) -> str:
        """What identifies this S3 event across redeliveries (not the SQS message id).

        On AWS the sequencer alone tells two writes of one key apart; the ETag is added
        because emulators send a constant sequencer (LocalStack) and some events carry none:
        without it an overwrite with new content would pass for a redelivery. The request id
        (the same in every redelivery of a notification) tells our own events apart: a
        backfill from a redrive of a failure. A removal has no ETag; it never shares an
        identity with a creation, whose events always carry one (S3's) or a request id of
        our own (backfill, redrive, reconcile), different from any removal's.
        """
        return "|".join(
            (
                self.bucket,
                self.key,
                self.version_id or "",
                self.sequencer,
                self.etag,
                self.request_id,
            )
        )

    @property
    def sequencer_order(self) -> str:
        """Sequencers compare as hex strings only after left-padding to equal length."""
        return self.sequencer.rjust(SEQUENCER_WIDTH, "0")


def is_test_event(body: str) -> bool:
    """S3 sends `s3:TestEvent` (no Records) when a notification is configured."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("Event") == "s3:TestEvent"


def parse_body(body: str) -> list[ObjectEvent]:
    """Object-created and object-removed events in one SQS message body; [] for S3's test
    event and for the other S3 event types (restores, tags, ACLs), which are not ours.

    Raises NotAnS3Event for anything else, so that the message is retried and then
    dead-lettered rather than silently consumed.
    """
    if is_test_event(body):
        return []
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise NotAnS3Event(f"message body is not JSON: {exc}") from exc
    if isinstance(data, dict) and data.get("source") == "aws.s3" and "detail" in data:
        return _from_eventbridge(data)
    try:
        model = S3Notification.model_validate(data)
    except ValidationError as exc:
        raise NotAnS3Event(f"message body is not an S3 event: {exc.error_count()} errors") from exc
    return [to_object_event(record) for record in model.Records if _action(record) is not None]


# EventBridge detail types of S3 that are ingestion events; the others are consumed.
_EVENTBRIDGE_ACTIONS = {"Object Created": Action.CREATED, "Object Deleted": Action.REMOVED}


def _from_eventbridge(data: dict[str, Any]) -> list[ObjectEvent]:
    try:
        envelope = S3EventBridgeEvent.model_validate(data)
    except ValidationError as exc:
        raise NotAnS3Event(
            f"message body is not an S3 EventBridge event: {exc.error_count()} errors"
        ) from exc
    action = _EVENTBRIDGE_ACTIONS.get(envelope.detail_type)
    if action is None:
        return []
    detail = envelope.detail
    deletion = None
    if action is Action.REMOVED:
        marker = (detail.deletion_type or "").lower().startswith("delete marker")
        deletion = Deletion.DELETE_MARKER if marker else Deletion.DELETE
    return [
        ObjectEvent(
            bucket=detail.bucket.name,
            key=unquote(detail.object.key),
            size=int(detail.object.size or 0),
            etag=(detail.object.etag or "").strip('"'),
            version_id=detail.object.version_id or None,
            sequencer=detail.object.sequencer or "",
            request_id=detail.request_id,
            event_name=f"{envelope.detail_type}:{detail.reason or ''}",
            event_time=envelope.time,
            region=envelope.region,
            action=action,
            deletion=deletion,
            delivery=Delivery.EVENTBRIDGE,
        )
    ]


def _action(record: S3Record) -> Action | None:
    """Created (`ObjectCreated:*`), removed (`ObjectRemoved:*`, `LifecycleExpiration:*`) or
    neither (restores, replication, tagging, ACL events: not ours)."""
    name = record.eventName
    if name.startswith("ObjectCreated:"):
        return Action.CREATED
    if name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        return Action.REMOVED
    return None


def to_object_event(record: S3Record) -> ObjectEvent:
    obj = record.s3.object
    if obj is None:  # pragma: no cover - the parser model rejects creation events without one
        raise NotAnS3Event("object record without an object")
    action = _action(record) or Action.CREATED
    deletion = None
    if action is Action.REMOVED:
        marker = record.eventName.endswith("DeleteMarkerCreated")
        deletion = Deletion.DELETE_MARKER if marker else Deletion.DELETE
    return ObjectEvent(
        bucket=record.s3.bucket.name,
        key=decode_key(obj.key),
        size=int(obj.size or 0),
        etag=(obj.eTag or "").strip('"'),
        version_id=obj.versionId or None,
        sequencer=obj.sequencer or "",
        request_id=record.responseElements.x_amz_request_id,
        event_name=record.eventName,
        event_time=record.eventTime,
        region=record.awsRegion,
        action=action,
        deletion=deletion,
    )


def decode_key(raw: str) -> str:
    """Keys in S3 event notifications are form-encoded: '+' is a space and '%2B' a plus."""
    return unquote_plus(raw)


def form_encode_key(key: str) -> str:
    """The form encoding S3 applies to keys in event notifications (inverse of decode_key)."""
    return quote_plus(key, safe="/")


BACKFILL_EVENT = "ObjectCreated:Backfill"
REDRIVE_EVENT = "ObjectCreated:Redrive"
RECONCILE_CREATED = "ObjectCreated:Reconcile"
RECONCILE_REMOVED = "ObjectRemoved:Reconcile"


def backfill_body(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    region: str,
    event_time: datetime,
    event_name: str = BACKFILL_EVENT,
    request_id: str = "backfill",
) -> str:
    """An SQS message body for an object that already existed, shaped as S3 would send it.

    No sequencer: the same object backfilled twice is then the same event (one outcome);
    `request_id` makes it a different one (a redrive of one particular failure). The event
    name is our own, so logs and metrics tell these from real uploads. An `ObjectRemoved:`
    name makes it a removal (reconcile's missed deletions); size and ETag are then 0 and "".
    """
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time.isoformat().replace("+00:00", "Z"),
        "eventName": event_name,
        "userIdentity": {"principalId": "media-ingest-backfill"},
        "requestParameters": {"sourceIPAddress": "s3.amazonaws.com"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": "media-ingest"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "media-ingest-backfill",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "media-ingest-backfill"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {"key": form_encode_key(key), "size": size, "eTag": etag.strip('"')},
        },
    }
    return json.dumps({"Records": [record]}, ensure_ascii=False)
