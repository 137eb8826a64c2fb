"""A bucket as `attach` and `detach` see it (S3, KMS, EventBridge of the bucket's account):
its notification configuration (read, and written whole), its policy, its default
encryption key and that key's policy, and the rules forwarding events to another bus.

Every S3 call names the expected owner (ExpectedBucketOwner), so a bucket of another account
is never configured by mistake. `session` gives the clients of a named profile, for buckets
of another account.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_ABSENT = {"NoSuchBucketPolicy", "ServerSideEncryptionConfigurationNotFoundError"}
_DENIED = {"AccessDenied", "AccessDeniedException", "403"}


def session(profile: str | None) -> boto3.session.Session:
    """The credentials the bucket is handled with: a named profile, or the default chain."""
    return boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()


def account_of(chosen: boto3.session.Session) -> str:
    return str(chosen.client("sts").get_caller_identity()["Account"])


class BucketConfig:
    """Notifications (the Notifications protocol of ops/attach.py) and what the Inspector
    reads of the bucket."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(
        self,
        owner: str,
        client: S3Client | None = None,
        kms: Any = None,
        events: Any = None,
    ) -> None:
        self.owner = owner
        self.s3 = client
        self.kms = kms
        self.events = events

    def read(self, bucket: str) -> dict[str, Any]:
        got = self.s3.get_bucket_notification_configuration(
            Bucket=bucket, ExpectedBucketOwner=self.owner
        )
        return {k: v for k, v in dict(got).items() if k != "ResponseMetadata"}

    def write(self, bucket: str, config: dict[str, Any]) -> None:
        # SkipDestinationValidation: the owner's destinations are not ours to validate, and
        # validating them sends their consumers an s3:TestEvent.
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration=config,  # type: ignore[arg-type]
            ExpectedBucketOwner=self.owner,
            SkipDestinationValidation=True,
        )

    def policy(self, bucket: str) -> dict[str, Any] | None:
        try:
            got = self.s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=self.owner)
        except ClientError as exc:
            if error_code(exc) in _ABSENT | _DENIED:
                return None
            raise
        return dict(json.loads(got["Policy"]))

    def kms_key(self, bucket: str) -> str | None:
        try:
            got = self.s3.get_bucket_encryption(Bucket=bucket, ExpectedBucketOwner=self.owner)
        except ClientError as exc:
            if error_code(exc) in _ABSENT | _DENIED:
                return None
            raise
        for rule in got["ServerSideEncryptionConfiguration"]["Rules"]:
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if str(default.get("SSEAlgorithm", "")).startswith("aws:kms"):
                return str(default.get("KMSMasterKeyID") or "aws/s3")
        return None

    def key_policy(self, key: str) -> dict[str, Any] | None:
        if self.kms is None or key == "aws/s3":
            return None  # the AWS-managed key cannot be shared with another account anyway
        try:
            got = self.kms.get_key_policy(KeyId=key, PolicyName="default")
        except ClientError as exc:
            if error_code(exc) in _DENIED | {"NotFoundException"}:
                return None
            raise
        return dict(json.loads(got["Policy"]))

    def forwards_to(self, bus_arn: str) -> list[dict[str, Any]] | None:
        """The rules of the bucket's account targeting `bus_arn` (with their patterns)."""
        if self.events is None:
            return None
        try:
            names = self.events.list_rule_names_by_target(TargetArn=bus_arn)["RuleNames"]
            return [dict(self.events.describe_rule(Name=name)) for name in names]
        except ClientError as exc:
            if error_code(exc) in _DENIED:
                return None
            raise
