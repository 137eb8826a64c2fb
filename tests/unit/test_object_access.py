"""The S3 adapter's answers that decide retry or record: an object the stack may never read
is ACCESS_DENIED (a failure record), throttling stays an error to retry; members are written
create-only. botocore's Stubber gives the exact error responses S3 sends; moto holds state
where the conditional write matters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from media_ingest.adapters.catalog import DynamoCatalog
from media_ingest.adapters.objects import (
    PART_BYTES,
    MemberWriters,
    S3ArchiveReader,
    S3MemberWriter,
    S3Objects,
)
from media_ingest.archives.rules import MemberExists, member_write_policy
from media_ingest.errors import ErrorCode, MediaError, permanent
from media_ingest.media import AnnotationFile, AnnotationLinks
from tests.support.items import event
from tests.unit.conftest import TABLE

SSE_C = (
    "The object was stored using a form of Server Side Encryption. The correct parameters "
    "must be provided to retrieve the object."
)


def _stubbed(code: str, status: int, message: str = "") -> tuple[Any, Stubber]:
    s3 = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(s3)
    stubber.add_client_error(
        "get_object", service_error_code=code, service_message=message, http_status_code=status
    )
    stubber.activate()
    return s3, stubber


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("AccessDenied", 403, "User is not authorized to perform: kms:Decrypt"),
        ("InvalidRequest", 400, SSE_C),
        ("KMS.DisabledException", 400, "arn:aws:kms:... is disabled."),
    ],
    ids=["sse-kms-key-not-allowed", "sse-c", "kms-key-disabled"],
)
def test_an_object_the_stack_may_never_read_is_access_denied(
    code: str, status: int, message: str
) -> None:
    s3, _ = _stubbed(code, status, message)
    with pytest.raises(MediaError) as caught:
        S3Objects(client=s3).read_head(event("a/secret.png"), 65536)
    assert caught.value.code is ErrorCode.ACCESS_DENIED
    assert "a/secret.png" in caught.value.message
    s3, _ = _stubbed(code, status, message)
    with pytest.raises(MediaError) as caught:
        S3ArchiveReader(event("a/pack.zip"), client=s3).head(1024)
    assert caught.value.code is ErrorCode.ACCESS_DENIED


@pytest.mark.parametrize(
    ("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("InvalidRequest", 400)]
)
def test_throttling_and_errors_of_the_stack_stay_errors_to_retry(code: str, status: int) -> None:
    s3, _ = _stubbed(code, status, "something else")
    with pytest.raises(ClientError) as caught:
        S3Objects(client=s3).read_head(event("a/b.png"), 65536)
    assert permanent(caught.value) is None


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="drop")
        yield client


@pytest.mark.parametrize("size", [10, PART_BYTES + 10], ids=["one-put", "multipart"])
def test_a_member_write_never_replaces_an_object(s3: Any, size: int) -> None:
    s3.put_object(Bucket="drop", Key="p/taken.png", Body=b"the owner's file")
    writer = S3MemberWriter("drop", client=s3)
    with pytest.raises(MemberExists):
        writer.write("p/taken.png", iter([b"x" * size]), {"media-ingest-source": "e1"})
    assert s3.get_object(Bucket="drop", Key="p/taken.png")["Body"].read() == b"the owner's file"
    assert s3.list_multipart_uploads(Bucket="drop").get("Uploads", []) == []
    writer.write("p/new.png", iter([b"y" * size]), {"media-ingest-source": "e1"})
    assert writer.written("p/new.png", size, "e1")


def test_annotation_links_are_found_only_for_the_member_and_version_recorded(table: Any) -> None:
    catalog = DynamoCatalog(TABLE, client=table)
    links = AnnotationLinks(localizations={"box": AnnotationFile(url="s3://m/a.csv", rows=2)})
    catalog.record_links("drop", "p/clip.mp4", "etag-1", links)
    assert catalog.find_links("drop", "p/clip.mp4", "etag-1") == links
    assert catalog.find_links("drop", "p/clip.mp4", "forged") is None
    assert catalog.find_links("drop", "p/other.mp4", "etag-1") is None
    assert catalog.find_links("other", "p/clip.mp4", "etag-1") is None


def test_each_archive_writes_with_the_writer_role_scoped_to_its_own_prefix(s3: Any) -> None:
    from datetime import UTC, datetime

    role = "arn:aws:iam::123456789012:role/stack-member-writer"
    sts = boto3.client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    credentials = {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE",
        "SecretAccessKey": "secret",
        "SessionToken": "token",
        "Expiration": expiry,
    }
    stubber.add_response(
        "assume_role",
        {"Credentials": credentials},
        {
            "RoleArn": role,
            "RoleSessionName": "extract-members",
            "Policy": member_write_policy("arn:aws:s3:::drop", "dives/day"),
            "DurationSeconds": 3600,
        },
    )
    stubber.activate()
    writer = MemberWriters("drop", role, sts=sts)("dives/day")
    stubber.assert_no_pending_responses()
    client: Any = writer.s3
    assert client._request_signer._credentials.access_key == "ASIAEXAMPLEEXAMPLE"
    writer.write("dives/day/a.png", iter([b"png"]), {})  # moto takes any credentials
    assert s3.get_object(Bucket="drop", Key="dives/day/a.png")["Body"].read() == b"png"
