"""Content identity: which ids an object has, what two objects' ids say, and the claims
that find the first registrant of the same bytes (ingest/identity.py over fakes)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from media_ingest.content import (
    BITS,
    Algorithm,
    ContentId,
    HeadChecksums,
    Verdict,
    compare,
    ids_of,
)
from media_ingest.ingest.identity import CLAIM_LEASE, ContentIdentifier, Holder
from media_ingest.records import Removal, utcnow
from tests.support.content import MemoryClaims, MemoryObjects, forge_crc32
from tests.support.fakes import MemoryCatalog
from tests.support.items import video_item

MD5 = "5d41402abc4b2a76b9719d911017c592"


def cid(algorithm: Algorithm, value: str, size: int = 5) -> ContentId:
    return ContentId(algorithm=algorithm, value=value, size=size)


def test_a_single_put_has_its_full_object_checksum_and_its_md5() -> None:
    head = HeadChecksums(
        size=5,
        etag=f'"{MD5}"',
        checksums={"ChecksumCRC32": "NhCmhg=="},
        checksum_type="FULL_OBJECT",
    )
    assert [i.algorithm for i in ids_of(head)] == [Algorithm.MD5, Algorithm.CRC32]


def test_a_multipart_etag_a_composite_checksum_and_sse_kms_give_no_id() -> None:
    composite = HeadChecksums(
        size=5,
        etag='"8497588222be388d8f2bc641963afa2c-3"',
        checksums={"ChecksumCRC32": "e7OQWg==-3"},
        checksum_type="COMPOSITE",
    )
    assert ids_of(composite) == ()
    kms = HeadChecksums(size=5, etag=MD5, encryption="aws:kms")
    customer = HeadChecksums(size=5, etag=MD5, customer_key=True)
    assert ids_of(kms) == ids_of(customer) == ()
    full = HeadChecksums(
        size=5,
        etag='"8497588222be388d8f2bc641963afa2c-3"',
        checksums={"ChecksumCRC64NVME": "/mMAfHnU7v4="},
        checksum_type="FULL_OBJECT",
    )
    assert [i.algorithm for i in ids_of(full)] == [Algorithm.CRC64NVME]


def test_strong_decides_weak_nominates_and_disagreement_wins() -> None:
    md5, crc = cid(Algorithm.MD5, MD5), cid(Algorithm.CRC32, "AAAAAA==")
    assert compare([md5, crc], [md5]) is Verdict.SAME
    assert compare([crc], [crc]) is Verdict.CANDIDATE
    assert compare([md5, crc], [cid(Algorithm.MD5, "0" * 32), crc]) is Verdict.DIFFERENT
    assert compare([crc], [cid(Algorithm.CRC32, "AAAAAA==", size=6)]) is Verdict.DIFFERENT
    assert compare([md5], [crc]) is Verdict.UNKNOWN


def test_the_collision_arithmetic_the_docstring_gives() -> None:
    pairs = 1_000_000 * 999_999 / 2
    assert round(pairs / 2 ** BITS[Algorithm.CRC32]) == 116
    assert pairs / 2 ** BITS[Algorithm.CRC64NVME] == pytest.approx(2.7e-8, rel=0.02)
    assert not cid(Algorithm.CRC32C, "x").strong and cid(Algorithm.CRC64NVME, "x").strong


# -- claims ------------------------------------------------------------------------------
class World:
    def __init__(self) -> None:
        self.objects = MemoryObjects()
        self.claims = MemoryClaims()
        self.catalog = MemoryCatalog()
        self.identifier = ContentIdentifier(
            reader=self.objects, claims=self.claims, items=self.catalog, hasher=self.objects
        )

    def register(self, key: str, data: bytes, how: str = "single") -> str | None:
        """Put the object, identify it, and register it as the ingestor would."""
        self.objects.put("drop", key, data, how)
        event = self.objects.event("drop", key)
        item = video_item(key)
        identity = self.identifier.identify(event, item.dataset, item.object_url)
        self.catalog.put_new(
            item.model_copy(update={"content": identity, "etag": event.etag, "size": len(data)})
        )
        return identity.duplicate_of


def url(key: str) -> str:
    return video_item(key).object_url


def test_the_same_bytes_under_three_keys_point_at_the_first() -> None:
    world, data = World(), os.urandom(4096)
    assert world.register("a.mp4", data) is None
    assert world.register("b.mp4", data) == url("a.mp4")  # MD5: decided, nothing read
    assert world.objects.hashed == []
    # A multipart copy shares only the CRC32: confirmed by hashing both objects once.
    assert world.register("c.mp4", data, how="multipart") == url("a.mp4")
    assert sorted(world.objects.hashed) == [("drop", "a.mp4"), ("drop", "c.mp4")]


def test_a_crc32_collision_is_refuted_by_the_streamed_hash() -> None:
    world = World()
    one, two = forge_crc32(os.urandom(2000), 0xC0FFEE), forge_crc32(os.urandom(2000), 0xC0FFEE)
    assert len(one) == len(two) and one != two
    assert world.register("one.mp4", one, how="multipart") is None
    assert world.register("two.mp4", two, how="multipart") is None
    assert len(world.objects.hashed) == 2
    # Single PUTs of the same pair differ by their MD5: refuted without reading a byte.
    puts = World()
    assert puts.register("one.mp4", one) is None
    assert puts.register("two.mp4", two) is None
    assert puts.objects.hashed == []


def test_objects_without_a_usable_checksum_are_never_duplicates() -> None:
    world, data = World(), os.urandom(100)
    assert world.register("a.mp4", data, how="composite") is None
    assert world.register("b.mp4", data, how="composite") is None
    assert world.claims.held == {}


def test_a_deleted_original_does_not_capture_new_copies() -> None:
    world, data = World(), os.urandom(100)
    world.register("a.mp4", data)
    item = world.catalog.items[("main", url("a.mp4"))]
    removal = Removal(event_id="d", deletion="delete", deleted_at=utcnow())
    world.catalog.items[("main", url("a.mp4"))] = item.model_copy(update={"removed": removal})
    assert world.register("b.mp4", data) is None
    assert world.register("c.mp4", data) == url("b.mp4")


def test_a_copy_of_a_copy_names_the_first_registrant() -> None:
    world, data = World(), os.urandom(100)
    world.register("a.mp4", data, how="none")  # an old object: MD5 only
    assert world.register("b.mp4", data) == url("a.mp4")  # MD5 and CRC32
    # Shares only the CRC32 with b (which holds that claim): still a's group.
    assert world.register("c.mp4", data, how="multipart") == url("a.mp4")


def test_a_claimant_still_being_registered_counts_until_its_lease_ends() -> None:
    world, data = World(), os.urandom(100)
    world.objects.put("drop", "a.mp4", data)
    first = world.objects.event("drop", "a.mp4")
    world.identifier.identify(first, "main", url("a.mp4"))  # claimed, not registered yet
    assert world.register("b.mp4", data) == url("a.mp4")
    for key, holder in list(world.claims.held.items()):
        if holder.object_url == url("a.mp4"):
            old = holder.claimed_at - CLAIM_LEASE - timedelta(seconds=1)
            world.claims.held[key] = holder.model_copy(update={"claimed_at": old})
    assert world.register("c.mp4", data) is None  # a's claim expired: c takes it over


def test_holders_compare_by_url_only() -> None:
    base = {"bucket": "b", "key": "k", "etag": "e", "ids": (), "claimed_at": utcnow()}
    one = Holder(dataset="d", object_url="u", **base)
    assert one.same_url(one.model_copy(update={"etag": "other"}))
