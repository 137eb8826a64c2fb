"""Content groups (`media-ingest duplicates`): strong ids and the ingest path's decisions
group objects; a shared CRC32 alone never does; skipped copies join their original."""

from __future__ import annotations

from datetime import timedelta

from media_ingest.content import Algorithm, ContentId, ContentIdentity
from media_ingest.ops.duplicates import content_groups
from media_ingest.records import CatalogItem, OutcomeKind, OutcomeMark, Removal
from tests.support.items import video_item

MD5 = ContentId(algorithm=Algorithm.MD5, value="a" * 32, size=9)
CRC = ContentId(algorithm=Algorithm.CRC32, value="AAAAAA==", size=9)


def item(
    key: str, *ids: ContentId, dataset: str = "main", dup: str | None = None, n: int = 0
) -> CatalogItem:
    made = video_item(key, dataset=dataset)
    return made.model_copy(
        update={
            "content": ContentIdentity(size=9, ids=ids, duplicate_of=dup),
            "registered_at": made.registered_at + timedelta(seconds=n),
        }
    )


def test_strong_ids_and_decisions_group_a_shared_crc_alone_does_not() -> None:
    a = item("a.mp4", MD5, CRC, n=0)
    b = item("b.mp4", MD5, CRC, dataset="test", n=1)
    c = item("c.mp4", CRC, dup=a.object_url, n=2)  # multipart: confirmed by a hash at ingest
    d = item("d.mp4", CRC, n=3)  # the same CRC32 and size, different bytes
    [group] = content_groups([d, c, b, a])
    assert [m.key for m in group.members] == ["a.mp4", "b.mp4", "c.mp4"]
    assert [m.original for m in group.members] == [True, False, False]
    assert group.identity == MD5.key and group.datasets == ["main", "test"]


def test_removed_items_leave_their_group_and_skipped_copies_join_it() -> None:
    a, b = item("a.mp4", MD5), item("b.mp4", MD5, n=1)
    removal = Removal(event_id="d", deletion="delete", deleted_at=a.registered_at)
    assert content_groups([a.model_copy(update={"removed": removal}), b]) == []
    skipped = OutcomeMark(
        kind=OutcomeKind.DUPLICATE,
        dataset="test",
        object_url="https://drop.s3.us-east-1.amazonaws.com/t.mp4",
        bucket="drop",
        key="t.mp4",
        etag="e",
        event_id="x",
        duplicate_of=a.object_url,
    )
    [group] = content_groups([a, b], [skipped], dataset="test")
    assert [(m.key, m.registered) for m in group.members] == [
        ("a.mp4", True),
        ("b.mp4", True),
        ("t.mp4", False),
    ]
    assert content_groups([a, b], [skipped], dataset="other") == []
