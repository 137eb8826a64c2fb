"""Deletions through the ingest path over in-memory fakes: the outcome `deleted`, the item
kept and marked removed, a failure settled, a re-upload registered again, unordered
delivery, and the removal log beside the manifest (what an importer reads)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import Action, Deletion, ObjectEvent
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.ingest.batch_runner import BatchRunner
from media_ingest.ingest.identity import ContentIdentifier
from media_ingest.ingest.ingestor import Ingestor
from media_ingest.manifests.removals import RemovalLog
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.media import MediaInfo
from media_ingest.records import Outcome, OutcomeKind, utcnow
from media_ingest.routing import Router
from media_ingest.settings import Settings
from media_ingest.sinks.changes import ChangeAction, change_of
from tests.support.content import MemoryClaims, MemoryObjects
from tests.support.events import s3_body, sqs_event
from tests.support.fakes import IMAGE, MemoryCatalog, MemoryFailureQueue, MemoryPartStore
from tests.support.items import event


@dataclass
class Prober:
    broken: set[str]

    def probe(self, event: ObjectEvent) -> MediaInfo:
        if event.key in self.broken:
            raise MediaError(ErrorCode.CORRUPT_MEDIA, "cut short")
        return IMAGE


class World:
    def __init__(self) -> None:
        settings = Settings(
            CATALOG_TABLE="c", MANIFEST_BUCKET="m", FAILURE_QUEUE_URL="q", DEFAULT_DATASET="main"
        )
        self.objects, self.catalog = MemoryObjects(), MemoryCatalog()
        self.prober = Prober(set())
        self.ingestor = Ingestor(
            settings=settings,
            router=Router.of(settings),
            prober=self.prober,
            catalog=self.catalog,
            failures=FailureRecorder(self.catalog, MemoryFailureQueue()),
            identity=ContentIdentifier(self.objects, MemoryClaims(), self.catalog, self.objects),
            objects=self.objects,
        )
        self.parts = MemoryPartStore()
        self.runner = BatchRunner(
            ingest=self.ingestor.ingest,
            manifests=ManifestWriter(self.parts, sleep=lambda _: None),
            removal_log=RemovalLog(self.parts, max_entries=3, sleep=lambda _: None),
        )

    def upload(self, key: str, data: bytes = b"png", sequencer: str = "01") -> Outcome:
        self.objects.put("drop", key, data)
        return self.ingestor.ingest(self.objects.event("drop", key, sequencer))

    def delete(self, key: str, sequencer: str = "02", request: str = "del") -> Outcome:
        self.objects.objects.pop(("drop", key), None)
        return self.ingestor.ingest(deletion(key, sequencer, request))


def deletion(key: str, sequencer: str = "02", request: str = "del") -> ObjectEvent:
    return event(key, sequencer).model_copy(
        update={
            "etag": "",
            "size": 0,
            "request_id": request,
            "action": Action.REMOVED,
            "deletion": Deletion.DELETE_MARKER,
            "event_name": "ObjectRemoved:DeleteMarkerCreated",
        }
    )


def test_a_deleted_object_keeps_its_item_marked_removed_with_when() -> None:
    world = World()
    registered = world.upload("a/one.png")
    gone = world.delete("a/one.png")
    assert gone.kind is OutcomeKind.DELETED and gone.detail == "catalog item marked removed"
    assert gone.item is not None and gone.item.removed is not None
    assert gone.item.removed.deletion is Deletion.DELETE_MARKER
    assert gone.url_change is not None and gone.url_change.change == "removed"
    [kept] = world.catalog.items.values()
    assert kept.object_url == registered.object_url and not kept.live
    # A redelivery of the same deletion changes nothing and says the same.
    again = world.delete("a/one.png")
    assert again.detail == "catalog item marked removed" and again.url_change == gone.url_change


def test_sinks_hear_of_a_removal_once_and_not_of_a_key_never_registered() -> None:
    world = World()
    world.upload("a/one.png")
    removed = change_of(world.delete("a/one.png"))
    assert removed is not None and removed.action is ChangeAction.DELETE
    assert removed.object_url.endswith("/a/one.png")
    assert change_of(world.delete("a/one.png", sequencer="03", request="again")) is None
    assert change_of(world.delete("never.png")) is None


def test_a_second_deletion_event_finds_it_already_removed() -> None:
    world = World()
    world.upload("a/one.png")
    world.delete("a/one.png")
    other = world.delete("a/one.png", sequencer="03", request="del-2")
    assert other.kind is OutcomeKind.DELETED and (other.detail or "").startswith("already")
    assert other.url_change is None


def test_a_deleted_failure_is_settled_and_an_unknown_key_is_recorded_deleted() -> None:
    world = World()
    world.prober.broken.add("bad.png")
    assert world.upload("bad.png").kind is OutcomeKind.FAILED
    assert {m.kind for m in world.catalog.marks.values()} == {OutcomeKind.FAILED}
    gone = world.delete("bad.png")
    assert gone.detail == "was not registered (it had failed): its failure is settled"
    never = world.delete("never.png")
    assert never.detail == "was not registered: nothing to remove" and never.url_change is None
    assert {m.kind for m in world.catalog.marks.values()} == {OutcomeKind.DELETED}


def test_a_deletion_that_arrives_after_the_key_was_written_again_removes_nothing() -> None:
    world = World()
    world.upload("a/one.png")
    world.objects.put("drop", "a/one.png", b"v2")  # rewritten before the deletion is read
    late = world.ingestor.ingest(deletion("a/one.png"))
    assert "written again" in (late.detail or "") and late.url_change is None
    assert next(iter(world.catalog.items.values())).live


def test_a_deletion_older_than_the_registered_write_removes_nothing() -> None:
    world = World()
    world.upload("a/one.png", sequencer="05")
    older = world.delete("a/one.png", sequencer="03")
    assert older.detail == "a later write of the key is registered: nothing removed"
    assert next(iter(world.catalog.items.values())).live


def test_a_re_upload_after_a_deletion_registers_again() -> None:
    world = World()
    world.upload("a/one.png")
    world.delete("a/one.png")
    back = world.upload("a/one.png", b"png again", sequencer="03")
    assert back.kind is OutcomeKind.REGISTERED
    assert (back.detail or "").startswith("registered again after its deletion")
    assert back.url_change is not None and back.url_change.change == "restored"
    [item] = world.catalog.items.values()
    assert item.live and item.etag == back.item.etag  # type: ignore[union-attr]


def test_ignored_keys_deleted_stay_ignored() -> None:
    world = World()
    assert world.ingestor.ingest(deletion("a/.DS_Store")).kind is OutcomeKind.IGNORED


# -- the removal log ---------------------------------------------------------------------
@dataclass
class Context:
    function_name: str = "ingest"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def run(world: World, *bodies: str) -> dict[str, object]:
    return world.runner.run(sqs_event(*bodies), Context())  # type: ignore[arg-type]


def removal_body(key: str, request: str) -> str:
    body = s3_body("drop", key, event_name="ObjectRemoved:Delete", sequencer="09")
    return body.replace('"REQ"', f'"{request}"')


def test_the_index_lists_the_removal_log_and_it_lists_removed_and_restored_urls() -> None:
    world = World()
    keys = [f"a/{n}.png" for n in range(5)]
    for key in keys:
        world.objects.put("drop", key, key.encode())
    created = [
        s3_body("drop", k, etag=world.objects.objects[("drop", k)].etag, sequencer="01")
        for k in keys
    ]
    assert run(world, *created) == {"batchItemFailures": []}
    for key in keys[:4]:
        world.objects.objects.pop(("drop", key))
    assert run(world, *(removal_body(k, f"r{n}") for n, k in enumerate(keys[:4]))) == {
        "batchItemFailures": []
    }
    index = world.parts.read_index("main")
    assert index is not None
    # Four removals in parts of three: one sealed part, one open, both listed.
    assert [(p.number, p.entries, p.sealed) for p in index.value.removals] == [
        (1, 3, True),
        (2, 1, False),
    ]
    assert [p.number for p in index.value.parts] == [1]  # the manifest's own part survives
    logged = [c for n in (1, 2) for c in world.parts.read_removals("main", n).value.changes]  # type: ignore[union-attr]
    assert [c.key for c in logged] == keys[:4] and {c.change for c in logged} == {"removed"}
    # Redelivered (no idempotency layer here, so it runs again): not logged twice in the
    # open part (replays are checked against sealed parts too, tested below).
    run(world, removal_body(keys[3], "r3"))
    # A re-upload: logged as restored.
    world.objects.put("drop", keys[0], b"back")
    again = s3_body("drop", keys[0], etag=world.objects.objects[("drop", keys[0])].etag)
    run(world, again.replace('"REQ"', '"up2"'))
    second = world.parts.read_removals("main", 2)
    assert second is not None
    assert [(c.key, c.change) for c in second.value.changes] == [
        (keys[3], "removed"),
        (keys[0], "restored"),
    ]


def test_a_replayed_change_is_not_logged_again_in_a_part_sealed_since() -> None:
    parts = MemoryPartStore()
    log = RemovalLog(parts, max_entries=2, sleep=lambda _: None)
    world = World()
    world.upload("a/0.png")
    change = world.delete("a/0.png").url_change
    assert change is not None
    decided = change.at - timedelta(days=1)  # anything sealed after this may hold it
    log.record("main", [change])
    filler = change.model_copy(update={"object_url": "x", "event_id": "y"})
    log.record("main", [filler])  # seals part 1
    assert log.record("main", [change], replayed_since=min(decided, utcnow())) == 0


def test_a_lost_race_on_the_log_part_is_re_applied() -> None:
    parts = MemoryPartStore()
    log = RemovalLog(parts, sleep=lambda _: None)
    world = World()
    world.upload("a/0.png")
    change = world.delete("a/0.png").url_change
    assert change is not None
    parts.fail_next_writes = 2
    assert log.record("main", [change]) == 1
    assert [c.key for c in parts.read_removals("main", 1).value.changes] == ["a/0.png"]  # type: ignore[union-attr]
