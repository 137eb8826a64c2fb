"""The group table (DynamoDB): group state, members, and the index of groups due for sealing.

Hash key `pk` = `group#sha256(group id)`, range key `sk`: `#meta` (status, counts, times) and
`m#sha256(url)` per member (the member's CatalogItem JSON in `doc`). A member joins with one
transaction (meta: still open; member: not yet there), so a member is either in the group
before it is sealed or refused; sealing is one conditional update, so exactly one sealer
wins. Groups waiting for the sweeper (open, or sealed but not yet in a manifest) carry the
sparse `due` attributes that `DueIndex` holds; once the entry is written they leave it.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.groups.rules import Claim, GroupMeta, GroupRef, GroupStatus, Joined
from media_ingest.records import CatalogItem

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

META = "#meta"
DUE_INDEX = "DueIndex"
# The index's one partition value: groups waiting for the sweeper are few at any time
# (open groups and sealed ones not yet written), so one partition serves them.
WAITING = "waiting"
# Joins of one group that conflict (concurrent members) are tried again this often at once.
JOIN_ATTEMPTS = 6


def member_sk(url: str) -> str:
    return "m#" + hashlib.sha256(url.encode()).hexdigest()


def _epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _time(value: dict[str, Any] | None) -> datetime | None:
    return datetime.fromtimestamp(int(value["N"]), UTC) if value else None


class DynamoGroupStore:
    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(
        self,
        table: str,
        client: DynamoDBClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.ddb = client
        self.sleep = sleep
        # Striped: one of a fixed set per group, so memory stays bounded however many groups.
        self._locks = [threading.Lock() for _ in range(64)]

    def _lock(self, ref: GroupRef) -> threading.Lock:
        return self._locks[int(ref.pk[-8:], 16) % len(self._locks)]

    def join(self, ref: GroupRef, item: CatalogItem, now: datetime, due: datetime) -> Joined:
        """Add a member to its group (created open on its first member) unless sealed.

        Frames of one group arrive together and a batch decides its messages at once: their
        joins take turns within this execution environment (transactions on one item cancel
        each other), and a conflict with another environment is tried again shortly."""
        with self._lock(ref):
            return self._join(ref, item, now, due)

    def _join(self, ref: GroupRef, item: CatalogItem, now: datetime, due: datetime) -> Joined:
        meta_update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": ref.pk}, "sk": {"S": META}},
            "UpdateExpression": (
                "SET #ref = :ref, #status = if_not_exists(#status, :open), "
                "last_member_at = :now, due_at = :due, waiting = :waiting ADD members :one"
            ),
            "ConditionExpression": "attribute_not_exists(pk) OR #status = :open",
            "ExpressionAttributeNames": {"#ref": "ref", "#status": "status"},
            "ExpressionAttributeValues": {
                ":ref": {"S": ref.model_dump_json()},
                ":open": {"S": GroupStatus.OPEN.value},
                ":now": {"N": _epoch(now)},
                ":due": {"N": _epoch(due)},
                ":waiting": {"S": WAITING},
                ":one": {"N": "1"},
            },
        }
        member_put: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                "pk": {"S": ref.pk},
                "sk": {"S": member_sk(item.object_url)},
                "key": {"S": item.key},
                "event_id": {"S": item.event_id},
                "doc": {"S": item.model_dump_json()},
            },
            "ConditionExpression": "attribute_not_exists(sk)",
        }
        items = [{"Update": meta_update}, {"Put": member_put}]
        for attempt in range(JOIN_ATTEMPTS):
            try:
                self.ddb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                joined = self._why_not_joined(ref, item)
                if joined is not None:
                    return joined
                # Neither condition failed: another transaction on the group's meta item won
                # (members of one series joining at once). A message retry would wait out the
                # queue's visibility timeout; trying again now costs milliseconds.
                self.sleep(min(0.8, 0.05 * 2**attempt) * (0.5 + random.random()))
                continue
            return Joined.ADDED
        raise TransientError(
            ErrorCode.AWS_TRANSIENT, f"joining group {ref.group_id} kept conflicting; will retry"
        )

    def _why_not_joined(self, ref: GroupRef, item: CatalogItem) -> Joined | None:
        """What stopped a join, read rather than parsed from the cancellation reasons (their
        shape differs between DynamoDB, DynamoDB Local and moto); None: a conflict."""
        if self._get(ref.pk, member_sk(item.object_url)) is not None:
            return Joined.PRESENT
        meta = self.meta(ref)
        if meta is not None and meta.status is GroupStatus.SEALED:
            return Joined.SEALED
        return None

    def touch(self, ref: GroupRef, now: datetime, due: datetime) -> GroupMeta:
        """Record a marker: the group exists (open unless already sealed) with its times."""
        response = self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": ref.pk}, "sk": {"S": META}},
            UpdateExpression=(
                "SET #ref = :ref, #status = if_not_exists(#status, :open), marked_at = :now, "
                "members = if_not_exists(members, :zero), "
                "last_member_at = if_not_exists(last_member_at, :now), "
                "due_at = if_not_exists(due_at, :due), waiting = if_not_exists(waiting, :w)"
            ),
            ExpressionAttributeNames={"#ref": "ref", "#status": "status"},
            ExpressionAttributeValues={
                ":ref": {"S": ref.model_dump_json()},
                ":open": {"S": GroupStatus.OPEN.value},
                ":now": {"N": _epoch(now)},
                ":zero": {"N": "0"},
                ":due": {"N": _epoch(due)},
                ":w": {"S": WAITING},
            },
            ReturnValues="ALL_NEW",
        )
        return parse_meta(response["Attributes"])

    def seal(self, ref: GroupRef, now: datetime, quiet_since: datetime | None = None) -> bool:
        """Open -> sealed, only if it has members (and, for the sweeper, no member joined
        after `quiet_since`); True for the one caller that sealed it."""
        condition = "#status = :open AND members > :zero"
        values = {
            ":sealed": {"S": GroupStatus.SEALED.value},
            ":open": {"S": GroupStatus.OPEN.value},
            ":now": {"N": _epoch(now)},
            ":zero": {"N": "0"},
        }
        if quiet_since is not None:
            condition += " AND last_member_at <= :quiet"
            values[":quiet"] = {"N": _epoch(quiet_since)}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": ref.pk}, "sk": {"S": META}},
                UpdateExpression="SET #status = :sealed, sealed_at = :now, due_at = :now",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def close_empty(self, ref: GroupRef, now: datetime) -> None:
        """A marker whose group never got a member: sealed with nothing to write."""
        try:
            self._close_empty(ref, now)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # else a member joined meanwhile: the group stays open

    def _close_empty(self, ref: GroupRef, now: datetime) -> None:
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": ref.pk}, "sk": {"S": META}},
            UpdateExpression="SET #status = :sealed, sealed_at = :now, appended_at = :now "
            "REMOVE waiting, due_at",
            ConditionExpression="#status = :open AND members = :zero",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":sealed": {"S": GroupStatus.SEALED.value},
                ":open": {"S": "open"},
                ":now": {"N": _epoch(now)},
                ":zero": {"N": "0"},
            },
        )

    def claim_append(self, ref: GroupRef, now: datetime, until: datetime) -> Claim | None:
        """Sealed, unwritten and not claimed (or the claim expired) -> claimed until `until`;
        the sweeper's index skips it until then (`due_at`)."""
        try:
            response = self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": ref.pk}, "sk": {"S": META}},
                UpdateExpression="SET claim_until = :until, due_at = :until ADD claims :one",
                ConditionExpression="#status = :sealed AND attribute_not_exists(appended_at) "
                "AND (attribute_not_exists(claim_until) OR claim_until < :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":sealed": {"S": GroupStatus.SEALED.value},
                    ":now": {"N": _epoch(now)},
                    ":until": {"N": _epoch(until)},
                    ":one": {"N": "1"},
                },
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        earlier = int(response.get("Attributes", {}).get("claims", {}).get("N", "0"))
        return Claim(until=until, retried=earlier > 0)

    def release_append(self, ref: GroupRef, claim: Claim, now: datetime) -> None:
        """A writer that failed gives its claim up: the sweeper may try again at once."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": ref.pk}, "sk": {"S": META}},
                UpdateExpression="SET due_at = :now REMOVE claim_until",
                ConditionExpression="claim_until = :until",
                ExpressionAttributeValues={
                    ":now": {"N": _epoch(now)},
                    ":until": {"N": _epoch(claim.until)},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def appended(self, ref: GroupRef, now: datetime) -> None:
        """The group's entry is in the manifest: it leaves the sweeper's index."""
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": ref.pk}, "sk": {"S": META}},
            UpdateExpression="SET appended_at = :now REMOVE waiting, due_at, claim_until",
            ExpressionAttributeValues={":now": {"N": _epoch(now)}},
        )

    def meta(self, ref: GroupRef) -> GroupMeta | None:
        found = self._get(ref.pk, META)
        return parse_meta(found) if found else None

    def members(self, ref: GroupRef) -> list[CatalogItem]:
        return [CatalogItem.model_validate_json(r["doc"]["S"]) for r in self._members(ref.pk)]

    def _members(self, pk: str) -> Iterator[dict[str, Any]]:
        pages = self.ddb.get_paginator("query").paginate(
            TableName=self.table,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":m": {"S": "m#"}},
        )
        for page in pages:
            yield from page.get("Items", [])

    def due(self, now: datetime) -> Iterator[GroupMeta]:
        """Groups whose time has come: open past their quiet period, or sealed, unwritten."""
        pages = self.ddb.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=DUE_INDEX,
            KeyConditionExpression="waiting = :w AND due_at <= :now",
            ExpressionAttributeValues={":w": {"S": WAITING}, ":now": {"N": _epoch(now)}},
        )
        for page in pages:
            for row in page.get("Items", []):
                # The index (keys only) is eventually consistent: read the item itself.
                found = self._get(row["pk"]["S"], META)
                if found is not None:
                    yield parse_meta(found)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        found = self.ddb.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        return dict(found) if found else None


def parse_meta(row: dict[str, Any]) -> GroupMeta:
    return GroupMeta(
        ref=GroupRef.model_validate_json(row["ref"]["S"]),
        status=GroupStatus(row["status"]["S"]),
        members=int(row.get("members", {}).get("N", "0")),
        last_member_at=_time(row.get("last_member_at")),
        sealed_at=_time(row.get("sealed_at")),
        appended_at=_time(row.get("appended_at")),
    )
