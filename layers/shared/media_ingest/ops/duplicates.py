"""`duplicates`: the content groups of the catalog, objects holding the same bytes under
different keys (or in different datasets: the clip in both the training and the test split).

Two live items are one group when they share a strong identity (content.py: a checksum of 64
bits or more, a single-part MD5, or a SHA-256 streamed to confirm a weak match), or when the
ingest path decided one is a duplicate of the other. A shared CRC32 alone never groups them.
Copies skipped by SkipDuplicateDatasets join the group of the original they name. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from media_ingest.content import BITS, ContentId, ContentIdentity
from media_ingest.records import CatalogItem, OutcomeMark


class Member(BaseModel):
    dataset: str
    object_url: str
    key: str
    registered: bool  # False: skipped as a copy (SkipDuplicateDatasets)
    original: bool = False


class ContentGroup(BaseModel):
    identity: str  # the group's strongest id: algorithm:value:size
    size: int
    members: list[Member]

    @property
    def datasets(self) -> list[str]:
        return sorted({m.dataset for m in self.members})


class _Groups:
    """Union-find over object URLs."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, url: str) -> str:
        self.parent.setdefault(url, url)
        while self.parent[url] != url:
            self.parent[url] = self.parent[self.parent[url]]
            url = self.parent[url]
        return url

    def join(self, one: str, two: str) -> None:
        self.parent[self.find(one)] = self.find(two)


def _strongest(ids: Iterable[ContentId]) -> ContentId | None:
    return max(ids, key=lambda i: BITS[i.algorithm], default=None)


def content_groups(
    items: Iterable[CatalogItem], skipped: Iterable[OutcomeMark] = (), dataset: str | None = None
) -> list[ContentGroup]:
    """Groups of two or more objects with the same bytes, largest first; with `dataset`,
    only groups with a member in it (all their members shown)."""
    live = {i.object_url: i for i in items if i.live and i.content is not None and i.content.usable}
    groups = _joined(live.values())
    members: dict[str, list[Member]] = {}
    first: dict[str, str] = {}
    for item in sorted(live.values(), key=lambda i: i.registered_at):
        root = groups.find(item.object_url)
        first.setdefault(root, item.object_url)
        members.setdefault(root, []).append(
            Member(dataset=item.dataset, object_url=item.object_url, key=item.key, registered=True)
        )
    for mark in skipped:
        if mark.duplicate_of in live:
            members.setdefault(groups.find(mark.duplicate_of), []).append(
                Member(
                    dataset=mark.dataset, object_url=mark.object_url, key=mark.key, registered=False
                )
            )
    found = [
        _group(group, first[root], live)
        for root, group in members.items()
        if len(group) > 1 and (dataset is None or dataset in {m.dataset for m in group})
    ]
    return sorted(found, key=lambda g: (-len(g.members), g.identity))


def _joined(items: Iterable[CatalogItem]) -> _Groups:
    """Items joined by a shared strong id, and to the original the ingest path named."""
    groups = _Groups()
    holders: dict[str, str] = {}
    for item in items:
        content = item.content
        if content is None:
            continue
        groups.find(item.object_url)
        for cid in content.ids:
            if cid.strong:
                groups.join(item.object_url, holders.setdefault(cid.key, item.object_url))
        if content.duplicate_of:
            groups.join(item.object_url, content.duplicate_of)
    return groups


def _group(members: list[Member], original: str, live: dict[str, CatalogItem]) -> ContentGroup:
    for member in members:
        member.original = member.object_url == original
    ids = [
        cid
        for m in members
        if m.registered
        for cid in (live[m.object_url].content or ContentIdentity(size=0)).ids
    ]
    strongest = _strongest(i for i in ids if i.strong) or _strongest(ids)
    assert strongest is not None  # every member has a usable id
    return ContentGroup(identity=strongest.key, size=strongest.size, members=members)
