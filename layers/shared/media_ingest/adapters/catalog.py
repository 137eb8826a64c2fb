"""The catalog table (DynamoDB): conditional puts of items and failure records.

Single table, hash key `pk` only. Items: `item#<sha256(dataset, url)>` (URLs can exceed
the 2 KB key limit); failures: `failure#<sha256(event id)>`. Powertools' idempotency records
(the outcome ledger) share the table under their own keys. Each record keeps its model's
JSON in `doc`, so readers never reassemble attributes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.ingest.registration import WriteResult
from media_ingest.records import CatalogItem, FailureRecord, Outcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCER_WIDTH = 64


BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit


def item_pk(dataset: str, url: str) -> str:
    return "item#" + hashlib.sha256(f"{dataset}\n{url}".encode()).hexdigest()


def failure_pk(event_id: str) -> str:
    return "failure#" + hashlib.sha256(event_id.encode()).hexdigest()


class DynamoCatalog:
    """Writes (conditional puts on the ingest path) and operator reads of the catalog table.

    The reads are scans: fine for operator commands on tables of millions of rows, never
    used on the ingest path. There is no dataset-scoped query: the hash key is a digest of
    (dataset, URL) and the table has no index on `dataset`, so a dataset's items are a scan
    with a filter (DynamoDB still reads, and bills, the whole table).
    """

    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def put_new(self, item: CatalogItem) -> WriteResult:
        return self._put(item, "attribute_not_exists(pk)", {})

    def put_newer(self, item: CatalogItem) -> WriteResult:
        return self._put(
            item,
            "attribute_not_exists(pk) OR seq_order < :seq",
            {":seq": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")}},
        )

    def _put(self, item: CatalogItem, condition: str, values: dict[str, Any]) -> WriteResult:
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        try:
            response = self.ddb.put_item(
                TableName=self.table,
                Item=_item_attributes(item),
                ConditionExpression=condition,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **extra,
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            found: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return WriteResult(written=False, previous=_parse_item(found) if found else None)
        old = response.get("Attributes")
        return WriteResult(written=True, previous=_parse_item(old) if old else None)

    def registered(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (dataset, object URL) pairs with a catalog item: batched reads, keys only."""
        by_pk = {item_pk(dataset, url): (dataset, url) for dataset, url in pairs}
        found: set[tuple[str, str]] = set()
        pks = list(by_pk)
        for start in range(0, len(pks), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": pk}} for pk in pks[start : start + BATCH_GET_MAX]],
                    "ProjectionExpression": "pk",
                }
            }
            while request:  # unprocessed keys come back under throttling: ask again
                response = self.ddb.batch_get_item(RequestItems=request)
                for row in response.get("Responses", {}).get(self.table, []):
                    found.add(by_pk[row["pk"]["S"]])
                request = dict(response.get("UnprocessedKeys") or {})
                if request:
                    time.sleep(0.1)
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

    def items(self) -> list[CatalogItem]:
        rows = self._scan("#t = :t", {"#t": "type"}, {":t": {"S": "item"}})
        return sorted((_parse_item(r) for r in rows), key=lambda i: (i.dataset, i.registered_at))

    def dataset_items(self, dataset: str) -> Iterator[CatalogItem]:
        """One dataset's items, page by page as the scan returns them (table order)."""
        for row in self._scan_pages(
            "#t = :t AND #d = :d",
            {"#t": "type", "#d": "dataset"},
            {":t": {"S": "item"}, ":d": {"S": dataset}},
        ):
            yield _parse_item(row)

    def failures(self) -> list[FailureRecord]:
        rows = self._scan("#t = :t", {"#t": "type"}, {":t": {"S": "failure"}})
        records = (FailureRecord.model_validate_json(r["doc"]["S"]) for r in rows)
        return sorted(records, key=lambda f: f.failed_at)

    def ledger(self) -> tuple[list[Outcome], int]:
        """Recorded outcomes (Powertools idempotency records) and how many are in progress."""
        rows = self._scan(
            "attribute_exists(#s) AND attribute_not_exists(#t)", {"#s": "status", "#t": "type"}, {}
        )
        done = [Outcome.model_validate_json(r["data"]["S"]) for r in rows if "data" in r]
        in_progress = sum(1 for r in rows if r["status"]["S"] == "INPROGRESS")
        return done, in_progress

    def _scan(
        self, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return list(self._scan_pages(condition, names, values))

    def _scan_pages(
        self, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table, "FilterExpression": condition,
            "ExpressionAttributeNames": names, "ConsistentRead": True,
        }  # fmt: skip
        if values:
            params["ExpressionAttributeValues"] = values
        for page in self.ddb.get_paginator("scan").paginate(**params):
            yield from page.get("Items", [])


def _item_attributes(item: CatalogItem) -> dict[str, Any]:
    return {
        "pk": {"S": item_pk(item.dataset, item.object_url)},
        "type": {"S": "item"},
        "dataset": {"S": item.dataset},
        "kind": {"S": item.kind.value},
        "seq_order": {"S": item.sequencer.rjust(SEQUENCER_WIDTH, "0")},
        "registered_at": {"S": item.registered_at.isoformat()},
        "doc": {"S": item.model_dump_json()},
    }


def _parse_item(attributes: dict[str, Any]) -> CatalogItem:
    return CatalogItem.model_validate_json(attributes["doc"]["S"])
