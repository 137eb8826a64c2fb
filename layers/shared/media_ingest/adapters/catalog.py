"""The catalog table (DynamoDB) as functions use it: conditional puts of items, the outcome
ledger's records, the manifests' part-number counters, and the sink's batched reads of the
items it applies changes for.

Single table, hash key `pk` only (URLs and event ids can exceed the 2 KB key limit: keys are
digests). Where each event's one outcome lives (docs/architecture.md, "One event, one outcome"):

- `item#<sha256(dataset, url)>` (`type` item): a registered object, its CatalogItem JSON
  zlib-compressed in `docz` (small items stay under 1 KB: one write unit). In a dataset that
  never replaces items it also *is* its event's `registered` outcome (`outcome`), with its
  `group`, and the lease of the run that registered it (`lease`, `lease_until`).
- `outcome#<sha256(event id)>` (`type` outcome): any other outcome (duplicate, updated,
  failed, ignored, archive, marker, and registered in update datasets), its Outcome JSON in
  `doc`.
- `failure#<sha256(event id)>` (`type` failure): a FailureRecord (`doc`), the failure log's
  row: of a failed event, or of one member of an archive (the extract function's; no event).
- `counter#manifest#<dataset>` (`type` counter): the last manifest part number handed out.
- `links#<sha256(bucket, key, archive version)>`: annotation links the extract function
  recorded for a member it writes (`doc`).

Stacks from before this layout kept the ledger in Powertools idempotency records (no
`type`; `status` and `data`): ops/adapters/catalog.py still reads those.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.ingest.registration import Lease, Recorded, WriteResult
from media_ingest.media import AnnotationLinks
from media_ingest.records import CatalogItem, FailureRecord, Outcome, OutcomeKind

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCER_WIDTH = 64
_CHECK_FAILED = "ConditionalCheckFailedException"
# The outcome an item carries (the ledger's record of its event), if it carries one.
CARRIED = "outcome"
BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit


def item_pk(dataset: str, url: str) -> str:
    return "item#" + hashlib.sha256(f"{dataset}\n{url}".encode()).hexdigest()


def failure_pk(event_id: str) -> str:
    return "failure#" + hashlib.sha256(event_id.encode()).hexdigest()


def outcome_pk(event_id: str) -> str:
    return "outcome#" + hashlib.sha256(event_id.encode()).hexdigest()


def counter_pk(dataset: str) -> str:
    return f"counter#manifest#{dataset}"


def links_pk(bucket: str, key: str, source: str) -> str:
    return "links#" + hashlib.sha256(f"{bucket}\n{key}\n{source}".encode()).hexdigest()


class DynamoCatalog:
    """The ingest path's writes: conditional puts of items, failure and outcome records, the
    one read a redelivery makes, and lease releases.

    What operators read (scans, batched key checks) is ops/adapters/catalog.py."""

    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def put_new(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        attributes = item_attributes(item, group, lease)
        attributes[CARRIED] = {"S": OutcomeKind.REGISTERED.value}
        return self._put(attributes, "attribute_not_exists(pk)", {})

    def put_newer(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        # An item that carries its outcome was registered while the dataset replaced nothing
        # (UpdateDatasets changed since): its outcome is moved to an outcome record of its
        # own before anything may replace it, so the ledger never loses that event.
        condition = (
            f"(attribute_not_exists(pk) OR seq_order < :seq) AND attribute_not_exists({CARRIED})"
        )
        values = {":seq": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")}}
        attributes = item_attributes(item, group, lease)
        result = self._put(attributes, condition, values)
        if result.written or result.previous is None:
            return result
        stored = self._get(item_pk(item.dataset, item.object_url))
        if stored is None or CARRIED not in stored:
            return result
        self._uncarry(stored)
        return self._put(attributes, condition, values)

    def _uncarry(self, stored: dict[str, Any]) -> None:
        """Move the outcome an item carries to an outcome record, then off the item."""
        carried = outcome_of_row(stored)
        if carried is not None:
            self.record_outcome(carried)
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": stored["pk"]},
                UpdateExpression=f"REMOVE {CARRIED}",
                ConditionExpression="registered_at = :at",
                ExpressionAttributeValues={":at": stored["registered_at"]},
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:  # replaced meanwhile: nothing to move
                raise

    def _put(
        self, attributes: dict[str, Any], condition: str, values: dict[str, Any]
    ) -> WriteResult:
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        try:
            response = self.ddb.put_item(
                TableName=self.table,
                Item=attributes,
                ConditionExpression=condition,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **extra,
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:
                raise
            found: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            if not found:
                return WriteResult(written=False)
            return WriteResult(False, parse_item(found), lease_of(found))
        old = response.get("Attributes")
        return WriteResult(True, parse_item(old) if old else None, lease_of(old) if old else None)

    def record_links(self, bucket: str, key: str, source: str, links: AnnotationLinks) -> None:
        """The extract function's record of a member's annotation links (archives/rules.py)."""
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": links_pk(bucket, key, source)},
                "type": {"S": "links"},
                "doc": {"S": links.model_dump_json()},
            },
        )

    def find_links(self, bucket: str, key: str, source: str) -> AnnotationLinks | None:
        """The links recorded for the member `key` written from archive version `source`."""
        found = self.ddb.get_item(
            TableName=self.table,
            Key={"pk": {"S": links_pk(bucket, key, source)}},
            ConsistentRead=True,
        ).get("Item")
        return AnnotationLinks.model_validate_json(found["doc"]["S"]) if found else None

    def items_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CatalogItem]:
        """The items of these (dataset, object URL) pairs that exist: one BatchGetItem per
        hundred keys, strongly consistent (a sink reads right after the registration)."""
        by_pk = {item_pk(dataset, url): (dataset, url) for dataset, url in keys}
        found: dict[tuple[str, str], CatalogItem] = {}
        pks = list(by_pk)
        for start in range(0, len(pks), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": pk}} for pk in pks[start : start + BATCH_GET_MAX]],
                    "ProjectionExpression": "pk, doc, docz",
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):  # unprocessed keys come back under throttling: ask again
                response = self.ddb.batch_get_item(RequestItems=request)
                for row in response.get("Responses", {}).get(self.table, []):
                    found[by_pk[row["pk"]["S"]]] = parse_item(row)
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise TransientError(ErrorCode.AWS_TRANSIENT, "catalog reads kept throttling")
        return found

    def record_failure(self, record: FailureRecord) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": failure_pk(record.event_id)},
                "type": {"S": "failure"},
                "error_code": {"S": record.error_code.value},
                "failed_at": {"S": record.failed_at.isoformat()},
                "doc": {"S": record.model_dump_json()},
            },
        )

    def record_outcome(self, outcome: Outcome) -> None:
        """The first outcome recorded for an event stays (a duplicate delivery decided again
        later, however it ends, changes nothing)."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": outcome_pk(outcome.event_id)},
                    "type": {"S": "outcome"},
                    "kind": {"S": outcome.kind.value},
                    "doc": {"S": outcome.model_dump_json(exclude={"item"})},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:
                raise

    def recorded(self, event_id: str, dataset: str, url: str) -> Recorded | None:
        """One batched read of the two places an event's outcome can be; with it, the lease on
        the item if this event wrote it (its run may still be appending the entry)."""
        keys = [item_pk(dataset, url), outcome_pk(event_id)]
        request: dict[str, Any] = {
            self.table: {"Keys": [{"pk": {"S": k}} for k in keys], "ConsistentRead": True}
        }
        rows: list[dict[str, Any]] = []
        while request:
            response = self.ddb.batch_get_item(RequestItems=request)
            rows += response.get("Responses", {}).get(self.table, [])
            request = dict(response.get("UnprocessedKeys") or {})
        found = [o for o in map(outcome_of_row, rows) if o is not None and o.event_id == event_id]
        if not found:
            return None
        outcome = min(found, key=lambda o: o.processed_at)
        mine = [r for r in rows if r["type"]["S"] == "item" and parse_item(r).event_id == event_id]
        if not mine:
            return Recorded(outcome)
        if outcome.item is None and outcome.kind is OutcomeKind.REGISTERED:
            # An outcome record keeps no item (update datasets): the item is in its row.
            outcome = outcome.model_copy(update={"item": parse_item(mine[0])})
        return Recorded(outcome, lease_of(mine[0]))

    def release(self, item: CatalogItem, lease: Lease) -> None:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": item_pk(item.dataset, item.object_url)}},
                UpdateExpression="REMOVE lease, lease_until",
                ConditionExpression="lease = :mine",
                ExpressionAttributeValues={":mine": {"S": lease.token}},
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:
                raise

    def _get(self, pk: str) -> dict[str, Any] | None:
        found = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        row = found.get("Item")
        return dict(row) if row else None


class DynamoPartNumbers:
    """Manifest part numbers from an atomic counter per dataset: concurrent writers that each
    need a part of their own get different numbers with no retry (manifests/writer.py)."""

    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def next(self, dataset: str, floor: int) -> int:
        response = self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": counter_pk(dataset)}},
            # The floor counts only when the counter is created: a stack upgraded from one
            # part at a time starts above the parts it already has.
            UpdateExpression="SET next_part = if_not_exists(next_part, :floor) + :one, #t = :t",
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={
                ":floor": {"N": str(floor)},
                ":one": {"N": "1"},
                ":t": {"S": "counter"},
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["next_part"]["N"])


def item_attributes(
    item: CatalogItem, group: str | None = None, lease: Lease | None = None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "pk": {"S": item_pk(item.dataset, item.object_url)},
        "type": {"S": "item"},
        "dataset": {"S": item.dataset},
        "kind": {"S": item.kind.value},
        "seq_order": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")},
        "registered_at": {"S": item.registered_at.isoformat()},
        "docz": {"B": zlib.compress(item.model_dump_json().encode(), 9)},
    }
    if group is not None:
        attributes["group"] = {"S": group}
    if lease is not None:
        attributes["lease"] = {"S": lease.token}
        attributes["lease_until"] = {"N": str(int(lease.until.timestamp() * 1000))}
    return attributes


def parse_item(attributes: dict[str, Any]) -> CatalogItem:
    if "docz" in attributes:
        return CatalogItem.model_validate_json(zlib.decompress(attributes["docz"]["B"]))
    return CatalogItem.model_validate_json(attributes["doc"]["S"])  # written before docz


def lease_of(attributes: dict[str, Any]) -> Lease | None:
    if "lease" not in attributes or "lease_until" not in attributes:
        return None
    until = datetime.fromtimestamp(int(attributes["lease_until"]["N"]) / 1000, UTC)
    return Lease(attributes["lease"]["S"], until)


def outcome_of_row(row: dict[str, Any]) -> Outcome | None:
    """The outcome a record of this table holds, if it holds one (the ledger's reading)."""
    kind = row.get("type", {}).get("S")
    if kind == "outcome":
        return Outcome.model_validate_json(row["doc"]["S"])
    if kind == "item" and CARRIED in row:
        item = parse_item(row)
        return Outcome(
            kind=OutcomeKind(row[CARRIED]["S"]),
            event_id=item.event_id,
            bucket=item.bucket,
            key=item.key,
            object_url=item.object_url,
            dataset=item.dataset,
            processed_at=item.registered_at,
            item=item,
            group=row.get("group", {}).get("S"),
        )
    return None
