"""Listing the objects already in a bucket (backfill, reconcile): S3 ListObjectsV2, or an S3
Inventory report, and finding a bucket's latest report.

Both yield pages in a stable order with a resumable position after every object. An
inventory (CSV format) lists buckets of millions of objects without a million-call listing;
its `creationTimestamp` is when it saw the bucket (reconcile compares with that moment).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from media_ingest.adapters import clients
from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.listing import SSE_C, ListedObject, Page, Position, Source

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Lister:
    """ListObjectsV2 under the source prefix, in key order, resumed with StartAfter."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, source: Source, client: S3Client | None = None) -> None:
        self.source = source
        self.s3 = client

    def _listing(self, after_key: str | None) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"Bucket": self.source.bucket, "Prefix": self.source.prefix}
        if after_key:
            params["StartAfter"] = after_key
        for page in self.s3.get_paginator("list_objects_v2").paginate(**params):
            yield list(page.get("Contents", []))  # type: ignore[arg-type]

    def pages(self, position: Position) -> Iterator[Page]:
        for contents in self._listing(position.after_key):
            objects = [
                ListedObject(
                    bucket=self.source.bucket,
                    key=o["Key"],
                    size=o["Size"],
                    etag=o.get("ETag", "").strip('"'),
                    last_modified=o["LastModified"],
                )
                for o in contents
            ]
            if objects:
                yield Page(objects=objects, positions=[Position(after_key=o.key) for o in objects])

    def count(self) -> int:
        return sum(len(contents) for contents in self._listing(None))

    def first_encryption(self) -> str | None:
        """How the first object under the prefix is encrypted (`AES256`, `aws:kms`, SSE_C),
        as the operator's HeadObject sees it; None for an empty prefix."""
        listed = self.s3.list_objects_v2(
            Bucket=self.source.bucket, Prefix=self.source.prefix, MaxKeys=1
        )
        first = listed.get("Contents", [])
        if not first:
            return None
        try:
            head = self.s3.head_object(Bucket=self.source.bucket, Key=first[0]["Key"])
        except ClientError as exc:
            # A HEAD without the customer's key answers 400 for an SSE-C object.
            if error_code(exc) in ("400", "InvalidRequest", "BadRequest"):
                return SSE_C
            raise
        if head.get("SSECustomerAlgorithm"):
            return SSE_C
        return str(head.get("ServerSideEncryption", ""))


class InventoryError(ValueError):
    pass


class InventoryLister:
    """The objects an S3 Inventory report lists (manifest.json + gzipped CSV files).

    Keys in inventory CSVs are URL-encoded. The report must include Size; ETag and
    LastModifiedDate are used when present.
    """

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(
        self, source: Source | None, manifest: Source, client: S3Client | None = None
    ) -> None:
        self.s3 = client
        doc = json.loads(self._read(manifest.bucket, manifest.prefix))
        # No source: the whole bucket the report describes (the scheduled reconcile).
        self.source = source or Source(bucket=str(doc.get("sourceBucket", "")))
        if doc.get("fileFormat", "CSV").upper() != "CSV":
            raise InventoryError(f"inventory format {doc.get('fileFormat')} not supported: use CSV")
        self.columns = [c.strip() for c in doc.get("fileSchema", "").split(",")]
        for needed in ("Bucket", "Key", "Size"):
            if needed not in self.columns:
                raise InventoryError(f"inventory fileSchema lacks {needed}: {self.columns}")
        self.files_bucket = doc.get("destinationBucket", "").removeprefix("arn:aws:s3:::")
        self.files = [f["key"] for f in doc.get("files", [])]
        created = doc.get("creationTimestamp")
        # When the report saw the bucket (epoch milliseconds); None: not stated.
        self.created_at = datetime.fromtimestamp(int(created) / 1000, tz=UTC) if created else None

    def _read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _rows(self, number: int) -> list[ListedObject]:
        data = gzip.decompress(self._read(self.files_bucket, self.files[number]))
        rows = []
        for values in csv.reader(io.StringIO(data.decode())):
            row = dict(zip(self.columns, values, strict=False))
            key = unquote_plus(row["Key"])
            if row["Bucket"] != self.source.bucket or not key.startswith(self.source.prefix):
                continue
            if (
                row.get("IsLatest", "true").lower() == "false"
                or row.get("IsDeleteMarker") == "true"
            ):
                continue
            modified = row.get("LastModifiedDate")
            rows.append(
                ListedObject(
                    bucket=row["Bucket"],
                    key=key,
                    size=int(row["Size"] or 0),
                    etag=row.get("ETag", ""),
                    last_modified=datetime.fromisoformat(modified) if modified else _EPOCH,
                )
            )
        return rows

    def pages(self, position: Position) -> Iterator[Page]:
        for number in range(position.inventory_file, len(self.files)):
            skip = position.inventory_row if number == position.inventory_file else 0
            objects = self._rows(number)[skip:]
            if objects:
                yield Page(
                    objects=objects,
                    positions=[
                        Position(inventory_file=number, inventory_row=skip + i + 1)
                        for i in range(len(objects))
                    ],
                )

    def count(self) -> int:
        return sum(len(self._rows(n)) for n in range(len(self.files)))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_manifest(location: Source, client: S3Client | None = None) -> Source | None:
    """The newest `manifest.json` under an inventory destination (`<prefix>/<source bucket>/
    <configuration id>/`): its dated folders sort by time. None when there is none yet."""
    s3: S3Client = client or clients.client("s3")
    newest: str | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket, Prefix=location.prefix
    ):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/manifest.json") and "/hive/" not in key:
                newest = max(newest or key, key)
    return Source(bucket=location.bucket, prefix=newest) if newest else None
