"""The catalog table (DynamoDB) as functions use it: conditional puts of items, outcome
marks, removals and failure records; the sink's batched reads of the items it applies
changes for; reconcile's scan and consistent re-reads.

Single table, hash key `pk` only. Per (dataset, URL), one row at `item#<sha256(dataset,
url)>` (URLs can exceed the 2 KB key limit): a catalog item (`type` item; a deleted object's
item keeps its place with `removed_at` and `removal`), or an outcome mark (`type` mark: the
URL's last outcome left no live item: failed, extracted, skipped, deleted). Failures:
`failure#<sha256(event id)>`; content claims: `content#...` (adapters/claims.py).
Powertools' idempotency records (the outcome ledger) share the table under their own keys.
Each row keeps its model's JSON in `doc`, so readers never reassemble attributes; `bucket`,
`okey` and `etag` are also top-level, so reconcile's scan can filter and project them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.ingest.registration import RemoveResult, RemoveStatus, WriteResult
from media_ingest.reconcile.rules import RowState, State
from media_ingest.records import CatalogItem, FailureRecord, OutcomeKind, OutcomeMark, Removal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCER_WIDTH = 64
ITEM, MARK = "item", "mark"
# A put may replace a row unless it holds a live item.
_NO_LIVE_ITEM = "attribute_not_exists(pk) OR #t <> :item OR attribute_exists(removed_at)"
_NAMES = {"#t": "type"}
_IS_ITEM = {":item": {"S": ITEM}}


def item_pk(dataset: str, url: str) -> str:
    return "item#" + hashlib.sha256(f"{dataset}\n{url}".encode()).hexdigest()


def failure_pk(event_id: str) -> str:
    return "failure#" + hashlib.sha256(event_id.encode()).hexdigest()


class DynamoCatalog:
    """The ingest path's writes: conditional puts of items, marks, removals, failures.

    What operators read (scans, batched key checks) is ops/adapters/catalog.py."""

    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def put_new(self, item: CatalogItem) -> WriteResult:
        return self._put(item, _NO_LIVE_ITEM, dict(_IS_ITEM))

    def put_newer(self, item: CatalogItem) -> WriteResult:
        return self._put(
            item,
            f"{_NO_LIVE_ITEM} OR seq_order < :seq",
            {**_IS_ITEM, ":seq": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")}},
        )

    def _put(self, item: CatalogItem, condition: str, values: dict[str, Any]) -> WriteResult:
        try:
            response = self.ddb.put_item(
                TableName=self.table,
                Item=_item_attributes(item),
                ConditionExpression=condition,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            found: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return WriteResult(written=False, previous=_item_or_none(found))
        return WriteResult(written=True, previous=_item_or_none(response.get("Attributes")))

    def read(self, dataset: str, url: str) -> CatalogItem | None:
        """The URL's item as it is now (live or removed), by a consistent read."""
        got = self.ddb.get_item(
            TableName=self.table, Key={"pk": {"S": item_pk(dataset, url)}}, ConsistentRead=True
        )
        return _item_or_none(got.get("Item"))

    def items_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CatalogItem]:
        """The live items of these (dataset, object URL) pairs: one BatchGetItem per hundred
        keys, strongly consistent (a sink reads right after the registration). A removed
        item is left out: its object was deleted since, and its own change follows."""
        by_pk = {item_pk(dataset, url): (dataset, url) for dataset, url in keys}
        options = {
            "ProjectionExpression": "pk, #t, doc, removed_at",
            "ExpressionAttributeNames": {"#t": "type"},
            "ConsistentRead": True,
        }
        found: dict[tuple[str, str], CatalogItem] = {}
        for row in batch_get(self.ddb, self.table, list(by_pk), options):
            item = _item_or_none(row)
            if item is not None and "removed_at" not in row:
                found[by_pk[row["pk"]["S"]]] = item
        return found

    def mark(self, mark: OutcomeMark) -> bool:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=_mark_attributes(mark),
                ConditionExpression=_NO_LIVE_ITEM,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues=dict(_IS_ITEM),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def saw(self, item: CatalogItem, mark: OutcomeMark) -> None:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": item_pk(item.dataset, item.object_url)}},
                UpdateExpression="SET last_mark = :m",
                ConditionExpression="#t = :item AND event_id = :e",
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={
                    **_IS_ITEM,
                    ":m": {"S": mark.model_dump_json()},
                    ":e": {"S": item.event_id},
                },
            )
        except ClientError as exc:
            # The item was replaced or removed meanwhile: the note belongs to a past state.
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def remove(self, deleted: OutcomeMark, removal: Removal, sequencer: str) -> RemoveResult:
        for _ in range(3):  # a row that changes under us is read again; three is plenty
            done = self._remove_item(deleted, removal, sequencer)
            if done is not None:
                return done
        raise RuntimeError(f"the catalog row of {deleted.object_url} kept changing")

    def _remove_item(
        self, deleted: OutcomeMark, removal: Removal, sequencer: str
    ) -> RemoveResult | None:
        condition = "#t = :item AND attribute_not_exists(removed_at)"
        values: dict[str, Any] = {
            **_IS_ITEM,
            ":at": {"S": removal.removed_at.isoformat()},
            ":r": {"S": removal.model_dump_json()},
        }
        if sequencer:
            # Unordered delivery: a deletion never removes an item of a later write.
            condition += " AND seq_order <= :seq"
            values[":seq"] = {"S": sequencer.rjust(SEQUENCER_WIDTH, "0")}
        try:
            response = self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": item_pk(deleted.dataset, deleted.object_url)}},
                UpdateExpression="SET removed_at = :at, removal = :r",
                ConditionExpression=condition,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return self._not_removed(old, deleted)
        return RemoveResult(RemoveStatus.REMOVED, item=_item_or_none(response["Attributes"]))

    def _not_removed(self, old: dict[str, Any] | None, deleted: OutcomeMark) -> RemoveResult | None:
        """Why the update did not apply, and the deleted mark where there is no item."""
        if old is not None and old["type"]["S"] == ITEM:
            item = parse_item(old)
            status = RemoveStatus.ALREADY if item.removed is not None else RemoveStatus.NEWER
            return RemoveResult(status, item=item)
        replaced = OutcomeMark.model_validate_json(old["doc"]["S"]) if old else None
        if replaced is not None and replaced.kind is OutcomeKind.DELETED:
            return RemoveResult(RemoveStatus.UNREGISTERED, replaced=replaced)
        if not self.mark(deleted):
            return None  # a live item appeared meanwhile: try to remove it
        return RemoveResult(RemoveStatus.UNREGISTERED, replaced=replaced)

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


def _item_attributes(item: CatalogItem) -> dict[str, Any]:
    return {
        "pk": {"S": item_pk(item.dataset, item.object_url)},
        "type": {"S": ITEM},
        "dataset": {"S": item.dataset},
        "bucket": {"S": item.bucket},
        "okey": {"S": item.key},
        "etag": {"S": item.etag},
        "event_id": {"S": item.event_id},
        "kind": {"S": item.kind.value},
        "seq_order": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")},
        "registered_at": {"S": item.registered_at.isoformat()},
        "doc": {"S": item.model_dump_json(exclude={"removed"})},
    }


def _mark_attributes(mark: OutcomeMark) -> dict[str, Any]:
    return {
        "pk": {"S": item_pk(mark.dataset, mark.object_url)},
        "type": {"S": MARK},
        "dataset": {"S": mark.dataset},
        "bucket": {"S": mark.bucket},
        "okey": {"S": mark.key},
        "etag": {"S": mark.etag},
        "kind": {"S": mark.kind.value},
        "doc": {"S": mark.model_dump_json()},
    }


def parse_item(attributes: dict[str, Any]) -> CatalogItem:
    """A catalog item row (with its removal, if the object was deleted)."""
    item = CatalogItem.model_validate_json(attributes["doc"]["S"])
    if "removal" in attributes:
        removal = Removal.model_validate_json(attributes["removal"]["S"])
        item = item.model_copy(update={"removed": removal})
    return item


def parse_mark(attributes: dict[str, Any]) -> OutcomeMark | None:
    """The last outcome kept on a row: an outcome mark, or an item's note of a duplicate."""
    if attributes.get("type", {}).get("S") == MARK:
        return OutcomeMark.model_validate_json(attributes["doc"]["S"])
    if "last_mark" in attributes:
        return OutcomeMark.model_validate_json(attributes["last_mark"]["S"])
    return None


def _item_or_none(attributes: dict[str, Any] | None) -> CatalogItem | None:
    if not attributes or attributes.get("type", {}).get("S") != ITEM:
        return None
    return parse_item(attributes)


_MARK_STATES: dict[OutcomeKind, State] = {
    OutcomeKind.FAILED: "failed",
    OutcomeKind.ARCHIVE: "archive",
    OutcomeKind.DUPLICATE: "duplicate",
    OutcomeKind.DELETED: "deleted",
}


def row_state(attributes: dict[str, Any]) -> RowState | None:
    """What one item or mark row says of its object (reconcile's view); None otherwise."""
    kind = attributes.get("type", {}).get("S")
    if kind == ITEM:
        item = parse_item(attributes)
        note = parse_mark(attributes)
        return RowState(
            key=item.key,
            dataset=item.dataset,
            object_url=item.object_url,
            bucket=item.bucket,
            state="removed" if item.removed else "live",
            etags=(item.etag, note.etag) if note else (item.etag,),
            event_id=item.event_id,
            written_at=item.event_time,
        )
    mark = parse_mark(attributes) if kind == MARK else None
    if mark is None or mark.kind not in _MARK_STATES:
        return None
    return RowState(
        key=mark.key,
        dataset=mark.dataset,
        object_url=mark.object_url,
        bucket=mark.bucket,
        state=_MARK_STATES[mark.kind],
        etags=(mark.etag,) if mark.etag else (),
        event_id=mark.event_id,
        written_at=mark.at,
    )


BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit


class CatalogRows:
    """Reconcile's reads of the catalog: one filtered scan of a bucket's rows, and
    consistent batched re-reads of its candidates."""

    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def scan(
        self, bucket: str, prefix: str, start: dict[str, object] | None
    ) -> Iterator[tuple[list[RowState], dict[str, object] | None]]:
        """Item and mark rows of objects under s3://bucket/prefix. Rows written before
        `bucket` was a top-level attribute are read whole and filtered here."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "(#b = :b AND begins_with(okey, :p) AND #t IN (:item, :mark))"
            " OR (attribute_not_exists(#b) AND #t = :item)",
            "ExpressionAttributeNames": {"#b": "bucket", "#t": "type"},
            "ExpressionAttributeValues": {
                ":b": {"S": bucket},
                ":p": {"S": prefix},
                ":item": {"S": ITEM},
                ":mark": {"S": MARK},
            },
        }
        while True:
            if start:
                params["ExclusiveStartKey"] = start
            page = self.ddb.scan(**params)
            rows = [r for r in map(row_state, page.get("Items", [])) if r is not None]
            rows = [r for r in rows if r.bucket == bucket and r.key.startswith(prefix)]
            start = page.get("LastEvaluatedKey")  # type: ignore[assignment]
            yield rows, start
            if not start:
                return

    def read(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], RowState]:
        keys = {item_pk(dataset, url): (dataset, url) for dataset, url in pairs}
        found: dict[tuple[str, str], RowState] = {}
        for row in batch_get(self.ddb, self.table, list(keys), {"ConsistentRead": True}):
            state = row_state(row)
            if state is not None:
                found[keys[row["pk"]["S"]]] = state
        return found


def batch_get(
    ddb: DynamoDBClient, table: str, pks: list[str], options: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """BatchGetItem of these keys, 100 at a time (`options`: projection, consistency), the
    unprocessed keys asked again (bounded: then a transient error)."""
    for begin in range(0, len(pks), BATCH_GET_MAX):
        keys = [{"pk": {"S": pk}} for pk in pks[begin : begin + BATCH_GET_MAX]]
        request: dict[str, Any] = {table: {"Keys": keys, **options}}
        for attempt in range(8):  # unprocessed keys come back under throttling: ask again
            response = ddb.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(table, [])
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
            time.sleep(0.05 * 2**attempt)
        else:
            raise TransientError(ErrorCode.AWS_TRANSIENT, "catalog reads kept throttling")
