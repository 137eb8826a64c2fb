"""The group table as operators read it: one dataset's sealed groups with their members (a
scan, for exports). Never on the ingest path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
from media_ingest.adapters.groups import META, DynamoGroupStore, parse_meta
from media_ingest.groups.rules import GroupMeta
from media_ingest.records import CatalogItem

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class GroupReader:
    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client
        self.store = DynamoGroupStore(table, client)

    def sealed_groups(self, dataset: str) -> Iterator[tuple[GroupMeta, list[CatalogItem]]]:
        """Operator side (export): one dataset's sealed groups with their members (a scan)."""
        pages = self.ddb.get_paginator("scan").paginate(
            TableName=self.table,
            ConsistentRead=True,
            FilterExpression="sk = :meta AND #status = :sealed",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":meta": {"S": META}, ":sealed": {"S": "sealed"}},
        )
        for page in pages:
            for row in page.get("Items", []):
                meta = parse_meta(row)
                if meta.ref.dataset == dataset and meta.members:
                    yield meta, self.store.members(meta.ref)
