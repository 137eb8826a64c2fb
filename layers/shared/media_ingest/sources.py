"""Source buckets: the buckets a team already has, each with an optional key prefix and the
dataset its objects go to (`SourceBuckets`), and what the template derives from them.

Their object events reach the ingest queue through EventBridge (one rule, one pattern with
an `$or` branch per bucket and prefix), never through their own notification configuration.
The parameter is one string, `bucket[/prefix][=dataset]` entries separated by commas;
CloudFormation cannot map over a list (and LocalStack runs no custom resources), so
infra/deploy.sh passes the template what `derive` makes of it (the rule's pattern, the
role's resource lists): `python -m media_ingest.sources BUCKETS [ACCOUNTS]` prints them as
`Key=Value` parameter overrides. Pure apart from that entry point: text in, strings out.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

# S3's bucket naming rules (lowercase, digits, dots, hyphens; 3-63 characters).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")


class SourceBucket(BaseModel):
    """One attached bucket (or one prefix of it) and the dataset of its objects (None: the
    usual key routes, then the default dataset)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    prefix: str = ""
    dataset: str | None = None

    def covers(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" -> {self.dataset}" if self.dataset else "")


def parse_sources(text: str) -> tuple[SourceBucket, ...]:
    """`legacy-media/cams/=cams,archive=old,raw`: bucket, optional prefix, optional dataset.

    A dataset follows the last `=` when what follows is a dataset name (no `/`), so a prefix
    may hold `=` itself (`logs/dt=2026/=logs`). Commas cannot appear in a prefix."""
    sources: list[SourceBucket] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        path, dataset = raw, None
        head, sep, tail = raw.rpartition("=")
        if sep and "/" not in tail:
            path, dataset = head, tail
            if not DATASET_NAME.match(tail):
                raise ValueError(f"source {raw!r}: dataset name {tail!r} is not valid")
        bucket, _, prefix = path.partition("/")
        if not BUCKET_NAME.match(bucket):
            raise ValueError(f"source {raw!r}: {bucket!r} is not a bucket name")
        sources.append(SourceBucket(bucket=bucket, prefix=prefix, dataset=dataset))
    return tuple(sources)


def parse_accounts(text: str) -> tuple[str, ...]:
    accounts = tuple(a.strip() for a in text.split(",") if a.strip())
    for account in accounts:
        if not ACCOUNT_ID.match(account):
            raise ValueError(f"{account!r} is not a 12-digit AWS account id")
    return accounts


# The S3 event types the rule forwards (EventBridge detail types).
DETAIL_TYPES = ["Object Created", "Object Deleted"]


def event_pattern(sources: tuple[SourceBucket, ...]) -> dict[str, Any]:
    """The EventBridge pattern matching exactly these buckets and prefixes: one `$or` branch
    per bucket, with its prefixes (an empty prefix matches every key)."""
    by_bucket: dict[str, list[str]] = {}
    for source in sources:
        by_bucket.setdefault(source.bucket, []).append(source.prefix)
    branches: list[dict[str, Any]] = []
    for bucket, prefixes in by_bucket.items():
        detail: dict[str, Any] = {"bucket": {"name": [bucket]}}
        if "" not in prefixes:
            detail["object"] = {"key": [{"prefix": p} for p in sorted(set(prefixes))]}
        branches.append({"detail": detail})
    pattern: dict[str, Any] = {"source": ["aws.s3"], "detail-type": DETAIL_TYPES}
    if len(branches) == 1:
        pattern.update(branches[0])
    else:
        pattern["$or"] = branches
    return pattern


def derive(sources_text: str, accounts_text: str, partition: str = "aws") -> dict[str, str]:
    """What the template needs from the parameters (its Source* derived parameters)."""
    sources = parse_sources(sources_text)
    if not sources:
        raise ValueError("SourceBuckets is empty: there is nothing to derive")
    buckets = list(dict.fromkeys(s.bucket for s in sources))
    accounts = parse_accounts(accounts_text)
    return {
        "EventPattern": json.dumps(event_pattern(sources), separators=(",", ":")),
        "BucketArns": ",".join(f"arn:{partition}:s3:::{b}" for b in buckets),
        # Reads only under the attached prefixes (least privilege); ListBucket (for 404s
        # rather than 403s) has no per-prefix form that HeadObject would match.
        "ObjectArns": ",".join(
            dict.fromkeys(f"arn:{partition}:s3:::{s.bucket}/{s.prefix}*" for s in sources)
        ),
        "AccountPrincipals": ",".join(f"arn:{partition}:iam::{a}:root" for a in accounts),
    }


def inventory_arns(inventories_text: str, partition: str = "aws") -> dict[str, str]:
    """ReconcileInventories (s3://bucket/prefix/, ...) -> what the reconcile role reads."""
    locations = [part.strip() for part in inventories_text.split(",") if part.strip()]
    objects, buckets = [], []
    for location in locations:
        if not location.startswith("s3://"):
            raise ValueError(f"inventory {location!r}: expected s3://bucket/prefix/")
        bucket, _, prefix = location[5:].partition("/")
        if not BUCKET_NAME.match(bucket):
            raise ValueError(f"inventory {location!r}: {bucket!r} is not a bucket name")
        objects.append(f"arn:{partition}:s3:::{bucket}/{prefix}*")
        buckets.append(f"arn:{partition}:s3:::{bucket}")
    return {
        "ObjectArns": ",".join(dict.fromkeys(objects)),
        "BucketArns": ",".join(dict.fromkeys(buckets)),
    }


def template_parameters(
    sources_text: str, accounts_text: str = "", inventories_text: str = ""
) -> list[str]:
    """`Key=Value` overrides of the template's derived parameters."""
    lines = []
    if parse_sources(sources_text):
        derived = derive(sources_text, accounts_text)
        lines += [f"Source{name}={value}" for name, value in derived.items()]
    if inventories_text.strip():
        derived = inventory_arns(inventories_text)
        lines += [f"ReconcileInventory{name}={value}" for name, value in derived.items()]
    return lines


if __name__ == "__main__":  # pragma: no cover - infra/deploy.sh's entry point
    try:
        print("\n".join(template_parameters(*sys.argv[1:4])))  # noqa: T201
    except ValueError as exc:
        sys.exit(f"SourceBuckets/SourceAccounts/ReconcileInventories: {exc}")
