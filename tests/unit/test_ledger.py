"""The outcome ledger and the leases over in-memory fakes, and the DynamoDB ledger on moto.

Every event has exactly one recorded outcome, in the one home ingest/registration.py names
for its kind (the item itself, a failure record, an outcome record); a redelivery replays it
unprobed; a run appends only entries no earlier run of their event may still be writing.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from media_ingest.adapters.catalog import (
    DynamoCatalog,
    DynamoPartNumbers,
    item_attributes,
    outcome_pk,
)
from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import parse_body
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.groups.membership import Membership
from media_ingest.groups.rules import GroupRoutes
from media_ingest.groups.sealing import GroupSealer
from media_ingest.ingest.batch_runner import BatchRunner
from media_ingest.ingest.ingestor import Ingestor
from media_ingest.ingest.registration import Lease
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.platforms.encord import Entry
from media_ingest.records import Outcome, OutcomeKind, utcnow
from media_ingest.routing import Router
from media_ingest.settings import Settings
from tests.support.events import s3_body, sqs_record
from tests.support.fakes import (
    ARCHIVE,
    MemoryCatalog,
    MemoryExtractQueue,
    MemoryFailureQueue,
    MemoryGroupStore,
    MemoryPartNumbers,
    MemoryPartStore,
    ScriptedProber,
)
from tests.support.items import event, image_item, video_item
from tests.unit.conftest import TABLE


@dataclass
class Stack:
    prober: ScriptedProber
    catalog: MemoryCatalog
    queue: MemoryFailureQueue
    groups: MemoryGroupStore
    parts: MemoryPartStore
    ingestor: Ingestor
    writer: ManifestWriter

    def runner(self, writer: ManifestWriter | None = None) -> BatchRunner:
        manifests = writer or self.writer
        sealer = GroupSealer(self.groups, manifests, 60)
        return BatchRunner(self.ingestor.ingest, manifests, sealer, leases=self.catalog)

    def run(self, *bodies: str, receive: int = 1, runner: BatchRunner | None = None) -> set[str]:
        """Deliver one batch; the message ids that failed."""
        records = [sqs_record(b, receive, message_id=f"m{i}") for i, b in enumerate(bodies)]
        done = (runner or self.runner()).run({"Records": records}, Context())  # type: ignore[arg-type]
        return {f["itemIdentifier"] for f in done["batchItemFailures"]}

    def manifest_keys(self, dataset: str = "main") -> list[str]:
        return [k for p in self.parts.parts(dataset) for k in p.entry_keys()]


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def stack() -> Stack:
    settings = Settings(
        CATALOG_TABLE="catalog",
        MANIFEST_BUCKET="manifests",
        FAILURE_QUEUE_URL="failures",
        DEFAULT_DATASET="main",
        DATASET_ROUTES='{"upd/": "live"}',
        UPDATE_DATASETS="live",
        GROUP_ROUTES='{"seq/": "image_sequences"}',
    )
    prober, catalog, queue = ScriptedProber(), MemoryCatalog(), MemoryFailureQueue()
    groups, parts = MemoryGroupStore(), MemoryPartStore()
    ingestor = Ingestor(
        settings=settings,
        router=Router.of(settings),
        prober=prober,
        catalog=catalog,
        failures=FailureRecorder(catalog, queue),
        extractions=MemoryExtractQueue(),
        membership=Membership(
            GroupRoutes(settings.group_routes, settings.group_marker), groups, 60
        ),
    )
    writer = ManifestWriter(parts, numbers=MemoryPartNumbers(), sleep=lambda _: None)
    return Stack(prober, catalog, queue, groups, parts, ingestor, writer)


def body(key: str, sequencer: str = "01") -> str:
    return s3_body("drop", key, sequencer=sequencer)


def test_each_outcome_is_recorded_once_in_the_home_its_kind_has(stack: Stack) -> None:
    stack.prober.script["bad/cut.mp4"] = MediaError(ErrorCode.CORRUPT_MEDIA, "cut short")
    stack.prober.script["drops/pack.zip"] = ARCHIVE
    bodies = [
        body("a/new.png"),
        body("a/.DS_Store"),
        body("bad/cut.mp4"),
        body("drops/pack.zip"),
        body("seq/r/f1.png"),
        body("upd/one.png", "01"),
    ]
    assert stack.run(*bodies) == set()
    assert stack.run(body("a/new.png", "02"), body("upd/one.png", "02")) == set()  # again
    assert stack.run(body("seq/r/_SEALED")) == set()

    kinds = Counter(o.kind for o in stack.catalog.ledger())
    assert kinds == {
        OutcomeKind.REGISTERED: 3,  # a/new.png, the frame, upd/one.png
        OutcomeKind.DUPLICATE: 1,
        OutcomeKind.UPDATED: 1,
        OutcomeKind.FAILED: 1,
        OutcomeKind.IGNORED: 1,
        OutcomeKind.ARCHIVE: 1,
        OutcomeKind.MARKER: 1,
    }
    # The homes: an item of a dataset that never replaces items carries its outcome (the
    # one write a new file costs); every other outcome has a record of its own.
    carried = {stack.catalog.items[k].key for k in stack.catalog.carried}
    assert carried == {"a/new.png", "seq/r/f1.png"}
    recorded = Counter(o.kind for o in stack.catalog.outcomes.values())
    assert recorded == {
        OutcomeKind.REGISTERED: 1,  # upd/one.png: an update dataset replaces its items
        OutcomeKind.UPDATED: 1,
        OutcomeKind.DUPLICATE: 1,
        OutcomeKind.FAILED: 1,  # beside its failure record (the failure log's)
        OutcomeKind.IGNORED: 1,
        OutcomeKind.ARCHIVE: 1,
        OutcomeKind.MARKER: 1,
    }
    assert sum(recorded.values()) + len(carried) == 9
    assert [f.key for f in stack.catalog.failures] == ["bad/cut.mp4"]


def test_a_redelivered_event_replays_its_outcome_unprobed(stack: Stack) -> None:
    stack.prober.script["bad/cut.mp4"] = MediaError(ErrorCode.CORRUPT_MEDIA, "cut short")
    first = [body("a/new.png"), body("bad/cut.mp4"), body("a/new.png", "02")]
    assert stack.run(*first[:2]) == set() and stack.run(first[2]) == set()
    probed, sent = list(stack.prober.probed), list(stack.queue.sent)
    assert stack.run(*first, receive=2) == set()
    assert stack.prober.probed == probed  # nothing probed again
    assert stack.queue.sent == sent  # no second failure message
    assert Counter(o.kind for o in stack.catalog.ledger()) == {
        OutcomeKind.REGISTERED: 1,
        OutcomeKind.FAILED: 1,
        OutcomeKind.DUPLICATE: 1,
    }
    assert stack.manifest_keys() == [stack.catalog.items["main", _url("a/new.png")].object_url]


def test_a_batch_decides_its_messages_at_once_within_the_bound(stack: Stack) -> None:
    stack.prober.delay = 0.05
    runner = stack.runner()
    runner.workers = 10
    assert stack.run(*(body(f"b/{i}.png") for i in range(25)), runner=runner) == set()
    assert stack.prober.most == 10  # ten at once, never more
    assert len(stack.manifest_keys()) == 25 and stack.parts.writes == 2  # part + index


def test_the_same_event_twice_in_one_batch_is_one_item_and_one_entry(stack: Stack) -> None:
    stack.prober.delay = 0.02
    assert stack.run(body("a/twice.png"), body("a/twice.png")) == set()
    assert len(stack.catalog.items) == 1 and stack.manifest_keys() == [_url("a/twice.png")]
    assert Counter(o.kind for o in stack.catalog.ledger()) == {OutcomeKind.REGISTERED: 1}


def test_an_entry_an_earlier_run_may_still_be_writing_waits_for_that_run(stack: Stack) -> None:
    # A run registered the file and is still going (its lease holds) when the message comes
    # back (or S3's duplicate notification of the same event arrives in another batch).
    slow = body("a/slow.png")
    other = Lease("other-run", utcnow() + timedelta(minutes=3))
    stack.ingestor.ingest(parse_body(slow)[0], lease=other)
    assert stack.run(slow, receive=2) == {"m0"}  # retried once that run is over
    assert stack.manifest_keys() == []
    # That run's deadline passed with its entry unwritten (it died): the redelivery writes it.
    key = ("main", _url("a/slow.png"))
    stack.catalog.leases[key] = Lease("other-run", utcnow())
    assert stack.run(slow, receive=3) == set()
    assert stack.manifest_keys() == [_url("a/slow.png")]
    # Written: a later redelivery waits for no one and writes nothing again.
    stack.catalog.leases[key] = other
    assert stack.run(slow, receive=4) == set()
    assert stack.manifest_keys() == [_url("a/slow.png")]
    # The same event decided again from scratch (a duplicate notification, first receive).
    assert stack.run(slow) == set() and stack.manifest_keys() == [_url("a/slow.png")]
    # Such a notification while the first run still holds the lease and has not written
    # the entry yet: it waits too, rather than write the entry a second time.
    twin = body("a/twin.png")
    stack.ingestor.ingest(parse_body(twin)[0], lease=other)
    assert stack.run(twin) == {"m0"}
    assert stack.manifest_keys() == [_url("a/slow.png")]


def test_a_failed_append_gives_its_lease_up_so_the_retry_need_not_wait(stack: Stack) -> None:
    class Failing(ManifestWriter):
        def append(self, dataset: str, entries: list[Entry], replayed_since: Any = None) -> int:
            raise RuntimeError("S3 500")

    failing = Failing(stack.parts, numbers=MemoryPartNumbers())
    assert stack.run(body("a/one.png"), runner=stack.runner(failing)) == {"m0"}
    assert stack.catalog.released == [("main", _url("a/one.png"))]
    assert stack.run(body("a/one.png"), receive=2) == set()
    assert stack.manifest_keys() == [_url("a/one.png")]


def test_only_one_run_writes_a_sealed_group_and_a_failed_one_lets_the_next_go(
    stack: Stack,
) -> None:
    assert stack.run(body("seq/g/f1.png"), body("seq/g/f2.png")) == set()
    ref = next(iter(stack.groups.metas.values())).ref
    stack.groups.seal(ref, utcnow())
    sweeper = GroupSealer(stack.groups, stack.writer, 60)

    class Racing(ManifestWriter):
        """The marker's batch writes the entry while the sweeper tries the same group."""

        def append(self, dataset: str, entries: list[Entry], replayed_since: Any = None) -> int:
            assert sweeper.finish(ref) is False  # claimed: the sweeper leaves it alone
            return super().append(dataset, entries, replayed_since)

    assert GroupSealer(stack.groups, Racing(stack.parts), 60).finish(ref) is True
    assert len(stack.manifest_keys()) == 1 and sweeper.finish(ref) is False

    # A writer that fails gives its claim up; the next one looks for what it may have written.
    stack.run(body("seq/h/f1.png"))
    other = next(m.ref for m in stack.groups.metas.values() if m.ref.title == "h")
    stack.groups.seal(other, utcnow())

    class Broken(ManifestWriter):
        def append(self, dataset: str, entries: list[Entry], replayed_since: Any = None) -> int:
            super().append(dataset, entries, replayed_since)
            raise RuntimeError("died after the write")

    with pytest.raises(RuntimeError):
        GroupSealer(stack.groups, Broken(stack.parts), 60).finish(other)
    assert sweeper.finish(other) is True
    assert len(stack.manifest_keys()) == 2  # written once, not twice


def test_a_dataset_switched_to_update_mode_keeps_the_outcomes_of_its_items() -> None:
    catalog = MemoryCatalog()
    first = video_item("a.mp4", sequencer="01")
    assert catalog.put_new(first).written
    assert catalog.put_newer(video_item("a.mp4", sequencer="02")).written
    assert {o.event_id for o in catalog.ledger()} == {first.event_id}  # still there
    assert catalog.outcomes[first.event_id].kind is OutcomeKind.REGISTERED


# -- the DynamoDB catalog on moto -----------------------------------------------------------


def test_the_dynamo_ledger_reads_every_home_and_the_previous_idempotency_records(
    table: Any,
) -> None:
    catalog, reader = DynamoCatalog(TABLE, table), CatalogReader(TABLE, table)
    item = image_item("cams/a.jpg")
    lease = Lease("run-1", utcnow() + timedelta(minutes=1))
    assert catalog.put_new(item, "main|image_groups|cams", lease).written
    again = catalog.put_new(item, None, Lease("run-2", utcnow()))
    assert not again.written and again.previous == item
    assert again.lease is not None and again.lease.token == lease.token
    assert abs(again.lease.until - lease.until) < timedelta(milliseconds=1)
    ignored = Outcome(kind=OutcomeKind.IGNORED, event_id="e-ignored", bucket="drop", key="x")
    catalog.record_outcome(ignored)
    catalog.record_outcome(ignored.model_copy(update={"kind": OutcomeKind.ARCHIVE}))  # late
    failed = Outcome(kind=OutcomeKind.FAILED, event_id="e-failed", bucket="drop", key="bad.mp4")
    catalog.record_outcome(failed)
    # A member of an archive the extract function refused: a failure record, and no event.
    FailureRecorder(catalog, MemoryFailureQueue()).record(
        event("pack.zip"),
        MediaError(ErrorCode.ARCHIVE_PATH_REFUSED, "../x"),
        url="u#../x",
        dataset="main",
        attempt=1,
        member="../x",
    )
    # What a stack kept before: Powertools' idempotency records (one done, one in progress).
    legacy = Outcome(kind=OutcomeKind.DUPLICATE, event_id="e-old", bucket="drop", key="old")
    table.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "idem#1"},
            "status": {"S": "COMPLETED"},
            "data": {"S": legacy.model_dump_json()},
        },
    )
    table.put_item(TableName=TABLE, Item={"pk": {"S": "idem#2"}, "status": {"S": "INPROGRESS"}})
    DynamoPartNumbers(TABLE, table).next("main", 0)  # a counter item is no outcome

    outcomes, in_progress = reader.ledger()
    assert in_progress == 1
    assert {o.event_id: o.kind for o in outcomes} == {
        item.event_id: OutcomeKind.REGISTERED,
        "e-ignored": OutcomeKind.IGNORED,  # the first recorded stays
        "e-failed": OutcomeKind.FAILED,
        "e-old": OutcomeKind.DUPLICATE,
    }
    registered = next(o for o in outcomes if o.kind is OutcomeKind.REGISTERED)
    assert registered.group == "main|image_groups|cams" and registered.item == item
    found = catalog.recorded(item.event_id, "main", item.object_url)
    assert found is not None and found.outcome.kind is OutcomeKind.REGISTERED
    assert found.lease is not None and found.lease.token == lease.token
    assert catalog.recorded("e-ignored", "main", "u2") is not None
    assert catalog.recorded("nothing", "main", "u3") is None
    catalog.release(item, Lease("someone-else", utcnow()))
    held = catalog.put_new(item).lease
    assert held is not None and held.token == lease.token  # only the holder gives it up
    catalog.release(item, lease)
    assert catalog.put_new(item).lease is None


def test_an_item_switched_to_update_mode_moves_its_outcome_before_it_is_replaced(
    table: Any,
) -> None:
    catalog, reader = DynamoCatalog(TABLE, table), CatalogReader(TABLE, table)
    first = video_item("a.mp4", sequencer="01")
    catalog.put_new(first)
    newer = video_item("a.mp4", sequencer="02")
    assert catalog.put_newer(newer).written
    got = table.get_item(TableName=TABLE, Key={"pk": {"S": outcome_pk(first.event_id)}})
    assert json.loads(got["Item"]["doc"]["S"])["kind"] == "registered"
    assert [o.event_id for o in reader.ledger()[0]] == [first.event_id]
    assert [i.sequencer for i in reader.items()] == ["02"]


def test_catalog_items_stay_under_one_write_unit(table: Any) -> None:
    """DynamoDB bills a write per KB of item: names and values of every attribute."""
    lease = Lease("0123456789abcdef", utcnow())
    for item in (video_item("cams/front/2026-11-23/clip-000001.mp4"), image_item("p/IMG_0001.jpg")):
        attributes = item_attributes(item, None, lease) | {"outcome": {"S": "registered"}}
        size = sum(len(name) + _size(value) for name, value in attributes.items())
        assert size < 1024, (item.key, size)
        assert json.loads(zlib.decompress(attributes["docz"]["B"]))["key"] == item.key


def test_part_numbers_start_above_the_floor_once_and_never_repeat(table: Any) -> None:
    numbers = DynamoPartNumbers(TABLE, table)
    assert numbers.next("main", 7) == 8  # a stack upgraded with seven parts already
    assert [numbers.next("main", 0) for _ in range(3)] == [9, 10, 11]
    assert numbers.next("other", 0) == 1


def _size(value: dict[str, Any]) -> int:
    [(kind, raw)] = value.items()
    return len(raw) if kind == "B" else len(str(raw).encode())


def _url(key: str) -> str:
    return f"https://drop.s3.us-east-1.amazonaws.com/{key}"
