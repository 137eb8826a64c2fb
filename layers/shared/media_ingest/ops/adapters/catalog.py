"""The catalog table as operators read it: every item, one dataset's items, failure records,
the outcome ledger (scans), and batched key checks for backfill. Never on the ingest path.

The ledger is read where adapters/catalog.py says each outcome lives (items that carry
theirs, outcome records), and from the Powertools idempotency records that stacks kept it
in before: after an upgrade in place those events still count, once each.

The reads are scans: fine for operator commands on tables of millions of rows. There is no
dataset-scoped query: the hash key is a digest of (dataset, URL) and the table has no index
on `dataset`, so a dataset's items are a scan with a filter (DynamoDB still reads, and
bills, the whole table).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from media_ingest.adapters.catalog import item_pk, outcome_of_row, parse_item
from media_ingest.adapters.clients import ClientSlot
from media_ingest.records import CatalogItem, FailureRecord, Outcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit


class CatalogReader:
    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

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

    def items(self) -> list[CatalogItem]:
        rows = self._scan("#t = :t", {"#t": "type"}, {":t": {"S": "item"}})
        return sorted((parse_item(r) for r in rows), key=lambda i: (i.dataset, i.registered_at))

    def dataset_items(self, dataset: str) -> Iterator[CatalogItem]:
        """One dataset's items, page by page as the scan returns them (table order)."""
        for row in self._scan_pages(
            "#t = :t AND #d = :d",
            {"#t": "type", "#d": "dataset"},
            {":t": {"S": "item"}, ":d": {"S": dataset}},
        ):
            yield parse_item(row)

    def failures(self) -> list[FailureRecord]:
        rows = self._scan("#t = :t", {"#t": "type"}, {":t": {"S": "failure"}})
        records = (FailureRecord.model_validate_json(r["doc"]["S"]) for r in rows)
        return sorted(records, key=lambda f: f.failed_at)

    def ledger(self) -> tuple[list[Outcome], int]:
        """Every event's recorded outcome (the first recorded, should a duplicate delivery
        have recorded another), and how many events a previous version of the stack left in
        progress (its Powertools idempotency records; none are written any more)."""
        legacy = "attribute_exists(#s) AND attribute_not_exists(#t)"
        rows = self._scan(
            f"#t IN (:item, :outcome) OR ({legacy})",
            {"#s": "status", "#t": "type"},
            {":item": {"S": "item"}, ":outcome": {"S": "outcome"}},
        )
        found: list[Outcome] = []
        in_progress = 0
        for row in rows:
            if "type" not in row:  # a Powertools idempotency record
                if "data" in row and row["status"]["S"] == "COMPLETED":
                    found.append(Outcome.model_validate_json(row["data"]["S"]))
                elif row["status"]["S"] == "INPROGRESS":
                    in_progress += 1
                continue
            outcome = outcome_of_row(row)
            if outcome is not None:
                found.append(outcome)
        first: dict[str, Outcome] = {}
        for outcome in sorted(found, key=lambda o: o.processed_at):
            first.setdefault(outcome.event_id, outcome)
        return list(first.values()), in_progress

    def _scan(
        self, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return list(self._scan_pages(condition, names, values))

    def _scan_pages(
        self, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": condition,
            "ExpressionAttributeNames": names,
            "ConsistentRead": True,
        }
        if values:
            params["ExpressionAttributeValues"] = values
        for page in self.ddb.get_paginator("scan").paginate(**params):
            yield from page.get("Items", [])
