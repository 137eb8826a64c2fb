"""The manifest bucket: manifest parts, the removal log and their index (written only with S3
conditional writes), the listing of a dataset's parts, and the annotation CSVs archive drops
carry.

A part's body is exactly the Encord file; whether it is sealed travels in the object's
metadata so the file stays importable as it is. The bucket has no notifications, so
nothing written here is ever ingested.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.manifests.removals import RemovalPart
from media_ingest.manifests.writer import Conflict, Listed, ManifestIndex, Part, Versioned
from media_ingest.settings import UrlStyle
from media_ingest.urls import object_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404"}


class S3PartStore:
    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, bucket: str, prefix: str = "manifests/", client: S3Client | None = None):
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = client

    def part_key(self, dataset: str, number: int) -> str:
        return f"{self.prefix}{dataset}/part-{number:05d}.json"

    def index_key(self, dataset: str) -> str:
        return f"{self.prefix}{dataset}/index.json"

    def removals_key(self, dataset: str, number: int) -> str:
        return f"{self.prefix}{dataset}/removed-{number:05d}.json"

    def read_removals(self, dataset: str, number: int) -> Versioned[RemovalPart] | None:
        got = self.read(self.removals_key(dataset, number))
        if got is None:
            return None
        return Versioned(RemovalPart.model_validate_json(got[0]), got[1])

    def write_removals(
        self, dataset: str, number: int, part: RemovalPart, etag: str | None
    ) -> None:
        body = part.model_dump_json(indent=1).encode()
        self._write(self.removals_key(dataset, number), body, etag, {})

    def read_part(self, dataset: str, number: int) -> Versioned[Part] | None:
        got = self.read(self.part_key(dataset, number))
        if got is None:
            return None
        body, etag, metadata = got
        return Versioned(Part.from_encord(json.loads(body), metadata.get("sealed") == "true"), etag)

    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> str | None:
        metadata = {"sealed": str(part.sealed).lower(), "entries": str(part.entry_count)}
        return self._write(self.part_key(dataset, number), part.encoded(), etag, metadata)

    def read_index(self, dataset: str) -> Versioned[ManifestIndex] | None:
        got = self.read(self.index_key(dataset))
        if got is None:
            return None
        body, etag, _ = got
        return Versioned(ManifestIndex.model_validate_json(body), etag)

    def write_index(self, dataset: str, index: ManifestIndex, etag: str | None) -> None:
        self._write(self.index_key(dataset), index.model_dump_json(indent=1).encode(), etag, {})

    def list_parts(self, dataset: str, after: int = 0) -> list[Listed]:
        """The dataset's parts numbered above `after` (one call per 1,000 parts)."""
        prefix = f"{self.prefix}{dataset}/part-"
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if after > 0:
            params["StartAfter"] = self.part_key(dataset, after)
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(**params):
            for obj in page.get("Contents", []):
                number = obj["Key"].removeprefix(prefix).removesuffix(".json")
                if number.isdigit():
                    found.append(Listed(int(number), obj["LastModified"]))
        return found

    def read(self, key: str) -> tuple[bytes, str, dict[str, str]] | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        return response["Body"].read(), response["ETag"], response.get("Metadata", {})

    def _write(
        self, key: str, body: bytes, etag: str | None, metadata: dict[str, str]
    ) -> str | None:
        condition: dict[str, Any] = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                Metadata=metadata,
                **condition,
            )
        except ClientError as exc:
            if error_code(exc) in _CONFLICT:
                raise Conflict(key) from exc
            raise
        return response.get("ETag")


class S3AnnotationStore:
    """Validated annotation CSVs beside the manifests that link them (archive drops)."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(
        self,
        bucket: str,
        prefix: str,
        region: str,
        style: UrlStyle,
        client: S3Client | None = None,
    ) -> None:
        self.bucket, self.prefix, self.region, self.style = bucket, prefix, region, style
        self.s3 = client

    def put(self, path: str, data: bytes) -> str:
        key = self.prefix + path
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="text/csv")
        return object_url(self.bucket, key, self.region, self.style)
