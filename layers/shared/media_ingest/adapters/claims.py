"""Content claims in the catalog table (DynamoDB): which object URL first registered some
bytes, one row per content identity (`content#<algorithm>:<value>:<size>`).

A claim is made with one conditional put (the first claimant wins, whatever the
concurrency) and handed over with one conditional put (only from the stale holder that was
read). Claims are never deleted: a stale one is taken over by the next object with the same
bytes. Never decides what a claim means: ingest/identity.py does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.content import ContentId
from media_ingest.ingest.identity import Holder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def claim_pk(cid: ContentId) -> str:
    return "content#" + cid.key


class DynamoClaims:
    ddb: ClientSlot[DynamoDBClient] = ClientSlot("dynamodb")

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.ddb = client

    def claim(self, cid: ContentId, holder: Holder) -> Holder:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=_attributes(cid, holder),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            found: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            return Holder.model_validate_json(found["doc"]["S"])
        return holder

    def take_over(self, cid: ContentId, stale: Holder, holder: Holder) -> bool:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=_attributes(cid, holder),
                ConditionExpression="#u = :u AND dataset = :d",
                ExpressionAttributeNames={"#u": "object_url"},
                ExpressionAttributeValues={
                    ":u": {"S": stale.object_url},
                    ":d": {"S": stale.dataset},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True


def _attributes(cid: ContentId, holder: Holder) -> dict[str, Any]:
    return {
        "pk": {"S": claim_pk(cid)},
        "type": {"S": "claim"},
        "dataset": {"S": holder.dataset},
        "object_url": {"S": holder.object_url},
        "doc": {"S": holder.model_dump_json()},
    }
