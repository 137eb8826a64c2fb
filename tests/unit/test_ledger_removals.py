"""Issue 12's per-URL state beside issue 14's ledger: a deletion, and a registration after
one, keep exactly one recorded outcome per event (docs/architecture.md, "One event, one
outcome": a removed item never carries an outcome).

On moto (the DynamoDB catalog's conditions and attributes) and through the ingestor over the
in-memory fakes (redeliveries replay the deletion's outcome).
"""

from __future__ import annotations

import json
from typing import Any

from media_ingest.adapters.catalog import DynamoCatalog, item_pk, outcome_pk
from media_ingest.events import Deletion, ObjectEvent, parse_body
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.ingest.ingestor import Ingestor
from media_ingest.ingest.registration import RemoveStatus
from media_ingest.media import ImageInfo, MediaInfo, MediaKind
from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.records import OutcomeKind, OutcomeMark, Removal, utcnow
from media_ingest.routing import Router
from media_ingest.settings import Settings
from tests.support.events import s3_body
from tests.support.fakes import MemoryCatalog, MemoryFailureQueue
from tests.support.items import image_item, video_item
from tests.unit.conftest import TABLE


def deleted_mark(url: str, key: str, event_id: str) -> OutcomeMark:
    return OutcomeMark(
        kind=OutcomeKind.DELETED,
        dataset="main",
        object_url=url,
        bucket="drop",
        key=key,
        etag="",
        event_id=event_id,
    )


def removal(event_id: str) -> Removal:
    return Removal(event_id=event_id, deletion=Deletion.DELETE, deleted_at=utcnow())


def row(table: Any, pk: str) -> dict[str, Any] | None:
    return table.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")  # type: ignore[no-any-return]


def test_a_removal_moves_the_carried_outcome_and_a_re_upload_keeps_both_events(
    table: Any,
) -> None:
    catalog, reader = DynamoCatalog(TABLE, table), CatalogReader(TABLE, table)
    first = video_item("cams/a.mp4", sequencer="01")
    assert catalog.put_new(first).written
    pk = item_pk("main", first.object_url)
    assert row(table, pk)["outcome"]["S"] == "registered"  # type: ignore[index]

    mark = deleted_mark(first.object_url, first.key, "del-1")
    removed = catalog.remove(mark, removal("del-1"), "02")
    assert removed.status is RemoveStatus.REMOVED
    stored = row(table, pk)
    assert stored is not None and "removed_at" in stored and "outcome" not in stored
    moved = row(table, outcome_pk(first.event_id))
    assert moved is not None and json.loads(moved["doc"]["S"])["kind"] == "registered"
    again = catalog.remove(mark, removal("del-1"), "02")
    assert again.status is RemoveStatus.ALREADY  # a retry changes nothing

    second = video_item("cams/a.mp4", sequencer="03")
    written = catalog.put_new(second)
    assert written.written and written.previous is not None and written.previous.removed
    outcomes = {o.event_id: o for o in reader.ledger()[0]}
    assert set(outcomes) == {first.event_id, second.event_id}
    assert {o.kind for o in outcomes.values()} == {OutcomeKind.REGISTERED}
    restored = outcomes[second.event_id]
    assert (restored.detail or "").startswith("registered again after its deletion")
    assert restored.url_change is not None and restored.url_change.change == "restored"
    replay = catalog.recorded(second.event_id, "main", second.object_url)
    assert replay is not None and replay.outcome.url_change == restored.url_change
    assert [i.event_id for i in reader.items()] == [second.event_id]


def test_a_deletion_older_than_the_registered_write_leaves_its_outcome_carried(
    table: Any,
) -> None:
    catalog = DynamoCatalog(TABLE, table)
    item = video_item("cams/b.mp4", sequencer="05")
    catalog.put_new(item)
    mark = deleted_mark(item.object_url, item.key, "del-old")
    assert catalog.remove(mark, removal("del-old"), "04").status is RemoveStatus.NEWER
    stored = row(table, item_pk("main", item.object_url))
    assert stored is not None and stored["outcome"]["S"] == "registered"
    assert "removed_at" not in stored
    assert row(table, outcome_pk(item.event_id)) is None  # nothing moved: nothing replaced


def test_a_deletion_of_a_failed_key_settles_it_with_a_deleted_mark(table: Any) -> None:
    catalog = DynamoCatalog(TABLE, table)
    url = "https://drop.s3.us-east-1.amazonaws.com/bad.png"
    failed = deleted_mark(url, "bad.png", "up-1").model_copy(update={"kind": OutcomeKind.FAILED})
    assert catalog.mark(failed)
    result = catalog.remove(deleted_mark(url, "bad.png", "del-2"), removal("del-2"), "")
    assert result.status is RemoveStatus.UNREGISTERED
    assert result.replaced is not None and result.replaced.kind is OutcomeKind.FAILED
    stored = row(table, item_pk("main", url))
    assert stored is not None and stored["type"]["S"] == "mark" and stored["kind"]["S"] == "deleted"
    # A registration may take the mark's place: it is state, not the ledger.
    assert catalog.put_new(image_item("bad.png")).written


def ingestor(catalog: MemoryCatalog) -> Ingestor:
    settings = Settings(
        CATALOG_TABLE="catalog",
        MANIFEST_BUCKET="manifests",
        FAILURE_QUEUE_URL="failures",
        DEFAULT_DATASET="main",
    )
    return Ingestor(
        settings=settings,
        router=Router.of(settings),
        prober=Probed(),
        catalog=catalog,
        failures=FailureRecorder(catalog, MemoryFailureQueue()),
    )


class Probed:
    def probe(self, event: ObjectEvent) -> MediaInfo:
        return MediaInfo(
            kind=MediaKind.IMAGE,
            mime_type="image/png",
            container="png",
            size=1000,
            image=ImageInfo(width=4, height=3, format="png"),
        )


def test_a_deletion_is_one_outcome_record_and_its_redeliveries_replay_it() -> None:
    catalog = MemoryCatalog()
    ingest = ingestor(catalog).ingest
    [created] = parse_body(s3_body("drop", "a/x.png", sequencer="01"))
    [deleted] = parse_body(
        s3_body("drop", "a/x.png", sequencer="02", event_name="ObjectRemoved:Delete", etag="")
    )
    assert ingest(created).kind is OutcomeKind.REGISTERED
    first = ingest(deleted)
    assert first.kind is OutcomeKind.DELETED and first.url_change is not None
    assert set(catalog.outcomes) == {created.event_id, deleted.event_id}  # the carried one moved
    replayed = ingest(deleted, attempt=2)  # a redelivery: the recorded outcome, as it was
    assert replayed.processed_at == first.processed_at and replayed.url_change == first.url_change
    assert replayed.item is not None and replayed.item.removed is not None  # the sinks hear again
    twice = ingest(deleted)  # S3's duplicate message (first receive): decided earlier, same moment
    assert twice.url_change == first.url_change
    assert first.item is not None and first.item.removed is not None
    assert twice.processed_at == first.item.removed.removed_at
    assert [o.kind for o in catalog.ledger()] == [OutcomeKind.REGISTERED, OutcomeKind.DELETED]
