"""Buckets teams already have, through the real handler on moto: EventBridge envelopes and
S3 notifications give the same outcomes, deletions are followed (item kept and marked,
manifest removal log, failure settled, re-upload registered again), and the same bytes under
two keys are found (register with `duplicate_of`, or skip)."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import pytest

from media_ingest.ops.failure_log import outstanding
from media_ingest.records import OutcomeKind
from media_ingest.settings import Settings
from tests.handlers.conftest import Stack
from tests.support.events import s3_body
from tests.support.media import MediaSet

SOURCES = "legacy/cams/=cams"


def eventbridge(detail_type: str, bucket: str, key: str, *, request: str, **obj: Any) -> str:
    """What an EventBridge rule delivers to the ingest queue (keys percent-encoded)."""
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {"key": quote(key), "sequencer": "0062E99A88DC407460", **obj},
        "request-id": request,
        "requester": "000000000000",
        "reason": "PutObject" if detail_type == "Object Created" else "DeleteObject",
    }
    if detail_type == "Object Deleted":
        detail["deletion-type"] = "Permanently Deleted"
    return json.dumps(
        {
            "version": "0",
            "id": request,
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "000000000000",
            "time": "2026-11-29T17:20:48Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": detail,
        }
    )


@pytest.fixture
def attached(stack: Stack) -> Stack:
    """The stack with bucket `legacy` attached (prefix cams/, dataset cams), and dataset
    `test` skipping duplicates of content registered elsewhere."""
    stack.s3.create_bucket(Bucket="legacy")
    settings = stack.settings.model_copy(
        update={
            "source_buckets": Settings.model_validate(
                {
                    "CATALOG_TABLE": "c",
                    "MANIFEST_BUCKET": "m",
                    "FAILURE_QUEUE_URL": "q",
                    "SOURCE_BUCKETS": SOURCES,
                }
            ).source_buckets,
            "skip_duplicate_datasets": ("test",),
            "dataset_routes": {"updates/": "live", "test/": "test"},
            "content_identity": "on",  # not the default (ContentIdentity)
        }
    )
    return Stack(stack.endpoint, settings, stack.handler, stack.s3, stack.sqs, stack.ddb)


def put(stack: Stack, bucket: str, key: str, data: bytes) -> str:
    return str(stack.s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]).strip('"')


def test_an_eventbridge_creation_and_deletion_of_an_attached_bucket(
    attached: Stack, media: MediaSet
) -> None:
    data = media.bytes("plain.png")
    etag = put(attached, "legacy", "cams/a b+c.png", data)
    created = eventbridge(
        "Object Created", "legacy", "cams/a b+c.png", request="r1", size=len(data), etag=etag
    )
    assert attached.deliver(created) == {"batchItemFailures": []}
    [item] = attached.reader.items()
    assert (item.bucket, item.key, item.dataset) == ("legacy", "cams/a b+c.png", "cams")
    attached.s3.delete_object(Bucket="legacy", Key="cams/a b+c.png")
    deleted = eventbridge("Object Deleted", "legacy", "cams/a b+c.png", request="r2")
    assert attached.deliver(deleted, deleted) == {"batchItemFailures": []}
    outcomes, _ = attached.reader.ledger()
    assert sorted(o.kind.value for o in outcomes) == ["deleted", "registered"]
    assert attached.reader.items() == []  # left out (exports read dataset_items), but kept:
    assert list(attached.reader.dataset_items("cams")) == []
    assert list(attached.reader.removals()) == [item.object_url]
    index = json.loads(
        attached.s3.get_object(Bucket="manifests", Key="manifests/cams/index.json")["Body"].read()
    )
    [log_part] = index["removals"]
    log = json.loads(attached.s3.get_object(Bucket="manifests", Key=log_part["key"])["Body"].read())
    assert [(c["object_url"], c["change"]) for c in log["changes"]] == [
        (item.object_url, "removed")
    ]


def test_a_deletion_in_the_drop_bucket_settles_a_failure_and_a_re_upload_registers_again(
    stack: Stack, media: MediaSet
) -> None:
    broken = media.bytes("plain.png")[:40]
    assert stack.deliver(stack.body("x/bad.png", broken)) == {"batchItemFailures": []}
    assert [f.key for f in outstanding(stack.reader.failures(), stack.reader.items())] == [
        "x/bad.png"
    ]
    stack.s3.delete_object(Bucket="drop", Key="x/bad.png")
    stack.deliver(s3_body("drop", "x/bad.png", event_name="ObjectRemoved:Delete"))
    left = outstanding(
        stack.reader.failures(), stack.reader.items(), removed=stack.reader.removals()
    )
    assert left == []

    good = media.bytes("plain.png")
    stack.deliver(stack.body("x/good.png", good))
    stack.s3.delete_object(Bucket="drop", Key="x/good.png")
    gone = s3_body("drop", "x/good.png", event_name="ObjectRemoved:DeleteMarkerCreated")
    stack.deliver(gone.replace('"REQ"', '"del-1"'))
    assert [i.key for i in stack.reader.items()] == []
    back = stack.body("x/good.png", media.bytes("portrait.jpg")).replace('"REQ"', '"up-2"')
    assert stack.deliver(back) == {"batchItemFailures": []}
    [item] = stack.reader.items()
    assert item.key == "x/good.png" and item.mime_type == "image/jpeg" and item.live
    outcomes = {o.event_id.rsplit("|", 1)[-1]: o for o in stack.reader.ledger()[0]}
    assert (outcomes["up-2"].detail or "").startswith("registered again after its deletion")


def test_the_same_bytes_under_two_keys_and_a_dataset_that_skips_them(
    attached: Stack,
) -> None:
    data = ("same bytes " + os.urandom(1000).hex()).encode()
    for key in ("a/one.txt", "a/two.txt", "test/three.txt"):
        assert attached.deliver(attached.body(key, data)) == {"batchItemFailures": []}
    by_key = {i.key: i for i in attached.reader.items()}
    assert sorted(by_key) == ["a/one.txt", "a/two.txt"]  # three.txt was skipped
    original = by_key["a/one.txt"].object_url
    assert by_key["a/two.txt"].content is not None
    assert by_key["a/two.txt"].content.duplicate_of == original
    [entry_one, entry_two] = attached.manifest_parts("main")[0]["text"]
    assert entry_two["clientMetadata"]["duplicate_of"] == original
    assert "duplicate_of" not in entry_one["clientMetadata"]
    skipped = next(o for o in attached.reader.ledger()[0] if o.key == "test/three.txt")
    assert skipped.kind is OutcomeKind.DUPLICATE and skipped.detail == f"same content as {original}"
    assert attached.manifest_parts("test") == []


def test_an_overwrite_called_a_duplicate_is_noted_on_the_item(stack: Stack) -> None:
    stack.deliver(stack.body("n/k.txt", b"first"))
    stack.deliver(stack.body("n/k.txt", b"second version"))
    rows = stack.ddb.scan(TableName="catalog")["Items"]
    [row] = [r for r in rows if r.get("type", {}).get("S") == "item"]
    note = json.loads(row["last_mark"]["S"])
    assert note["kind"] == "duplicate" and note["etag"] != row["etag"]["S"]


def test_a_deletion_older_than_the_registered_write_removes_nothing_in_dynamodb(
    stack: Stack,
) -> None:
    """The catalog's own condition (seq_order <= the deletion's), not only the fake's."""
    put = stack.put("o/k.txt", b"version two\n")
    stack.deliver(s3_body("drop", "o/k.txt", **{**put, "sequencer": "0000000000000005"}))
    stack.s3.delete_object(Bucket="drop", Key="o/k.txt")
    older = s3_body("drop", "o/k.txt", event_name="ObjectRemoved:Delete", sequencer="03")
    stack.deliver(older.replace('"REQ"', '"old-delete"'))
    [item] = stack.reader.items()
    assert item.live
    newer = s3_body("drop", "o/k.txt", event_name="ObjectRemoved:Delete", sequencer="07")
    stack.deliver(newer.replace('"REQ"', '"new-delete"'))
    assert stack.reader.items() == []
