"""`attach` and `detach`: EventBridge delivery turned on (and off) for a bucket a team
already has, without touching anything else of its notification configuration.

S3 keeps one notification configuration per bucket, and PutBucketNotificationConfiguration
replaces all of it: so attach reads it, adds `EventBridgeConfiguration` (which delivers to
EventBridge beside every existing queue, topic and Lambda configuration), reads it again
right before writing (someone else's change in between stops it), writes with
SkipDestinationValidation (their destinations are not ours to validate, and validating
sends their consumers a test event), and verifies that everything else reads back exactly
as before. It records what it did, so that `detach` undoes only that: it turns EventBridge
delivery off only if attach turned it on, and keeps every change the owner made since.

Before it writes, attach checks what the stack needs to read the bucket's objects
(`checks`): the stack's rule covers the bucket; the bucket policy does not deny the ingest
role (and, for a bucket of another account, grants it); a default SSE-KMS key is one the
stack may use (SourceKmsKeyArns) and whose key policy lets the role decrypt; another account
forwards the bucket's events to this account's bus. Policies are read, not simulated:
conditions are reported, not evaluated.

Over interfaces (ops/adapters/buckets.py, ops/adapters/attachments.py); never a client.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any, Protocol

from pydantic import BaseModel, Field

from media_ingest.records import utcnow
from media_ingest.sources import SourceBucket

EVENTBRIDGE = "EventBridgeConfiguration"
DESTINATIONS = ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations")
# What the ingest function does to a source bucket's objects (adapters/objects.py).
READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging")


class AttachError(ValueError):
    """attach or detach refused: the message says why and what to do."""


class AttachRecord(BaseModel):
    """What attach did to one bucket (kept in the stack's catalog table for detach)."""

    bucket: str
    stack: str
    eventbridge_was_on: bool
    before: dict[str, Any]
    attached_at: datetime = Field(default_factory=utcnow)


class CheckStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    UNKNOWN = "unknown"  # could not be read, or depends on conditions not evaluated


class Check(BaseModel):
    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    required: bool = True


class Report(BaseModel):
    """What attach or detach did, and what it found."""

    bucket: str
    action: str
    kept: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Notifications(Protocol):
    def read(self, bucket: str) -> dict[str, Any]: ...
    def write(self, bucket: str, config: dict[str, Any]) -> None: ...


class Records(Protocol):
    def get(self, bucket: str) -> AttachRecord | None: ...
    def put(self, record: AttachRecord) -> None: ...
    def delete(self, bucket: str) -> None: ...


class Inspector(Protocol):
    """What the bucket's account lets us read about it (None: not readable, or none)."""

    def policy(self, bucket: str) -> dict[str, Any] | None: ...
    def kms_key(self, bucket: str) -> str | None: ...
    def key_policy(self, key: str) -> dict[str, Any] | None: ...
    def forwards_to(self, bus_arn: str) -> list[dict[str, Any]] | None: ...


class Stack(BaseModel):
    """What attach needs to know of the deployed stack."""

    name: str
    account: str
    region: str
    role_arn: str
    drop_bucket: str
    sources: tuple[SourceBucket, ...]
    kms_keys: tuple[str, ...] = ()
    source_accounts: tuple[str, ...] = ()

    @property
    def bus_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/default"


# -- the notification configuration -------------------------------------------------------
def normalized(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without response metadata, destinations sorted by Id (S3 may list
    them in any order)."""
    out = {k: copy.deepcopy(v) for k, v in config.items() if k != "ResponseMetadata"}
    for name in DESTINATIONS:
        if name in out:
            out[name] = sorted(out[name], key=lambda c: json.dumps(c, sort_keys=True))
        if name in out and not out[name]:
            del out[name]
    return out


def without_eventbridge(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in normalized(config).items() if k != EVENTBRIDGE}


def with_eventbridge(config: dict[str, Any]) -> dict[str, Any]:
    return {**normalized(config), EVENTBRIDGE: {}}


def describe(config: dict[str, Any]) -> list[str]:
    """One line per destination: `queue <arn> (<events>) id <id>`."""
    lines = []
    for name, arn_key, kind in (
        ("QueueConfigurations", "QueueArn", "queue"),
        ("TopicConfigurations", "TopicArn", "topic"),
        ("LambdaFunctionConfigurations", "LambdaFunctionArn", "lambda"),
    ):
        for entry in normalized(config).get(name, []):
            what = ", ".join(entry.get("Events", []))
            rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            what += "".join(f", {r.get('Name')} {r.get('Value')!r}" for r in rules)
            lines.append(f"{kind} {entry.get(arn_key)} ({what}) id {entry.get('Id', '-')}")
    return lines


# -- policies ------------------------------------------------------------------------------
def _listed(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _matches(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatchcase(value.lower(), p.lower()) for p in patterns)


def _principal(statement: dict[str, Any], principals: set[str]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(p == "*" or p in principals for p in _listed(principal.get("AWS")))
    return False


def allows(
    policy: dict[str, Any] | None, principals: set[str], action: str, resource: str
) -> CheckStatus:
    """Whether a resource policy grants `action` on `resource` to one of `principals` (the
    role's ARN, its account's root, the account id): a matching Deny wins; a matching
    statement with a Condition, or NotAction/NotPrincipal/NotResource, is UNKNOWN."""
    verdict = CheckStatus.MISSING
    for statement in (policy or {}).get("Statement", []):
        if any(k in statement for k in ("NotAction", "NotPrincipal", "NotResource")):
            verdict = CheckStatus.UNKNOWN if verdict is CheckStatus.MISSING else verdict
            continue
        if not (
            _principal(statement, principals)
            and _matches(_listed(statement.get("Action")), action)
            and _matches(_listed(statement.get("Resource")), resource)
        ):
            continue
        conditional = bool(statement.get("Condition"))
        if statement.get("Effect") == "Deny":
            if not conditional:
                return CheckStatus.MISSING
            verdict = CheckStatus.UNKNOWN
        elif verdict is not CheckStatus.UNKNOWN:
            verdict = CheckStatus.UNKNOWN if conditional else CheckStatus.OK
    return verdict


def denies(policy: dict[str, Any] | None, principals: set[str], action: str, resource: str) -> bool:
    """Whether an unconditional Deny of `action` on `resource` names one of `principals`."""
    for statement in (policy or {}).get("Statement", []):
        if (
            statement.get("Effect") == "Deny"
            and not statement.get("Condition")
            and _principal(statement, principals)
            and _matches(_listed(statement.get("Action")), action)
            and _matches(_listed(statement.get("Resource")), resource)
        ):
            return True
    return False


def bucket_grant(stack: Stack, bucket: str, prefixes: list[str]) -> dict[str, Any]:
    """The bucket policy statements another account's bucket needs for the ingest role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"MediaIngest{stack.name.replace('-', '')}Read",
                "Effect": "Allow",
                "Principal": {"AWS": stack.role_arn},
                "Action": list(READ_ACTIONS),
                "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in prefixes],
            },
            {
                "Sid": f"MediaIngest{stack.name.replace('-', '')}List",
                "Effect": "Allow",
                "Principal": {"AWS": stack.role_arn},
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
            },
        ],
    }


def checks(stack: Stack, bucket: str, bucket_account: str, inspector: Inspector) -> list[Check]:
    """What the stack needs to read the bucket, each checked (see the module docstring)."""
    found: list[Check] = []
    covering = [s for s in stack.sources if s.bucket == bucket]
    found.append(
        Check(
            name="stack rule covers the bucket",
            status=CheckStatus.OK if covering else CheckStatus.MISSING,
            detail=", ".join(str(s) for s in covering)
            or f"the stack's SourceBuckets does not name {bucket}",
            fix=None
            if covering
            else f"redeploy with SourceBuckets={bucket}[/prefix][=dataset] (added to the list)",
        )
    )
    prefixes = [s.prefix for s in covering] or [""]
    principals = {stack.role_arn, f"arn:aws:iam::{stack.account}:root", stack.account}
    cross = bucket_account != stack.account
    found.append(
        _policy_check(
            stack, bucket, prefixes, principals=principals, cross=cross, inspector=inspector
        )
    )
    key = inspector.kms_key(bucket)
    if key is not None:
        found += _kms_checks(stack, key, principals, cross, inspector)
    if cross:
        found.append(_forwarding_check(stack, bucket, bucket_account, inspector))
    return found


def _policy_check(
    stack: Stack,
    bucket: str,
    prefixes: list[str],
    *,
    principals: set[str],
    cross: bool,
    inspector: Inspector,
) -> Check:
    policy = inspector.policy(bucket)
    sample = f"arn:aws:s3:::{bucket}/{prefixes[0]}media-ingest-check"
    grant = json.dumps(bucket_grant(stack, bucket, prefixes), indent=1)
    if denies(policy, principals, "s3:GetObject", sample):
        return Check(
            name="bucket policy",
            status=CheckStatus.MISSING,
            detail="the bucket policy denies the ingest role s3:GetObject",
            fix="remove the Deny for the role, or scope it away from the attached prefixes",
        )
    if not cross:
        return Check(
            name="bucket policy",
            status=CheckStatus.OK,
            detail="same account: the ingest role's own policy grants the reads; no Deny names it",
        )
    verdict = allows(policy, principals, "s3:GetObject", sample)
    listing = allows(policy, principals, "s3:ListBucket", f"arn:aws:s3:::{bucket}")
    both = {verdict, listing}
    status = next(
        (s for s in (CheckStatus.MISSING, CheckStatus.UNKNOWN) if s in both), CheckStatus.OK
    )
    return Check(
        name="bucket policy (other account)",
        status=status,
        detail=f"s3:GetObject {verdict.value}, s3:ListBucket {listing.value} for {stack.role_arn}",
        fix=None if status is CheckStatus.OK else f"add to the bucket policy:\n{grant}",
    )


def _kms_checks(
    stack: Stack, key: str, principals: set[str], cross: bool, inspector: Inspector
) -> list[Check]:
    granted = any(key == k or key.endswith("/" + k.rsplit("/", 1)[-1]) for k in stack.kms_keys)
    found = [
        Check(
            name="KMS key in the stack",
            status=CheckStatus.OK if granted else CheckStatus.MISSING,
            detail=f"default encryption SSE-KMS with {key}",
            fix=None if granted else f"redeploy with SourceKmsKeyArns={key} (added to the list)",
        )
    ]
    policy = inspector.key_policy(key)
    if policy is None:
        found.append(
            Check(
                name="KMS key policy",
                status=CheckStatus.UNKNOWN,
                detail="the key policy could not be read with these credentials",
                fix="check that it allows kms:Decrypt to the ingest role (or its account)",
                required=False,
            )
        )
        return found
    role_only = {stack.role_arn}
    # The key's own account root delegates to IAM: enough for a key of the stack's account.
    verdict = allows(policy, role_only if cross else principals, "kms:Decrypt", "*")
    if verdict is not CheckStatus.OK and cross:
        verdict = allows(policy, principals, "kms:Decrypt", "*")
    statement = {
        "Sid": "MediaIngestDecrypt",
        "Effect": "Allow",
        "Principal": {"AWS": stack.role_arn},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    found.append(
        Check(
            name="KMS key policy",
            status=verdict,
            detail=f"kms:Decrypt {verdict.value} for the ingest role",
            fix=None
            if verdict is CheckStatus.OK
            else f"add to the key policy:\n{json.dumps(statement)}",
        )
    )
    return found


def _forwarding_check(
    stack: Stack, bucket: str, bucket_account: str, inspector: Inspector
) -> Check:
    rules = inspector.forwards_to(stack.bus_arn)
    forwarding = [r for r in rules or [] if bucket in str(r.get("EventPattern", ""))]
    allowed = bucket_account in stack.source_accounts
    rule = {
        "EventPattern": {
            "source": ["aws.s3"],
            "detail-type": ["Object Created", "Object Deleted"],
            "detail": {"bucket": {"name": [bucket]}},
        },
        "Targets": [
            {
                "Id": "media-ingest",
                "Arn": stack.bus_arn,
                "RoleArn": f"<a role of {bucket_account} allowed events:PutEvents on the bus>",
            }
        ],
    }
    if rules is None:
        status, detail = CheckStatus.UNKNOWN, "the bucket account's rules could not be listed"
    elif forwarding and allowed:
        status, detail = (
            CheckStatus.OK,
            f"rule {forwarding[0].get('Name')} forwards to {stack.bus_arn}",
        )
    else:
        status = CheckStatus.MISSING
        detail = "; ".join(
            part
            for part in (
                "" if forwarding else f"no rule of {bucket_account} forwards to {stack.bus_arn}",
                "" if allowed else f"SourceAccounts does not list {bucket_account}",
            )
            if part
        )
    return Check(
        name="events forwarded from the other account",
        status=status,
        detail=detail,
        fix=None
        if status is CheckStatus.OK
        else f"in {bucket_account}, put this rule on the default bus:\n{json.dumps(rule)}\n"
        f"and redeploy this stack with SourceAccounts={bucket_account} (added to the list)",
    )


# -- attach and detach ---------------------------------------------------------------------
def attach(
    stack: Stack,
    bucket: str,
    bucket_account: str,
    *,
    notifications: Notifications,
    records: Records,
    inspector: Inspector,
    force: bool = False,
) -> Report:
    if bucket == stack.drop_bucket:
        raise AttachError(
            f"{bucket} is the stack's drop bucket: it notifies the ingest queue directly; "
            "attaching it would deliver every event twice"
        )
    found = checks(stack, bucket, bucket_account, inspector)
    blocking = [c for c in found if c.required and c.status is CheckStatus.MISSING]
    if blocking and not force:
        report = Report(bucket=bucket, action="refused", checks=found)
        raise AttachError(_refusal(report))
    before = normalized(notifications.read(bucket))
    kept = describe(before)
    already = EVENTBRIDGE in before
    if not already:
        _write_checked(notifications, bucket, before, with_eventbridge(before))
    after = normalized(notifications.read(bucket))
    if EVENTBRIDGE not in after or without_eventbridge(after) != without_eventbridge(before):
        raise AttachError(f"{bucket}: the configuration read back differs from what was written")
    earlier = records.get(bucket)
    records.put(
        AttachRecord(
            bucket=bucket,
            stack=stack.name,
            # A second attach keeps what the first one found.
            eventbridge_was_on=earlier.eventbridge_was_on if earlier else already,
            before=earlier.before if earlier else without_eventbridge(before),
        )
    )
    action = "EventBridge delivery was already on" if already else "EventBridge delivery turned on"
    return Report(bucket=bucket, action=action, kept=kept, checks=found)


def detach(stack: Stack, bucket: str, notifications: Notifications, records: Records) -> Report:
    record = records.get(bucket)
    if record is None:
        raise AttachError(f"{bucket} was not attached by stack {stack.name}: nothing to undo")
    now = normalized(notifications.read(bucket))
    notes = []
    if record.eventbridge_was_on:
        action = "EventBridge delivery left on (it was on before attach)"
    else:
        target = without_eventbridge(now)
        if EVENTBRIDGE in now:
            _write_checked(notifications, bucket, now, target)
        if without_eventbridge(normalized(notifications.read(bucket))) != target:
            raise AttachError(
                f"{bucket}: the configuration read back differs from what was written"
            )
        action = "EventBridge delivery turned off"
    if without_eventbridge(now) == record.before:
        notes.append("the configuration is exactly as attach found it")
    else:
        notes.append("the owner changed the configuration since attach: their changes are kept")
    records.delete(bucket)
    return Report(bucket=bucket, action=action, kept=describe(now), notes=notes)


def _write_checked(
    notifications: Notifications, bucket: str, read: dict[str, Any], config: dict[str, Any]
) -> None:
    """Write `config` unless the bucket's configuration changed since `read` (someone else's
    write in between would be lost: S3 has no conditional write for it)."""
    if normalized(notifications.read(bucket)) != read:
        raise AttachError(f"{bucket}: the notification configuration changed while we read it")
    notifications.write(bucket, config)


def _refusal(report: Report) -> str:
    lines = [f"not attached: {report.bucket} is not ready for the stack (--force attaches anyway)"]
    for check in report.checks:
        if check.required and check.status is CheckStatus.MISSING:
            lines.append(f"- {check.name}: {check.detail}")
            if check.fix:
                lines.append(f"  fix: {check.fix}")
    return "\n".join(lines)
