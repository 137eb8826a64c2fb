"""Objects with S3's checksums, in memory (for content identity), and CRC32 forgery.

`forge_crc32` appends four bytes that give any data a chosen CRC32: two different files of
the same size and the same CRC32, the collision a 32-bit checksum cannot tell apart.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass, field

from media_ingest.content import ContentId, HeadChecksums
from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import ObjectEvent
from media_ingest.ingest.identity import Holder
from tests.support.items import event


def _table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


def forge_crc32(data: bytes, target: int) -> bytes:
    """`data` and four more bytes whose CRC32 is `target` (the register run backwards: the
    last four table indexes are fixed by the target alone, the bytes then by `data`)."""
    table = _table()
    by_top = {entry >> 24: index for index, entry in enumerate(table)}
    register = target ^ 0xFFFFFFFF
    indexes = []
    for _ in range(4):
        index = by_top[register >> 24]
        indexes.append(index)
        register = ((register ^ table[index]) << 8) & 0xFFFFFFFF
    register = zlib.crc32(data) ^ 0xFFFFFFFF
    tail = bytearray()
    for index in reversed(indexes):
        tail.append((register ^ index) & 0xFF)
        register = (register >> 8) ^ table[index]
    forged = data + bytes(tail)
    assert zlib.crc32(forged) == target
    return forged


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass
class Stored:
    data: bytes
    etag: str
    checksums: dict[str, str]
    checksum_type: str = "FULL_OBJECT"


@dataclass
class MemoryObjects:
    """Objects as S3 keeps them: a single PUT has an MD5 ETag and (boto3's default) a CRC32;
    a multipart upload an `-N` ETag and a FULL_OBJECT CRC32, or a COMPOSITE one."""

    objects: dict[tuple[str, str], Stored] = field(default_factory=dict)
    hashed: list[tuple[str, str]] = field(default_factory=list)

    def put(self, bucket: str, key: str, data: bytes, how: str = "single") -> str:
        md5 = hashlib.md5(data).hexdigest()
        if how == "single":
            stored = Stored(data, md5, {"ChecksumCRC32": crc32_b64(data)})
        elif how == "multipart":
            stored = Stored(data, md5[:32] + "-2", {"ChecksumCRC32": crc32_b64(data)})
        elif how == "composite":
            stored = Stored(data, md5[:32] + "-2", {"ChecksumCRC32": "AAAAAA==-2"}, "COMPOSITE")
        else:  # "none": an old object, MD5 ETag only
            stored = Stored(data, md5, {})
        self.objects[(bucket, key)] = stored
        return stored.etag

    def checksums(self, event: ObjectEvent) -> HeadChecksums:
        stored = self.objects.get((event.bucket, event.key))
        if stored is None:
            raise MediaError(ErrorCode.OBJECT_NOT_FOUND, "gone")
        return HeadChecksums(
            size=len(stored.data),
            etag=f'"{stored.etag}"',
            checksums=stored.checksums,
            checksum_type=stored.checksum_type,
        )

    def sha256(self, bucket: str, key: str, etag: str) -> tuple[str, int] | None:
        stored = self.objects.get((bucket, key))
        if stored is None or stored.etag != etag:
            return None
        self.hashed.append((bucket, key))
        return sha256_b64(stored.data), len(stored.data)

    def head(self, bucket: str, key: str) -> tuple[int, str] | None:
        stored = self.objects.get((bucket, key))
        return (len(stored.data), stored.etag) if stored else None

    def event(self, bucket: str, key: str, sequencer: str = "01") -> ObjectEvent:
        stored = self.objects[(bucket, key)]
        made = event(key, sequencer=sequencer, bucket=bucket, size=len(stored.data))
        return made.model_copy(update={"etag": stored.etag})


class MemoryClaims:
    """Content claims with the catalog table's conditions (first claimant wins)."""

    def __init__(self) -> None:
        self.held: dict[str, Holder] = {}

    def claim(self, cid: ContentId, holder: Holder) -> Holder:
        return self.held.setdefault(cid.key, holder)

    def take_over(self, cid: ContentId, stale: Holder, holder: Holder) -> bool:
        if not self.held[cid.key].same_url(stale):
            return False
        self.held[cid.key] = holder
        return True
