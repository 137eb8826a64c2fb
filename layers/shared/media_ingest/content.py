"""Content identity: which bytes an object holds, known without reading them.

S3 already stores what identifies an object's bytes: its full-object checksum (HeadObject
with `ChecksumMode=ENABLED` returns CRC64NVME, SHA-256, SHA-1, CRC32 or CRC32C, with
`ChecksumType` FULL_OBJECT; a COMPOSITE checksum of a multipart upload is a checksum of
part checksums, not of the bytes) and, for an upload in one part that is neither SSE-KMS nor
SSE-C, the MD5 its ETag is. Each of those, with the size, is an identity of the content.

Collision arithmetic, the birthday bound: among n objects of one size, a b-bit checksum gives
about n(n-1)/2 / 2^b chance pairs. For n = 1,000,000: CRC32 or CRC32C (32 bits) about 116
pairs; CRC64NVME (64 bits) about 2.7e-8; MD5 (128 bits) about 1.5e-27; SHA-1 and SHA-256 none
in practice. So a 32-bit checksum only *nominates* a candidate, which a streamed SHA-256 of
both objects confirms (rare, and counted); a checksum of 64 bits or more decides. Two
objects are *different* when they share an algorithm whose values differ, or differ in size.
An object with no usable checksum is never called a duplicate.

Pure: HeadObject's answer in, identities and verdicts out. Owns the algorithm names, their
strength and the comparison; ingest/identity.py owns claiming and confirming.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Algorithm(StrEnum):
    """Values are S3's names (`Checksum<NAME>`); `md5` is a single-part ETag."""

    CRC64NVME = "crc64nvme"
    SHA256 = "sha256"
    SHA1 = "sha1"
    CRC32 = "crc32"
    CRC32C = "crc32c"
    MD5 = "md5"


# Bits of each algorithm: 64 and more decide, fewer only nominate (see the module docstring).
BITS = {
    Algorithm.CRC64NVME: 64,
    Algorithm.SHA256: 256,
    Algorithm.SHA1: 160,
    Algorithm.CRC32: 32,
    Algorithm.CRC32C: 32,
    Algorithm.MD5: 128,
}
STRONG_BITS = 64
# HeadObject's response fields, in the order their ids are claimed (strongest first).
CHECKSUM_FIELDS = {
    "ChecksumSHA256": Algorithm.SHA256,
    "ChecksumSHA1": Algorithm.SHA1,
    "ChecksumCRC64NVME": Algorithm.CRC64NVME,
    "ChecksumCRC32C": Algorithm.CRC32C,
    "ChecksumCRC32": Algorithm.CRC32,
}
# Encryption under which an ETag is not the MD5 of the bytes.
_NOT_MD5_ENCRYPTION = {"aws:kms", "aws:kms:dsse"}
_MD5 = re.compile(r"^[0-9a-f]{32}$")


class ContentId(BaseModel):
    """One identity of an object's bytes: an algorithm, its value, and the size."""

    model_config = ConfigDict(frozen=True)

    algorithm: Algorithm
    value: str
    size: int = Field(ge=0)

    @property
    def strong(self) -> bool:
        return BITS[self.algorithm] >= STRONG_BITS

    @property
    def key(self) -> str:
        return f"{self.algorithm.value}:{self.value}:{self.size}"


class ContentIdentity(BaseModel):
    """What a catalog item knows of its bytes: its ids and, once confirmed, the original."""

    model_config = ConfigDict(frozen=True)

    size: int
    ids: tuple[ContentId, ...] = ()
    # The object URL of the first registered object with the same bytes (None: this one is
    # the first, or the only one, or its bytes cannot be compared).
    duplicate_of: str | None = None

    @property
    def usable(self) -> bool:
        return bool(self.ids)

    def id_for(self, algorithm: Algorithm) -> ContentId | None:
        return next((i for i in self.ids if i.algorithm is algorithm), None)

    def with_ids(self, extra: Iterable[ContentId]) -> ContentIdentity:
        known = {i.algorithm for i in self.ids}
        added = tuple(i for i in extra if i.algorithm not in known)
        return self.model_copy(update={"ids": self.ids + added})


class HeadChecksums(BaseModel):
    """What HeadObject (ChecksumMode=ENABLED) said about one object version."""

    size: int
    etag: str
    checksums: dict[str, str] = Field(default_factory=dict)  # e.g. {"ChecksumCRC32": "..."}
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE
    encryption: str | None = None  # ServerSideEncryption
    customer_key: bool = False  # SSE-C


def ids_of(head: HeadChecksums) -> tuple[ContentId, ...]:
    """The usable identities of one object, strongest first; () when it has none."""
    found: list[ContentId] = []
    if head.checksum_type != "COMPOSITE":
        for field_name, algorithm in CHECKSUM_FIELDS.items():
            value = head.checksums.get(field_name)
            # A value ending in -N is a multipart part-checksum composite, whatever the type.
            if value and "-" not in value:
                found.append(ContentId(algorithm=algorithm, value=value, size=head.size))
    etag = head.etag.strip('"').lower()
    if _MD5.match(etag) and head.encryption not in _NOT_MD5_ENCRYPTION and not head.customer_key:
        found.append(ContentId(algorithm=Algorithm.MD5, value=etag, size=head.size))
    return tuple(sorted(found, key=lambda i: -BITS[i.algorithm]))


class Verdict(StrEnum):
    SAME = "same"  # a shared strong id is equal: the same bytes
    DIFFERENT = "different"  # a shared algorithm differs, or the sizes do
    CANDIDATE = "candidate"  # only weak ids are shared, and equal: confirm by hashing
    UNKNOWN = "unknown"  # nothing comparable


def compare(mine: Iterable[ContentId], theirs: Iterable[ContentId]) -> Verdict:
    """What two objects' ids say about their bytes (any disagreement wins over agreement)."""
    ours = {i.algorithm: i for i in mine}
    other = {i.algorithm: i for i in theirs}
    shared = [a for a in ours if a in other]
    if not shared:
        return Verdict.UNKNOWN
    if any(ours[a] != other[a] for a in shared):
        return Verdict.DIFFERENT
    if any(ours[a].strong for a in shared):
        return Verdict.SAME
    return Verdict.CANDIDATE


def checksum_fields(response: Mapping[str, object]) -> dict[str, str]:
    """The `Checksum*` fields of a HeadObject response (ChecksumType apart)."""
    return {
        name: str(value)
        for name, value in response.items()
        if name in CHECKSUM_FIELDS and isinstance(value, str)
    }
