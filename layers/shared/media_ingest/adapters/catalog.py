"""The catalog table (DynamoDB) as functions use it: conditional puts of items, the outcome
ledger's records, per-URL outcome marks and removals, the manifests' part-number counters,
the sink's batched reads of the items it applies changes for, and reconcile's scan and
consistent re-reads.

Single table, hash key `pk` only (URLs and event ids can exceed the 2 KB key limit: keys are
digests). Where each event's one outcome lives (docs/architecture.md, "One event, one outcome"):

- `item#<sha256(dataset, url)>`: the URL's row in its dataset, one of
  - `type` item: a registered object, its CatalogItem JSON zlib-compressed in `docz` (small
    items stay under 1 KB: one write unit). In a dataset that never replaces items a live
    item also *is* its event's `registered` outcome (`outcome`), with its `group`, and the
    lease of the run that registered it (`lease`, `lease_until`). A deleted object's item
    keeps its place, marked removed (`removed_at`, `removal`), and never carries an outcome:
    marking it removed moves that outcome to an outcome record first.
  - `type` mark: an *outcome mark*, the URL's last outcome when it left no live item
    (failed, archive, a skipped duplicate, deleted): reconcile's per-URL state, not the
    ledger (the event's outcome record is).
- `outcome#<sha256(event id)>` (`type` outcome): any other outcome (duplicate, updated,
  failed, ignored, archive, marker, deleted, and registered in update datasets), its Outcome
  JSON in `doc`.
- `failure#<sha256(event id)>` (`type` failure): a FailureRecord (`doc`), the failure log's
  row: of a failed event, or of one member of an archive (the extract function's; no event).
- `counter#manifest#<dataset>` (`type` counter): the last manifest part number handed out.
- `links#<sha256(bucket, key, archive version)>`: annotation links the extract function
  recorded for a member it writes (`doc`).
- `content#...`: content claims (adapters/claims.py); `attach#<bucket>`: what attach did.

Item and mark rows keep `bucket`, `okey` and `etag` top-level, so reconcile's scan can filter
and project them. Stacks from before this layout kept the ledger in Powertools idempotency
records (no `type`; `status` and `data`): ops/adapters/catalog.py still reads those.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.ingest.registration import (
    Lease,
    Recorded,
    RemoveResult,
    RemoveStatus,
    WriteResult,
    restored_change,
    restored_detail,
)
from media_ingest.media import AnnotationLinks
from media_ingest.reconcile.rules import RowState, State
from media_ingest.records import (
    CatalogItem,
    FailureRecord,
    Outcome,
    OutcomeKind,
    OutcomeMark,
    Removal,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCER_WIDTH = 64
_CHECK_FAILED = "ConditionalCheckFailedException"
# The outcome an item carries (the ledger's record of its event), if it carries one.
CARRIED = "outcome"
# On an item registered again after its deletion: the removal it followed (Removal JSON).
RESTORED = "restores"
BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit
ITEM, MARK = "item", "mark"
# A put may replace a row unless it holds a live item (a mark, or an item marked removed,
# which never carries an outcome).
_NO_LIVE_ITEM = "attribute_not_exists(pk) OR #t <> :item OR attribute_exists(removed_at)"
_NAMES = {"#t": "type"}
_IS_ITEM = {":item": {"S": ITEM}}


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
    """The ingest path's writes: conditional puts of items, failure and outcome records,
    outcome marks and removals, the one read a redelivery makes, and lease releases.

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
        # No live item: a first registration, or one after a deletion (the removed item
        # carries no outcome) or after an outcome that left only a mark.
        result = self._put(attributes, _NO_LIVE_ITEM, dict(_IS_ITEM))
        if result.written and result.previous is not None and result.previous.removed:
            self._note_restored(item, result.previous.removed)
        return result

    def _note_restored(self, item: CatalogItem, removal: Removal) -> None:
        """A registration after a deletion (rare: one more write): the carried outcome says
        so, as a replay of it must (its detail, and its line in the removal log)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": item_pk(item.dataset, item.object_url)}},
                UpdateExpression=f"SET {RESTORED} = :r",
                ConditionExpression="event_id = :e",
                ExpressionAttributeValues={
                    ":r": {"S": removal.model_dump_json()},
                    ":e": {"S": item.event_id},
                },
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:  # replaced meanwhile: its outcome moved
                raise

    def put_newer(
        self, item: CatalogItem, group: str | None = None, lease: Lease | None = None
    ) -> WriteResult:
        # An item that carries its outcome was registered while the dataset replaced nothing
        # (UpdateDatasets changed since): its outcome is moved to an outcome record of its
        # own before anything may replace it, so the ledger never loses that event.
        condition = f"({_NO_LIVE_ITEM} OR seq_order < :seq) AND attribute_not_exists({CARRIED})"
        values = {**_IS_ITEM, ":seq": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")}}
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
        try:
            response = self.ddb.put_item(
                TableName=self.table,
                Item=attributes,
                ConditionExpression=condition,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:
                raise
            found: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            if not found or not _is_item(found):
                return WriteResult(written=False)
            return WriteResult(False, parse_item(found), lease_of(found))
        old = response.get("Attributes")
        if not old or not _is_item(old):
            return WriteResult(True)
        return WriteResult(True, parse_item(old), lease_of(old))

    def read(self, dataset: str, url: str) -> CatalogItem | None:
        """The URL's item as it is now (live or removed), by a consistent read."""
        return _item_or_none(self._get(item_pk(dataset, url)))

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
        """The live items of these (dataset, object URL) pairs: one BatchGetItem per hundred
        keys, strongly consistent (a sink reads right after the registration). A removed
        item is left out: its object was deleted since, and its own change follows."""
        by_pk = {item_pk(dataset, url): (dataset, url) for dataset, url in keys}
        options = {
            "ProjectionExpression": "pk, #t, doc, docz, removed_at",
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
            if error_code(exc) != _CHECK_FAILED:
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
            if error_code(exc) != _CHECK_FAILED:
                raise

    def remove(self, deleted: OutcomeMark, removal: Removal, sequencer: str) -> RemoveResult:
        moved: str | None = None
        for _ in range(4):  # a row that changes under us is read again; four is plenty
            done = self._remove_item(deleted, removal, sequencer, moved)
            if isinstance(done, RemoveResult):
                return done
            moved = done
        raise TransientError(
            ErrorCode.AWS_TRANSIENT, f"the catalog row of {deleted.object_url} kept changing"
        )

    def _remove_item(
        self, deleted: OutcomeMark, removal: Removal, sequencer: str, moved: str | None
    ) -> RemoveResult | str | None:
        """Mark the live item removed. An item that carries its event's outcome gives it up
        in the same update, once that outcome is an outcome record (`moved`: the event whose
        outcome this call already moved). Returns the result, or the event id whose carried
        outcome it just moved (try again), or None (the row changed: try again)."""
        condition = (
            f"#t = :item AND attribute_not_exists(removed_at) AND (attribute_not_exists({CARRIED})"
        )
        values: dict[str, Any] = {
            **_IS_ITEM,
            ":at": {"S": removal.removed_at.isoformat()},
            ":r": {"S": removal.model_dump_json()},
        }
        if moved is not None:
            condition += " OR event_id = :moved"
            values[":moved"] = {"S": moved}
        condition += ")"
        if sequencer:
            # Unordered delivery: a deletion never removes an item of a later write.
            condition += " AND seq_order <= :seq"
            values[":seq"] = {"S": sequencer.rjust(SEQUENCER_WIDTH, "0")}
        try:
            response = self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": item_pk(deleted.dataset, deleted.object_url)}},
                UpdateExpression=f"SET removed_at = :at, removal = :r REMOVE {CARRIED}",
                ConditionExpression=condition,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != _CHECK_FAILED:
                raise
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return self._not_removed(old, deleted, sequencer)
        return RemoveResult(RemoveStatus.REMOVED, item=_item_or_none(response["Attributes"]))

    def _not_removed(
        self, old: dict[str, Any] | None, deleted: OutcomeMark, sequencer: str
    ) -> RemoveResult | str | None:
        """Why the update did not apply: an outcome to move first, an item removed before or
        newer than the deletion, or no item (the deleted mark takes the URL's place)."""
        if old is not None and _is_item(old):
            item = parse_item(old)
            if item.removed is not None:
                return RemoveResult(RemoveStatus.ALREADY, item=item)
            newer = sequencer and old["seq_order"]["S"] > sequencer.rjust(SEQUENCER_WIDTH, "0")
            if newer:
                return RemoveResult(RemoveStatus.NEWER, item=item)
            carried = outcome_of_row(old)
            if carried is not None:
                # The ledger must keep the registering event's outcome: record it apart first.
                self.record_outcome(carried)
                return item.event_id
            return None
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
                    # A deletion keeps its removed item (a replay tells the sinks again).
                    "doc": {"S": outcome.model_dump_json(exclude=_not_kept(outcome))},
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
        "type": {"S": ITEM},
        "dataset": {"S": item.dataset},
        "bucket": {"S": item.bucket},
        "okey": {"S": item.key},
        "etag": {"S": item.etag},
        "event_id": {"S": item.event_id},
        "kind": {"S": item.kind.value},
        "seq_order": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")},
        "registered_at": {"S": item.registered_at.isoformat()},
        "docz": {"B": zlib.compress(item.model_dump_json(exclude={"removed"}).encode(), 9)},
    }
    if group is not None:
        attributes["group"] = {"S": group}
    if lease is not None:
        attributes["lease"] = {"S": lease.token}
        attributes["lease_until"] = {"N": str(int(lease.until.timestamp() * 1000))}
    return attributes


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
    if "docz" in attributes:
        item = CatalogItem.model_validate_json(zlib.decompress(attributes["docz"]["B"]))
    else:  # written before docz
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


def _is_item(attributes: dict[str, Any]) -> bool:
    return bool(attributes.get("type", {}).get("S") == ITEM)


def _item_or_none(attributes: dict[str, Any] | None) -> CatalogItem | None:
    if not attributes or not _is_item(attributes):
        return None
    return parse_item(attributes)


def _not_kept(outcome: Outcome) -> set[str]:
    """What an outcome record leaves out: the item, which its own row holds (records stay
    small), except a deletion's removed item, which a replay tells the sinks again."""
    return set() if outcome.kind is OutcomeKind.DELETED else {"item"}


def lease_of(attributes: dict[str, Any]) -> Lease | None:
    if "lease" not in attributes or "lease_until" not in attributes:
        return None
    until = datetime.fromtimestamp(int(attributes["lease_until"]["N"]) / 1000, UTC)
    return Lease(attributes["lease"]["S"], until)


def outcome_of_row(row: dict[str, Any]) -> Outcome | None:
    """The outcome a record of this table holds, if it holds one (the ledger's reading; an
    outcome mark is per-URL state, not an event's outcome)."""
    kind = row.get("type", {}).get("S")
    if kind == "outcome":
        return Outcome.model_validate_json(row["doc"]["S"])
    if kind == ITEM and CARRIED in row:
        item = parse_item(row)
        restores = Removal.model_validate_json(row[RESTORED]["S"]) if RESTORED in row else None
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
            detail=restored_detail(restores) if restores else None,
            url_change=restored_change(item) if restores else None,
        )
    return None


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
