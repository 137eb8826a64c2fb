"""Same content under another key: whether an object's bytes are already registered.

Each usable identity of the object (content.py: S3's full-object checksum, a single-part
ETag's MD5, with the size) is claimed in the catalog before the object is registered; the
first claimant of some bytes holds the claim, and the claim carries the holder's ids, so a
copy arriving while the holder is still being registered is recognised too. A claim held by
another is compared: a shared strong id decides, a shared weak id (CRC32, CRC32C) only
nominates, and a streamed SHA-256 of both objects confirms or refutes it (counted:
ContentConfirmations, ContentCollisions, ContentBytesHashed). A claim whose holder was
deleted, now holds other bytes, or never registered within `CLAIM_LEASE` is taken over, so
deleted originals never capture new copies. Objects with no usable id are never duplicates.

Over small interfaces (checksums, claims, item reads, a hasher); never creates a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from media_ingest import content
from media_ingest.content import Algorithm, ContentId, ContentIdentity, HeadChecksums, Verdict
from media_ingest.events import ObjectEvent
from media_ingest.observability import logger, metrics
from media_ingest.records import CatalogItem, utcnow

# A claim changing hands under us is read again at most this often, then left alone.
CLAIM_ROUNDS = 3
# A claimant with no catalog item yet is being registered (or retried after a crash: the
# ingest queue's visibility timeout is 18 minutes by default) for at most this long.
CLAIM_LEASE = timedelta(hours=1)


class Holder(BaseModel):
    """Who claimed some bytes, and what identifies them (so they compare without a read)."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    object_url: str
    bucket: str
    key: str
    etag: str
    ids: tuple[ContentId, ...]
    claimed_at: datetime

    def same_url(self, other: Holder) -> bool:
        return (self.dataset, self.object_url) == (other.dataset, other.object_url)


class ChecksumReader(Protocol):
    def checksums(self, event: ObjectEvent) -> HeadChecksums: ...


class Hasher(Protocol):
    def sha256(self, bucket: str, key: str, etag: str) -> tuple[str, int] | None:
        """(base64 SHA-256, bytes read) of that version; None when it is gone."""
        ...


class Claims(Protocol):
    def claim(self, cid: ContentId, holder: Holder) -> Holder:
        """Claim `cid` for `holder` if nobody holds it; return who holds it now."""
        ...

    def take_over(self, cid: ContentId, stale: Holder, holder: Holder) -> bool:
        """Hand the claim from `stale` to `holder`; False if it no longer is `stale`'s."""
        ...


class ItemReader(Protocol):
    def read(self, dataset: str, url: str) -> CatalogItem | None: ...


@dataclass(frozen=True)
class Other:
    """Another object holding a claim on our bytes, and the original of its group."""

    holder: Holder
    original: str


@dataclass
class ContentIdentifier:
    reader: ChecksumReader
    claims: Claims
    items: ItemReader
    hasher: Hasher

    def identify(self, event: ObjectEvent, dataset: str, url: str) -> ContentIdentity:
        """The object's content identity, with `duplicate_of` set when the same bytes are
        already registered under another URL (the URL of its group's first registrant)."""
        head = self.reader.checksums(event)
        identity = ContentIdentity(size=head.size, ids=content.ids_of(head))
        if not identity.usable:
            return identity
        me = Holder(
            dataset=dataset,
            object_url=url,
            bucket=event.bucket,
            key=event.key,
            etag=event.etag or head.etag.strip('"'),
            ids=identity.ids,
            claimed_at=utcnow(),
        )
        others: dict[str, Other] = {}
        for cid in identity.ids:
            other = self._claim(cid, me)
            if other is not None:
                others.setdefault(other.holder.object_url, other)
        for other in others.values():
            verdict, identity = self._compare(event, identity, other.holder)
            if verdict is Verdict.SAME:
                return identity.model_copy(update={"duplicate_of": other.original})
        return identity

    def _claim(self, cid: ContentId, me: Holder) -> Other | None:
        """Another holder of `cid` (and its group's original); None when the claim is ours."""
        for _ in range(CLAIM_ROUNDS):
            holder = self.claims.claim(cid, me)
            if holder.same_url(me):
                return None
            original = self._original(holder, cid)
            if original is not None:
                return Other(holder, original)
            # Its holder was deleted, holds other bytes now, or never registered.
            if self.claims.take_over(cid, holder, me):
                return None
        logger.warning("content claim kept changing hands", extra={"content": cid.key})
        return None

    def _original(self, holder: Holder, cid: ContentId) -> str | None:
        """The URL of the group the live `holder` belongs to; None when it holds no more."""
        item = self.items.read(holder.dataset, holder.object_url)
        if item is None:
            # Being registered right now (or retried after a crash), unless it is too late.
            in_flight = utcnow() - holder.claimed_at < CLAIM_LEASE
            return holder.object_url if in_flight else None
        if not item.live or item.content is None or cid not in item.content.ids:
            return None
        return item.content.duplicate_of or item.object_url

    def _compare(
        self, event: ObjectEvent, mine: ContentIdentity, other: Holder
    ) -> tuple[Verdict, ContentIdentity]:
        verdict = content.compare(mine.ids, other.ids)
        if verdict is not Verdict.CANDIDATE:
            return verdict, mine
        # Only a weak checksum agrees: read both objects once and compare their SHA-256.
        metrics.add_metric(name="ContentConfirmations", unit=MetricUnit.Count, value=1)
        ours = mine.id_for(Algorithm.SHA256) or self._hashed(
            event.bucket, event.key, event.etag, mine.size
        )
        their = next((i for i in other.ids if i.algorithm is Algorithm.SHA256), None)
        their = their or self._hashed(other.bucket, other.key, other.etag, mine.size)
        if ours is not None:
            mine = mine.with_ids([ours])
        if ours is None or their is None:
            return Verdict.UNKNOWN, mine
        if ours == their:
            return Verdict.SAME, mine
        metrics.add_metric(name="ContentCollisions", unit=MetricUnit.Count, value=1)
        logger.info(
            "weak checksum collision: same checksum and size, different bytes",
            extra={"other": other.object_url},
        )
        return Verdict.DIFFERENT, mine

    def _hashed(self, bucket: str, key: str, etag: str, size: int) -> ContentId | None:
        got = self.hasher.sha256(bucket, key, etag)
        if got is None:
            return None
        return ContentId(algorithm=Algorithm.SHA256, value=got[0], size=size)
