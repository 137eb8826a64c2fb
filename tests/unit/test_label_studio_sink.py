"""The Label Studio sink through its own entry points (LabelStudioSink.apply, SinkRunner.run)
on an in-memory Label Studio with the server's rules (tests/support/fakes.MemoryTaskStore).
The live server is tests/integration/test_label_studio.py's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from media_ingest.errors import ErrorCode, Stage, TransientError
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.groups.rules import GroupKind, GroupRef
from media_ingest.media import MediaKind
from media_ingest.platforms.label_studio import UNRESOLVABLE
from media_ingest.records import CatalogItem, Outcome, OutcomeKind
from media_ingest.settings import Settings
from media_ingest.sinks.changes import Change, ChangeAction, ChangeBatch, batches_of
from media_ingest.sinks.label_studio import LabelStudioSink, ProjectRoutes, ProjectTask
from media_ingest.sinks.runner import SinkRunner
from tests.support.events import sqs_record
from tests.support.fakes import MemoryCatalog, MemoryFailureQueue, MemoryTaskStore
from tests.support.items import audio_item, dicom_item, image_item, video_item

IMAGES, VIDEOS = 1, 2


class Ctx:
    function_name = "sink"
    aws_request_id = "r"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _sink(
    routes: dict[str, Any] | None = None, keys: dict[int, frozenset[str]] | None = None
) -> tuple[LabelStudioSink, MemoryTaskStore, MemoryCatalog, MemoryFailureQueue]:
    store = MemoryTaskStore(keys or {IMAGES: frozenset({"image"}), VIDEOS: frozenset({"video"})})
    catalog, queue = MemoryCatalog(), MemoryFailureQueue()
    sink = LabelStudioSink(
        tasks=store,
        catalog=catalog,
        routes=ProjectRoutes(routes=routes or {"main": {"image": IMAGES, "video": VIDEOS}}),
        failures=FailureRecorder(catalog, queue),
    )
    return sink, store, catalog, queue


def _registered(catalog: MemoryCatalog, *items: CatalogItem) -> ChangeBatch:
    outcomes = []
    for item in items:
        catalog.put_new(item)
        outcomes.append(
            Outcome(
                kind=OutcomeKind.REGISTERED,
                event_id=item.event_id,
                bucket=item.bucket,
                key=item.key,
                item=item,
                dataset=item.dataset,
            )
        )
    [batch] = batches_of(outcomes)
    return batch


def _deleted(item: CatalogItem, kind: MediaKind | None = None) -> ChangeBatch:
    change = Change(
        action=ChangeAction.DELETE,
        dataset=item.dataset,
        object_url=item.object_url,
        bucket=item.bucket,
        key=item.key,
        kind=kind,
        event_id=item.event_id + "-deleted",
        event_time=datetime(2026, 11, 24, tzinfo=UTC),
    )
    return ChangeBatch(dataset=item.dataset, changes=[change])


def test_each_object_becomes_one_task_and_a_redelivered_batch_adds_nothing() -> None:
    sink, store, catalog, _ = _sink()
    batch = _registered(catalog, image_item("a.jpg"), image_item("b.jpg"), video_item("v/c.mp4"))
    first = sink.apply(batch)
    assert (first.created, first.unchanged) == (3, 0)
    again = sink.apply(batch)
    assert (again.created, again.unchanged, again.updated) == (0, 3, 0)
    assert store.uris(IMAGES) == ["s3://drop/a.jpg", "s3://drop/b.jpg"]
    assert store.uris(VIDEOS) == ["s3://drop/v/c.mp4"]
    [task] = store.tasks[VIDEOS].values()
    assert task.meta["object_url"] == "https://drop.s3.us-east-1.amazonaws.com/v/c.mp4"
    assert task.meta["probe"]["fps_fraction"] == "30000/1001"


def test_an_update_rewrites_the_task_it_does_not_add_one() -> None:
    sink, store, catalog, _ = _sink()
    item = image_item("a.jpg")
    sink.apply(_registered(catalog, item))
    newer = item.model_copy(update={"size": 5, "etag": "f", "sequencer": "02"})
    catalog.items[(newer.dataset, newer.object_url)] = newer  # what put_newer leaves
    result = sink.apply(_registered(MemoryCatalog(), newer))
    assert (result.created, result.updated) == (0, 1)
    [task] = store.tasks[IMAGES].values()
    assert (task.meta["size"], task.meta["etag"]) == (5, "f")


def test_a_deleted_object_s_task_is_removed_or_flagged_when_annotated() -> None:
    sink, store, catalog, _ = _sink()
    plain, labelled = image_item("a.jpg"), image_item("b.jpg")
    sink.apply(_registered(catalog, plain, labelled))
    [task_b] = [t for t in store.tasks[IMAGES].values() if t.data["image"].endswith("b.jpg")]
    store.tasks[IMAGES][task_b.id] = task_b.model_copy(update={"annotations": 2})
    gone = sink.apply(_deleted(plain))  # kind unknown: every project of the dataset is asked
    kept = sink.apply(_deleted(labelled, MediaKind.IMAGE))
    assert (gone.deleted, kept.deleted, kept.flagged) == (1, 0, 1)
    [left] = store.tasks[IMAGES].values()
    assert left.meta["deleted"] == {
        "at": "2026-11-24T00:00:00+00:00",
        "event_id": labelled.event_id + "-deleted",
    }
    again = sink.apply(_deleted(labelled, MediaKind.IMAGE))
    assert (again.deleted, again.flagged) == (0, 0)  # a redelivered deletion changes nothing
    assert len(store.tasks[IMAGES]) == 1


def test_kinds_a_project_does_not_take_are_skipped_a_kind_named_for_it_is_a_failure() -> None:
    # One project for the dataset: its config decides; DICOM has no tag at all.
    sink, store, catalog, queue = _sink(
        routes={"main": IMAGES}, keys={IMAGES: frozenset({"image"})}
    )
    items = (dicom_item("ct/1.dcm"), video_item("v.mp4"), image_item("ok.jpg"))
    result = sink.apply(_registered(catalog, *items))
    assert (result.created, result.skipped, result.refused) == (1, 2, 0) and not queue.sent
    # The video named for the image project: someone meant it to be there.
    sink, store, catalog, queue = _sink(
        routes={"main": {"image": IMAGES, "video": IMAGES}}, keys={IMAGES: frozenset({"image"})}
    )
    result = sink.apply(_registered(catalog, *items))
    assert (result.created, result.skipped, result.refused) == (1, 1, 1)
    assert store.uris(IMAGES) == ["s3://drop/ok.jpg"]
    [record] = queue.sent
    assert (record.stage, record.error_code) == (Stage.SINK, ErrorCode.SINK_REFUSED)
    assert record.message == (
        "Label Studio project 1's labelling config has no $video object tag for this video"
    )
    assert record.event_id.endswith("#sink") and catalog.failures == [record]

    sink, _, catalog, _ = _sink(routes={"other": IMAGES})
    assert sink.apply(_registered(catalog, audio_item("a.flac"))).skipped == 1


def test_one_refused_task_fails_alone_the_others_are_created() -> None:
    sink, store, catalog, queue = _sink()
    store.refuse = lambda task: task["data"]["image"].endswith("bad.jpg")
    result = sink.apply(
        _registered(catalog, image_item("a.jpg"), image_item("bad.jpg"), image_item("c.jpg"))
    )
    assert (result.created, result.refused) == (2, 1)
    assert store.uris(IMAGES) == ["s3://drop/a.jpg", "s3://drop/c.jpg"]
    [record] = queue.sent
    assert record.key == "bad.jpg" and "(400)" in record.message


def test_a_key_label_studio_cannot_resolve_is_a_failure_record() -> None:
    sink, store, catalog, queue = _sink()
    result = sink.apply(_registered(catalog, image_item("what?.jpg")))
    assert result.refused == 1 and store.uris(IMAGES) == []
    assert queue.sent[0].message == UNRESOLVABLE


def test_an_object_gone_from_the_catalog_is_skipped() -> None:
    sink, store, catalog, _ = _sink()
    batch = _registered(catalog, image_item("a.jpg"))
    catalog.items.clear()
    assert sink.apply(batch).skipped == 1 and store.uris(IMAGES) == []


def test_group_members_carry_their_group() -> None:
    sink, store, catalog, _ = _sink()
    item = image_item("seq/run7/f1.png")
    catalog.put_new(item)
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_SEQUENCES, scope="seq/run7", title="run7")
    outcome = Outcome(
        kind=OutcomeKind.REGISTERED,
        event_id=item.event_id,
        bucket=item.bucket,
        key=item.key,
        item=item,
        dataset="main",
        group=ref.group_id,
    )
    sink.apply(batches_of([outcome])[0])
    [task] = store.tasks[IMAGES].values()
    assert task.meta["group"] == {"kind": "image_sequences", "scope": "seq/run7"}


def _runner(max_receive_count: int = 3) -> tuple[SinkRunner, MemoryTaskStore, MemoryCatalog]:
    sink, store, catalog, _ = _sink()
    return SinkRunner(sink, max_receive_count=max_receive_count), store, catalog


def _fifo_event(*bodies: str, receive_count: int = 1, group: str = "main") -> dict[str, Any]:
    records = []
    for number, body in enumerate(bodies):
        record = sqs_record(body, receive_count)
        record["messageId"] = f"m{number}"
        record["attributes"]["MessageGroupId"] = group
        records.append(record)
    return {"Records": records}


def test_the_runner_retries_an_unreachable_label_studio_and_records_on_the_last_attempt() -> None:
    runner, store, catalog = _runner(max_receive_count=3)
    batch = _registered(catalog, image_item("a.jpg"), image_item("b.jpg"))
    store.down = True
    for attempt in (1, 2):
        response = runner.run(_fifo_event(batch.body(), receive_count=attempt), Ctx())  # type: ignore[arg-type]
        assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
        assert catalog.failures == []  # retried: no record yet
    response = runner.run(_fifo_event(batch.body(), receive_count=3), Ctx())  # type: ignore[arg-type]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}  # to the DLQ
    assert sorted((f.key, f.error_code, f.stage) for f in catalog.failures) == [
        ("a.jpg", ErrorCode.SINK_UNAVAILABLE, Stage.SINK),
        ("b.jpg", ErrorCode.SINK_UNAVAILABLE, Stage.SINK),
    ]
    assert "gave up after 3 attempts: Label Studio answered 502" in catalog.failures[0].message
    store.down = False  # back: the redriven message creates the tasks
    assert runner.run(_fifo_event(batch.body()), Ctx()) == {"batchItemFailures": []}  # type: ignore[arg-type]
    assert len(store.tasks[IMAGES]) == 2


def test_a_failed_message_holds_back_the_rest_of_its_dataset_only() -> None:
    runner, store, catalog = _runner()
    first = _registered(catalog, image_item("a.jpg"))
    second = _registered(MemoryCatalog(), image_item("b.jpg"))
    catalog.put_new(image_item("b.jpg"))
    poison = ChangeBatch(dataset="main", changes=[]).body().replace("changes", "nope")
    response = runner.run(_fifo_event(poison, first.body(), second.body()), Ctx())  # type: ignore[arg-type]
    # FIFO: after a failure, the group's later messages are not applied out of order.
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m0", "m1", "m2")]}
    assert store.uris(IMAGES) == []


def test_transient_errors_propagate_from_apply() -> None:
    sink, store, catalog, _ = _sink()
    store.down = True
    with pytest.raises(TransientError):
        sink.apply(_registered(catalog, image_item("a.jpg")))


def test_changes_are_registrations_and_updates_once_per_object_per_dataset() -> None:
    items = [image_item("a.jpg"), image_item("a.jpg"), video_item("v.mp4", dataset="other")]

    def outcome(kind: OutcomeKind, item: CatalogItem) -> Outcome:
        return Outcome(
            kind=kind,
            event_id=item.event_id,
            bucket=item.bucket,
            key=item.key,
            item=item,
            dataset=item.dataset,
        )

    batches = batches_of(
        [
            outcome(OutcomeKind.REGISTERED, items[0]),
            outcome(OutcomeKind.REGISTERED, items[1]),  # the same event, delivered twice
            outcome(OutcomeKind.UPDATED, items[2]),
            Outcome(kind=OutcomeKind.FAILED, event_id="x", bucket="drop", key="f"),
            outcome(OutcomeKind.DUPLICATE, image_item("d.jpg")),
        ]
    )
    assert [(b.dataset, [c.key for c in b.changes]) for b in batches] == [
        ("main", ["a.jpg"]),
        ("other", ["v.mp4"]),
    ]
    assert {c.action for b in batches for c in b.changes} == {ChangeAction.UPSERT}
    assert (
        batches[0].deduplication_id()
        == batches_of([outcome(OutcomeKind.REGISTERED, items[0])])[0].deduplication_id()
    )


def test_project_routes_from_the_template_parameter() -> None:
    settings = Settings.model_validate(
        {
            "CATALOG_TABLE": "c",
            "MANIFEST_BUCKET": "m",
            "FAILURE_QUEUE_URL": "q",
            "LABEL_STUDIO_PROJECTS": json.dumps({"main": {"image": 3}, "*": 9}),
        }
    )
    routes = settings.label_studio_projects
    assert routes.project("main", MediaKind.IMAGE) == 3
    assert routes.project("main", MediaKind.VIDEO) is None
    assert routes.project("else", MediaKind.AUDIO) == 9 and routes.projects("main") == {3}
    with pytest.raises(ValueError, match="no object tag for dicom"):
        ProjectRoutes(routes={"main": {MediaKind.DICOM: 1}})


def test_a_task_found_twice_is_updated_everywhere_never_duplicated() -> None:
    sink, store, catalog, _ = _sink()
    item = image_item("a.jpg")
    for task_id in (7, 8):  # someone imported it twice by hand
        store.tasks[IMAGES][task_id] = ProjectTask(id=task_id, data={"image": "s3://drop/a.jpg"})
    result = sink.apply(_registered(catalog, item))
    assert (result.created, result.updated) == (0, 2) and len(store.tasks[IMAGES]) == 2
