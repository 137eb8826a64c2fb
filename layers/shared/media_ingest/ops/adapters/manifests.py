"""The manifest bucket as operators read it: parts' bytes exactly as stored (export), and
every part of every dataset with its state (the `manifests` command). Never on the ingest
path; writes stay with adapters/manifests.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from media_ingest.adapters.clients import ClientSlot
from media_ingest.adapters.manifests import S3PartStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class PartRow(BaseModel):
    dataset: str
    number: int
    key: str
    entries: int
    bytes: int
    sealed: bool


class ManifestFiles:
    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, bucket: str, prefix: str = "manifests/", client: S3Client | None = None):
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = client
        self.store = S3PartStore(bucket, prefix, client)

    def part_body(self, dataset: str, number: int) -> bytes | None:
        """A part's bytes exactly as stored (the Encord file), for copying it out."""
        return self._body(self.store.part_key(dataset, number))

    def index_body(self, dataset: str) -> bytes | None:
        return self._body(self.store.index_key(dataset))

    def removals_body(self, dataset: str, number: int) -> bytes | None:
        """A removal-log part's bytes as stored (deleted URLs, for an importer)."""
        return self._body(self.store.removals_key(dataset, number))

    def part_numbers(self, dataset: str) -> list[int]:
        """Every part of the dataset in the bucket, in number order."""
        return sorted(p.number for p in self.store.list_parts(dataset))

    def _body(self, key: str) -> bytes | None:
        got = self.store.read(key)
        return got[0] if got else None

    def parts(self) -> list[PartRow]:
        """Every part of every dataset, from the bucket listing (the index may lag on the
        open part), with the entries and state its metadata records."""
        rows = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            for obj in page.get("Contents", []):
                dataset, _, name = obj["Key"].removeprefix(self.prefix).rpartition("/")
                if not (name.startswith("part-") and name.endswith(".json")):
                    continue
                number = int(name[5:-5])
                head: dict[str, Any] = dict(self.s3.head_object(Bucket=self.bucket, Key=obj["Key"]))
                metadata = head.get("Metadata", {})
                rows.append(
                    PartRow(
                        dataset=dataset,
                        number=number,
                        key=self.store.part_key(dataset, number),
                        entries=int(metadata.get("entries", 0)),
                        bytes=int(obj["Size"]),
                        sealed=metadata.get("sealed") == "true",
                    )
                )
        return sorted(rows, key=lambda r: (r.dataset, r.number))
