"""The catalog table (DynamoDB) as functions use it: conditional puts of items and failure
records, and the sink's batched reads of the items it applies changes for.

Single table, hash key `pk` only. Items: `item#<sha256(dataset, url)>` (URLs can exceed
the 2 KB key limit); failures: `failure#<sha256(event id)>`; annotation links the extract
function recorded for a member it writes: `links#<sha256(bucket, key, archive version)>`.
Powertools' idempotency records (the outcome ledger) share the table under their own keys.
Each record keeps its model's JSON in `doc`, so readers never reassemble attributes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.ingest.registration import WriteResult
from media_ingest.media import AnnotationLinks
from media_ingest.records import CatalogItem, FailureRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCER_WIDTH = 64
BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit


def item_pk(dataset: str, url: str) -> str:
    return "item#" + hashlib.sha256(f"{dataset}\n{url}".encode()).hexdigest()


def failure_pk(event_id: str) -> str:
    return "failure#" + hashlib.sha256(event_id.encode()).hexdigest()


def links_pk(bucket: str, key: str, source: str) -> str:
    return "links#" + hashlib.sha256(f"{bucket}\n{key}\n{source}".encode()).hexdigest()


class DynamoCatalog:
    """The ingest path's writes: conditional puts of items, failure records.

    What operators read (scans, batched key checks) is ops/adapters/catalog.py."""

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
            return WriteResult(written=False, previous=parse_item(found) if found else None)
        old = response.get("Attributes")
        return WriteResult(written=True, previous=parse_item(old) if old else None)

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
                    "ProjectionExpression": "pk, doc",
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


def parse_item(attributes: dict[str, Any]) -> CatalogItem:
    return CatalogItem.model_validate_json(attributes["doc"]["S"])
