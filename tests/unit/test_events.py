from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_ingest.events import NotAnS3Event, decode_key, is_test_event, parse_body
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


def test_removal_events_are_not_ingestion_events() -> None:
    body = s3_body("drop", "gone.mp4", event_name="ObjectRemoved:Delete")
    assert parse_body(body) == []


def test_sequencer_order_compares_after_padding() -> None:
    [short] = parse_body(s3_body("b", "k", sequencer="FF"))
    [long] = parse_body(s3_body("b", "k", sequencer="0100"))
    assert short.sequencer_order < long.sequencer_order
    assert short.sequencer > long.sequencer  # the naive comparison is wrong
