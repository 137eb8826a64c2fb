"""What `attach` did to each bucket, kept in the stack's catalog table (`attach#<bucket>`),
so that `detach` undoes exactly that. Operators' rows: never read on the ingest path, and
typed, so the ledger scans leave them out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_ingest.adapters.clients import ClientSlot
from media_ingest.ops.attach import AttachRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoAttachments:
    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def get(self, bucket: str) -> AttachRecord | None:
        got = self.ddb.get_item(
            TableName=self.table, Key={"pk": {"S": f"attach#{bucket}"}}, ConsistentRead=True
        )
        row = got.get("Item")
        return AttachRecord.model_validate_json(row["doc"]["S"]) if row else None

    def put(self, record: AttachRecord) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"attach#{record.bucket}"},
                "type": {"S": "attachment"},
                "doc": {"S": record.model_dump_json()},
            },
        )

    def delete(self, bucket: str) -> None:
        self.ddb.delete_item(TableName=self.table, Key={"pk": {"S": f"attach#{bucket}"}})
