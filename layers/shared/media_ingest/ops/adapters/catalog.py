"""The catalog table as operators read it: every live item, one dataset's items, removals,
failure records, the outcome ledger (scans), and batched key checks for backfill. Never on
the ingest path.

The ledger is read where adapters/catalog.py says each outcome lives (items that carry
theirs, outcome records), and from the Powertools idempotency records that stacks kept it
in before: after an upgrade in place those events still count, once each.

The reads are scans: fine for operator commands on tables of millions of rows. There is no
dataset-scoped query: the hash key is a digest of (dataset, URL) and the table has no index
on `dataset`, so a dataset's items are a scan with a filter (DynamoDB still reads, and
bills, the whole table).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from media_ingest.adapters.catalog import (
    ITEM,
    MARK,
    batch_get,
    item_pk,
    outcome_of_row,
    parse_item,
)
from media_ingest.adapters.clients import ClientSlot
from media_ingest.records import CatalogItem, FailureRecord, Outcome, OutcomeKind, OutcomeMark

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_LIVE_ITEM = "#t = :t AND attribute_not_exists(removed_at)"


class CatalogReader:
    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def registered(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (dataset, object URL) pairs with a live catalog item: batched reads of the
        attributes that say so (an outcome mark or a removed item is not registered)."""
        by_pk = {item_pk(dataset, url): (dataset, url) for dataset, url in pairs}
        return {
            by_pk[row["pk"]["S"]]
            for row in batch_get(
                self.ddb,
                self.table,
                list(by_pk),
                {
                    "ProjectionExpression": "pk, #t, removed_at",
                    "ExpressionAttributeNames": {"#t": "type"},
                },
            )
            if row["type"]["S"] == ITEM and "removed_at" not in row
        }

    def items(self) -> list[CatalogItem]:
        """Every live item (deleted objects' items are left out)."""
        rows = self._scan(_LIVE_ITEM, {"#t": "type"}, {":t": {"S": ITEM}})
        return sorted((parse_item(r) for r in rows), key=lambda i: (i.dataset, i.registered_at))

    def dataset_items(self, dataset: str) -> Iterator[CatalogItem]:
        """One dataset's live items, page by page as the scan returns them (table order)."""
        for row in self._scan_pages(
            f"{_LIVE_ITEM} AND #d = :d",
            {"#t": "type", "#d": "dataset"},
            {":t": {"S": ITEM}, ":d": {"S": dataset}},
        ):
            yield parse_item(row)

    def marks(self, kind: OutcomeKind) -> list[OutcomeMark]:
        """The outcome marks of one kind (a URL's last outcome that left no live item)."""
        rows = self._scan(
            "#t = :m AND #k = :k",
            {"#t": "type", "#k": "kind"},
            {":m": {"S": MARK}, ":k": {"S": kind.value}},
        )
        return [OutcomeMark.model_validate_json(r["doc"]["S"]) for r in rows]

    def removals(self) -> dict[str, datetime]:
        """When each deleted object URL's deletion was recorded: removed items and the
        deleted marks of URLs that were never registered (failures it settles)."""
        found: dict[str, datetime] = {}
        for row in self._scan_pages(
            "attribute_exists(removed_at) OR (#t = :m AND #k = :d)",
            {"#t": "type", "#k": "kind"},
            {":m": {"S": MARK}, ":d": {"S": OutcomeKind.DELETED.value}},
        ):
            if row["type"]["S"] == ITEM:
                removal = parse_item(row).removed
                if removal is not None:
                    found[parse_item(row).object_url] = removal.removed_at
            else:
                mark = OutcomeMark.model_validate_json(row["doc"]["S"])
                found[mark.object_url] = mark.at
        return found

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
