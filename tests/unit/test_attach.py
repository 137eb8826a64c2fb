"""attach and detach over in-memory fakes: the configuration kept, EventBridge added and
removed only by us, concurrent changes refused, and the checks a bucket of another account
needs (bucket policy, KMS key and key policy, forwarding rule)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from media_ingest.ops import attach
from media_ingest.ops.attach import AttachError, AttachRecord, CheckStatus, allows
from media_ingest.sources import parse_sources

ROLE = "arn:aws:iam::000000000000:role/stack-IngestFunctionRole-X"
THEIRS = {
    "QueueConfigurations": [
        {
            "Id": "their-pipeline",
            "QueueArn": "arn:aws:sqs:us-east-1:000000000000:theirs",
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".mp4"}]}},
        }
    ],
    "TopicConfigurations": [
        {"Id": "t", "TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Events": ["s3:*"]}
    ],
}


def stack(**fields: Any) -> attach.Stack:
    base: dict[str, Any] = {
        "name": "stack",
        "account": "000000000000",
        "region": "us-east-1",
        "role_arn": ROLE,
        "drop_bucket": "stack-drop",
        "sources": parse_sources("legacy/cams/=cams"),
    }
    return attach.Stack(**(base | fields))


class Bucket:
    """One bucket's notification configuration, policy, key and forwarding rules."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = copy.deepcopy(config or {})
        self.writes = 0
        self.meddle: dict[str, Any] | None = None  # a write by someone else, between reads
        self.bucket_policy: dict[str, Any] | None = None
        self.key: str | None = None
        self.keys: dict[str, dict[str, Any]] = {}
        self.rules: list[dict[str, Any]] | None = []

    def read(self, bucket: str) -> dict[str, Any]:
        current = copy.deepcopy(self.config)
        if self.meddle is not None:
            self.config, self.meddle = self.meddle, None
        return current

    def write(self, bucket: str, config: dict[str, Any]) -> None:
        self.writes += 1
        self.config = copy.deepcopy(config)

    def policy(self, bucket: str) -> dict[str, Any] | None:
        return self.bucket_policy

    def kms_key(self, bucket: str) -> str | None:
        return self.key

    def key_policy(self, key: str) -> dict[str, Any] | None:
        return self.keys.get(key)

    def forwards_to(self, bus_arn: str) -> list[dict[str, Any]] | None:
        return self.rules


class Records:
    def __init__(self) -> None:
        self.rows: dict[str, AttachRecord] = {}

    def get(self, bucket: str) -> AttachRecord | None:
        return self.rows.get(bucket)

    def put(self, record: AttachRecord) -> None:
        self.rows[record.bucket] = record

    def delete(self, bucket: str) -> None:
        self.rows.pop(bucket)


def run_attach(bucket: Bucket, records: Records, **kwargs: Any) -> attach.Report:
    target = kwargs.pop("stack", None) or stack()
    return attach.attach(
        target,
        kwargs.pop("name", "legacy"),
        kwargs.pop("account", "000000000000"),
        notifications=bucket,
        records=records,
        inspector=bucket,
        **kwargs,
    )


def test_attach_adds_eventbridge_and_keeps_everything_else_then_detach_restores_it() -> None:
    bucket, records = Bucket(THEIRS), Records()
    report = run_attach(bucket, records)
    assert report.action == "EventBridge delivery turned on"
    assert bucket.config == attach.with_eventbridge(THEIRS)
    assert report.kept == [
        "queue arn:aws:sqs:us-east-1:000000000000:theirs (s3:ObjectCreated:*, suffix '.mp4') "
        "id their-pipeline",
        "topic arn:aws:sns:us-east-1:000000000000:t (s3:*) id t",
    ]
    gone = attach.detach(stack(), "legacy", bucket, records)
    assert gone.action == "EventBridge delivery turned off"
    assert bucket.config == attach.normalized(THEIRS) and records.rows == {}
    assert gone.notes == ["the configuration is exactly as attach found it"]


def test_detach_leaves_on_what_was_on_before_attach_even_after_a_second_attach() -> None:
    bucket, records = Bucket({**THEIRS, "EventBridgeConfiguration": {}}), Records()
    assert run_attach(bucket, records).action == "EventBridge delivery was already on"
    run_attach(bucket, records)
    assert bucket.writes == 0
    report = attach.detach(stack(), "legacy", bucket, records)
    assert report.action.startswith("EventBridge delivery left on")
    assert "EventBridgeConfiguration" in bucket.config


def test_detach_keeps_the_owners_changes_made_since() -> None:
    bucket, records = Bucket(THEIRS), Records()
    run_attach(bucket, records)
    bucket.config["LambdaFunctionConfigurations"] = [
        {"Id": "new", "LambdaFunctionArn": "arn:aws:lambda:us-east-1:0:function:f", "Events": []}
    ]
    report = attach.detach(stack(), "legacy", bucket, records)
    assert "LambdaFunctionConfigurations" in bucket.config
    assert "EventBridgeConfiguration" not in bucket.config
    assert report.notes == [
        "the owner changed the configuration since attach: their changes are kept"
    ]


def test_a_change_between_read_and_write_stops_attach() -> None:
    bucket, records = Bucket(THEIRS), Records()
    bucket.meddle = {}  # the owner removes their queue right after our first read
    with pytest.raises(AttachError, match="changed while we read it"):
        run_attach(bucket, records)
    assert bucket.writes == 0 and records.rows == {}


def test_the_drop_bucket_and_uncovered_buckets_are_refused() -> None:
    bucket, records = Bucket(), Records()
    with pytest.raises(AttachError, match="drop bucket"):
        run_attach(bucket, records, name="stack-drop")
    with pytest.raises(AttachError, match="SourceBuckets=other"):
        run_attach(bucket, records, name="other")
    assert run_attach(bucket, records, name="other", force=True).checks[0].status is (
        CheckStatus.MISSING
    )


def test_a_bucket_of_another_account_needs_a_grant_a_key_and_a_forwarding_rule() -> None:
    bucket, records = Bucket(THEIRS), Records()
    bucket.key = "arn:aws:kms:us-east-1:111111111111:key/k1"
    bucket.keys[bucket.key] = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
    with pytest.raises(AttachError) as refused:
        run_attach(bucket, records, account="111111111111")
    text = str(refused.value)
    for missing in (
        "bucket policy (other account)",
        "KMS key in the stack",
        "KMS key policy",
        "events forwarded from the other account",
    ):
        assert f"- {missing}" in text
    grant = attach.bucket_grant(stack(), "legacy", ["cams/"])
    assert json.dumps(grant, indent=1) in text
    bucket.bucket_policy = grant
    bucket.keys[bucket.key]["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    bucket.rules = [
        {"Name": "to-media", "EventPattern": '{"detail":{"bucket":{"name":["legacy"]}}}'}
    ]
    ready = stack(kms_keys=(bucket.key,), source_accounts=("111111111111",))
    report = run_attach(bucket, records, account="111111111111", stack=ready)
    assert {c.name: c.status for c in report.checks} == {
        "stack rule covers the bucket": CheckStatus.OK,
        "bucket policy (other account)": CheckStatus.OK,
        "KMS key in the stack": CheckStatus.OK,
        "KMS key policy": CheckStatus.OK,
        "events forwarded from the other account": CheckStatus.OK,
    }


def test_a_deny_in_the_bucket_policy_blocks_even_the_same_account() -> None:
    bucket, records = Bucket(), Records()
    bucket.bucket_policy = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": ROLE},
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::legacy/*",
            }
        ]
    }
    with pytest.raises(AttachError, match="denies the ingest role"):
        run_attach(bucket, records)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "s3:Get*",
                "Resource": "arn:aws:s3:::b/*",
            },
            CheckStatus.OK,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/x*",
            },
            CheckStatus.MISSING,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": [ROLE]},
                "Action": ["s3:GetObject"],
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
            CheckStatus.UNKNOWN,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "NotAction": "s3:Delete*",
                "Resource": "*",
            },
            CheckStatus.UNKNOWN,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "s3:*",
                "Resource": "*",
            },
            CheckStatus.MISSING,
        ),
    ],
)
def test_policy_reading(statement: dict[str, Any], expected: CheckStatus) -> None:
    policy = {"Statement": [statement]}
    assert allows(policy, {ROLE}, "s3:GetObject", "arn:aws:s3:::b/cams/a.mp4") is expected
