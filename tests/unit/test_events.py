from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_ingest.events import (
    Action,
    Deletion,
    Delivery,
    NotAnS3Event,
    decode_key,
    is_test_event,
    parse_body,
)
from tests.support.events import s3_body


def test_object_created_event_is_parsed_with_identity() -> None:
    body = s3_body("drop", "a/clip.mp4", size=1234, etag="abc", sequencer="0A1B")
    [event] = parse_body(body)
    assert (event.bucket, event.key, event.size, event.etag) == ("drop", "a/clip.mp4", 1234, "abc")
    assert event.event_name == "ObjectCreated:Put"
    assert event.event_id == "drop|a/clip.mp4||0A1B|abc|REQ"


def test_form_encoded_keys_are_decoded() -> None:
    raw = "my+video%2B%28final%29+%E2%9C%93.mp4"
    [event] = parse_body(s3_body("drop", raw, encode=False))
    assert event.key == "my video+(final) ✓.mp4"


@given(st.text(min_size=1, max_size=300))
def test_decode_inverts_s3_key_encoding(key: str) -> None:
    assert decode_key(quote_plus(key, safe="/")) == key


def test_test_event_is_consumed_without_events() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "drop"})
    assert is_test_event(body)
    assert parse_body(body) == []


@pytest.mark.parametrize("body", ["not json", "{}", '{"Records": [{"eventName": "x"}]}', "[1]"])
def test_anything_else_is_a_poison_message(body: str) -> None:
    with pytest.raises(NotAnS3Event):
        parse_body(body)


def test_removal_events_are_events_with_their_kind_of_deletion() -> None:
    [deleted] = parse_body(s3_body("drop", "gone now.mp4", event_name="ObjectRemoved:Delete"))
    assert deleted.removed and deleted.deletion is Deletion.DELETE
    assert deleted.key == "gone now.mp4"
    [marker] = parse_body(
        s3_body("drop", "gone.mp4", event_name="ObjectRemoved:DeleteMarkerCreated")
    )
    assert marker.removed and marker.deletion is Deletion.DELETE_MARKER
    [expired] = parse_body(s3_body("drop", "old.mp4", event_name="LifecycleExpiration:Delete"))
    assert expired.removed and expired.deletion is Deletion.DELETE


def test_other_s3_event_types_are_consumed_without_events() -> None:
    for name in ("ObjectRestore:Completed", "ObjectTagging:Put", "ObjectAcl:Put"):
        assert parse_body(s3_body("drop", "a.mp4", event_name=name)) == []


def test_sequencer_order_compares_after_padding() -> None:
    [short] = parse_body(s3_body("b", "k", sequencer="FF"))
    [long] = parse_body(s3_body("b", "k", sequencer="0100"))
    assert short.sequencer_order < long.sequencer_order
    assert short.sequencer > long.sequencer  # the naive comparison is wrong


def eventbridge(detail_type: str, key: str, **detail: object) -> str:
    """An S3 event as EventBridge delivers it to an SQS target (LocalStack 2026.3.0's shape,
    which follows AWS's documented one)."""
    obj: dict[str, object] = {"key": key, "sequencer": "0062E99A88DC407460"}
    obj.update(detail.pop("object", {}))  # type: ignore[call-overload]
    return json.dumps(
        {
            "version": "0",
            "id": "cf8beb53-91b8-4d8b-94b9-df6b76d1f198",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "000000000000",
            "time": "2026-11-29T17:20:48Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::legacy"],
            "detail": {
                "version": "0",
                "bucket": {"name": "legacy"},
                "object": obj,
                "request-id": "50e02a19",
                "requester": "074255357339",
                "source-ip-address": "127.0.0.1",
                **detail,
            },
        }
    )


def test_an_eventbridge_object_created_is_the_same_event_model() -> None:
    body = eventbridge(
        "Object Created",
        "cams/a%20b+c%2B.txt",
        object={"size": 5, "etag": "5d41402abc4b2a76b9719d911017c592"},
        reason="PutObject",
    )
    [event] = parse_body(body)
    # Percent-encoded, '+' left as it is: unquote, never unquote_plus.
    assert (event.bucket, event.key, event.size) == ("legacy", "cams/a b+c+.txt", 5)
    assert event.action is Action.CREATED and event.delivery is Delivery.EVENTBRIDGE
    assert event.event_id == "legacy|cams/a b+c+.txt||0062E99A88DC407460|" + (
        "5d41402abc4b2a76b9719d911017c592|50e02a19"
    )


@pytest.mark.parametrize(
    ("deletion_type", "expected"),
    [("Permanently Deleted", Deletion.DELETE), ("Delete Marker Created", Deletion.DELETE_MARKER)],
)
def test_an_eventbridge_object_deleted_says_how(deletion_type: str, expected: Deletion) -> None:
    body = eventbridge(
        "Object Deleted", "cams/a.txt", reason="DeleteObject", **{"deletion-type": deletion_type}
    )
    [event] = parse_body(body)
    assert event.removed and event.deletion is expected and event.etag == ""


def test_other_eventbridge_s3_events_are_consumed_and_a_broken_one_is_poison() -> None:
    assert parse_body(eventbridge("Object Restore Completed", "a.txt")) == []
    broken = json.loads(eventbridge("Object Created", "a.txt"))
    del broken["detail"]["bucket"]
    with pytest.raises(NotAnS3Event):
        parse_body(json.dumps(broken))
