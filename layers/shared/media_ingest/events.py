"""S3 object-created events: parsing SQS message bodies into `ObjectEvent`s, and event identity.

Owns key decoding (S3 form-encodes keys in events) and the rule that a test event or a
non-creation event is not an ingestion event. Never touches AWS.

The notification's shape is modelled here, field for field as S3 documents it ("Event
message structure", version 2.1) and as Powertools' parser models it, but only the fields
the stack reads: importing Powertools' models loads every AWS event type (75 ms of every
cold start, bench/cold_start.py). Another source's envelope (EventBridge) is another model
beside `S3Notification`, mapped to the same `ObjectEvent`.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote_plus, unquote_plus

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
        return self


class S3Notification(BaseModel):
    Records: list[S3Record]


class NotAnS3Event(ValueError):
    """The message body is neither an S3 event nor S3's test event (a poison message)."""


class ObjectEvent(BaseModel):
    """One object-created event, with the key decoded as it is stored in S3."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int = Field(ge=0)
    etag: str = ""
    version_id: str | None = None
    sequencer: str = ""
    request_id: str = ""
    event_name: str
    event_time: datetime
    region: str

    @property
    def event_id(self) -> str:
        """What identifies this S3 event across redeliveries (not the SQS message id).

        On AWS the sequencer alone tells two writes of one key apart; the ETag is added
        because emulators send a constant sequencer (LocalStack) and some events carry none:
        without it an overwrite with new content would pass for a redelivery. The request id
        (the same in every redelivery of a notification) tells our own events apart: a
        backfill from a redrive of a failure.
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
    """Object-created events in one SQS message body; [] for a test event.

    Raises NotAnS3Event for anything else, so that the message is retried and then
    dead-lettered rather than silently consumed.
    """
    if is_test_event(body):
        return []
    try:
        model = S3Notification.model_validate_json(body)
    except ValidationError as exc:
        raise NotAnS3Event(f"message body is not an S3 event: {exc.error_count()} errors") from exc
    return [to_object_event(record) for record in model.Records if is_created(record)]


def is_created(record: S3Record) -> bool:
    return record.eventName.startswith("ObjectCreated:")


def to_object_event(record: S3Record) -> ObjectEvent:
    obj = record.s3.object
    if obj is None:  # pragma: no cover - the parser model rejects creation events without one
        raise NotAnS3Event("object-created record without an object")
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
    )


def decode_key(raw: str) -> str:
    """Keys in S3 events are form-encoded: '+' is a space and '%2B' a plus."""
    return unquote_plus(raw)


def form_encode_key(key: str) -> str:
    """The form encoding S3 applies to keys in event notifications (inverse of decode_key)."""
    return quote_plus(key, safe="/")


BACKFILL_EVENT = "ObjectCreated:Backfill"
REDRIVE_EVENT = "ObjectCreated:Redrive"


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
    name is our own, so logs and metrics tell these from real uploads.
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
