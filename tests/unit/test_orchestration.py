"""The ingest path's orchestration over in-memory fakes (no AWS, no ffprobe): one test per
outcome and per failure stage through `Ingestor`, and a batch through `BatchRunner`.

What the fakes stand for: MemoryCatalog (the conditional puts), MemoryPartStore (S3's
conditional writes), MemoryGroupStore (the group table's conditions), a scripted prober.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from media_ingest.errors import ErrorCode, MediaError, Stage, TransientError
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.groups.membership import Membership
from media_ingest.groups.rules import GroupRoutes
from media_ingest.groups.sealing import GroupSealer
from media_ingest.ingest.batch_runner import BatchRunner
from media_ingest.ingest.ingestor import Ingestor, Registered
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.media import MediaKind
from media_ingest.records import FailureRecord, Outcome, OutcomeKind
from media_ingest.routing import Router
from media_ingest.settings import Settings
from tests.support.events import s3_body, sqs_event
from tests.support.fakes import (
    ARCHIVE,
    IMAGE,
    MemoryCatalog,
    MemoryExtractQueue,
    MemoryFailureQueue,
    MemoryGroupStore,
    MemoryPartStore,
    ScriptedProber,
)
from tests.support.items import event


@dataclass
class World:
    settings: Settings
    prober: ScriptedProber
    catalog: MemoryCatalog
    queue: MemoryFailureQueue
    extractions: MemoryExtractQueue
    groups: MemoryGroupStore
    ingestor: Ingestor
    parts: MemoryPartStore

    def ingest(self, key: str, sequencer: str = "01") -> Outcome:
        return self.ingestor.ingest(event(key, sequencer))


@pytest.fixture
def world() -> World:
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
    extractions, groups = MemoryExtractQueue(), MemoryGroupStore()
    membership = Membership(GroupRoutes(settings.group_routes, settings.group_marker), groups, 60)
    ingestor = Ingestor(
        settings=settings,
        router=Router.of(settings),
        prober=prober,
        catalog=catalog,
        failures=FailureRecorder(catalog, queue),
        extractions=extractions,
        membership=membership,
    )
    return World(settings, prober, catalog, queue, extractions, groups, ingestor, MemoryPartStore())


def test_registered_carries_its_item_and_the_entry_it_will_append(world: World) -> None:
    outcome = world.ingest("a/one.png")
    assert outcome.kind is OutcomeKind.REGISTERED and outcome.dataset == "main"
    assert isinstance(outcome, Registered) and outcome.item is not None
    assert outcome.entry.key == outcome.item.object_url == outcome.object_url
    # The ledger keeps the outcome, not the entry: a replay is a plain Outcome.
    replayed = Outcome.model_validate_json(outcome.model_dump_json())
    assert "entry" not in outcome.model_dump() and type(replayed) is Outcome
    assert list(world.catalog.items) == [("main", outcome.object_url)]
    assert world.queue.sent == [] and world.catalog.failures == []


def test_a_second_event_for_the_same_url_is_a_duplicate(world: World) -> None:
    world.ingest("a/one.png", sequencer="01")
    again = world.ingest("a/one.png", sequencer="02")
    assert again.kind is OutcomeKind.DUPLICATE and not isinstance(again, Registered)
    assert len(world.catalog.items) == 1


def test_an_update_dataset_replaces_on_a_newer_event(world: World) -> None:
    world.ingest("upd/one.png", sequencer="01")
    newer = world.ingest("upd/one.png", sequencer="02")
    older = world.ingest("upd/one.png", sequencer="00")
    assert (newer.kind, older.kind) == (OutcomeKind.UPDATED, OutcomeKind.DUPLICATE)
    [item] = world.catalog.items.values()
    assert item.sequencer == "02"


def test_ignored_names_are_never_probed(world: World) -> None:
    outcome = world.ingest("a/.DS_Store")
    assert outcome.kind is OutcomeKind.IGNORED and world.prober.probed == []


def test_an_archive_is_handed_to_extraction(world: World) -> None:
    world.prober.script["drops/pack.zip"] = ARCHIVE
    outcome = world.ingest("drops/pack.zip")
    assert outcome.kind is OutcomeKind.ARCHIVE
    assert [e.key for e in world.extractions.sent] == ["drops/pack.zip"]
    assert world.catalog.items == {}


def test_a_marker_is_not_probed_and_frames_join_their_group(world: World) -> None:
    frame = world.ingest("seq/run1/f1.png")
    marker = world.ingest("seq/run1/_SEALED")
    assert frame.kind is OutcomeKind.REGISTERED and frame.group == marker.group
    assert marker.kind is OutcomeKind.MARKER and world.prober.probed == ["seq/run1/f1.png"]
    assert not frame.needs_manifest  # a member's entry is its group's


@pytest.mark.parametrize(
    ("key", "error", "stage"),
    [
        ("p/bad.mp4", MediaError(ErrorCode.CORRUPT_MEDIA, "cut short"), Stage.PROBE),
        ("seq/run1/clip.mp4", None, Stage.REGISTER),  # only images are frames
        ("m/" + "x" * 17_000 + ".png", None, Stage.MANIFEST),  # a URL over Encord's 16 KB
    ],
    ids=["probe", "register", "manifest"],
)
def test_each_failure_stage_leaves_one_record_in_the_catalog_and_on_the_queue(
    world: World, key: str, error: MediaError | None, stage: Stage
) -> None:
    if error is not None:
        world.prober.script[key] = error
    if key.endswith(".mp4") and error is None:
        world.prober.script[key] = IMAGE.model_copy(update={"kind": MediaKind.VIDEO})
    outcome = world.ingest(key)
    assert outcome.kind is OutcomeKind.FAILED and outcome.failure is not None
    assert outcome.failure.stage is stage
    assert world.catalog.failures == world.queue.sent == [outcome.failure]
    assert world.catalog.items == {}


def test_a_sealed_group_refuses_a_late_frame_before_it_is_catalogued(world: World) -> None:
    world.ingest("seq/run1/f1.png")
    marker = world.ingest("seq/run1/_SEALED")
    assert marker.group is not None
    world.groups.seal(next(iter(world.groups.metas.values())).ref, event("x").event_time)
    late = world.ingest("seq/run1/f2.png")
    assert late.failure is not None and late.failure.error_code is ErrorCode.GROUP_SEALED
    assert ("main", late.object_url) not in world.catalog.items


def test_a_transient_error_is_raised_not_recorded(world: World) -> None:
    world.prober.script["t/slow.png"] = TransientError(ErrorCode.AWS_TRANSIENT, "throttled")
    with pytest.raises(TransientError):
        world.ingest("t/slow.png")
    assert world.catalog.failures == [] and world.queue.sent == []


# -- one batch ---------------------------------------------------------------------------
@dataclass
class Context:
    """The slice of a LambdaContext the batch runner reads."""

    function_name: str = "ingest"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def runner(world: World, writer: ManifestWriter | None = None) -> BatchRunner:
    manifests = writer or ManifestWriter(world.parts, sleep=lambda _: None)
    sealer = GroupSealer(world.groups, manifests, 60)
    return BatchRunner(ingest=world.ingestor.ingest, manifests=manifests, sealer=sealer)


def test_a_batch_appends_once_per_dataset_and_seals_its_marker_after_its_frames(
    world: World,
) -> None:
    keys = ["a/1.png", "a/2.png", "upd/3.png", "seq/r/f1.png", "seq/r/f2.png", "seq/r/_SEALED"]
    result = runner(world).run(sqs_event(*(s3_body("drop", k) for k in keys)), Context())  # type: ignore[arg-type]
    assert result == {"batchItemFailures": []}
    main, live = world.parts.parts("main"), world.parts.parts("live")
    assert [len(p.sections["images"]) for p in main] == [2]
    assert [len(p.sections["images"]) for p in live] == [1]
    # The sequence is one entry of its two frames, written once its marker came.
    [sequence] = main[0].sections["image_groups"]
    assert sequence["createVideo"] is True
    assert [sequence[f"objectUrl_{i}"].rsplit("/", 1)[1] for i in (0, 1)] == ["f1.png", "f2.png"]
    # Per dataset one part created and listed in its index; then the sequence's entry.
    assert world.parts.writes == 5


def test_a_failed_append_fails_only_the_messages_that_fed_it(world: World) -> None:
    class FailingLive(ManifestWriter):
        def append(self, dataset: str, entries: Any, replayed_since: Any = None) -> int:
            if dataset == "live":
                raise RuntimeError("S3 500")
            return super().append(dataset, entries, replayed_since)

    writer = FailingLive(world.parts, sleep=lambda _: None)
    event_ = sqs_event(s3_body("drop", "a/1.png"), s3_body("drop", "upd/2.png"))
    result = runner(world, writer).run(event_, Context())  # type: ignore[arg-type]
    assert result["batchItemFailures"] == [{"itemIdentifier": event_["Records"][1]["messageId"]}]
    assert len(world.parts.parts("main")[0].sections["images"]) == 1


def test_failure_recorder_writes_the_catalog_row_then_the_message_then_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []

    class Catalog:
        def record_failure(self, record: FailureRecord) -> None:
            order.append("catalog")

    class Queue:
        def send(self, record: FailureRecord) -> None:
            order.append("queue")

    recorder = FailureRecorder(Catalog(), Queue())
    error = MediaError(ErrorCode.CORRUPT_MEDIA, "bad", Stage.PROBE)

    class Logged(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            order.append("log")

    handler = Logged()
    logging.getLogger("media-ingest").addHandler(handler)
    try:
        record = recorder.record(event("k.mp4"), error, url="u", dataset="main", attempt=2)
    finally:
        logging.getLogger("media-ingest").removeHandler(handler)
    assert order == ["catalog", "queue", "log"]
    assert (record.error_code, record.stage, record.attempt) == (
        ErrorCode.CORRUPT_MEDIA,
        Stage.PROBE,
        2,
    )
    member = recorder.record(event("a.zip"), error, url="u#m", dataset=None, attempt=1, member="m")
    assert member.event_id.endswith("#m") and member.event_id != record.event_id


# -- the failure boundary (issue 11) -------------------------------------------------------
@pytest.mark.parametrize(
    "raised",
    [
        RecursionError("maximum recursion depth exceeded"),
        NotImplementedError("Unknown Value Representation 'ZZ'"),
        KeyError("streams"),
        RuntimeError("Failed to decode image: Missing or empty image item"),
        UnicodeEncodeError("utf-8", "caf\udce9", 3, 4, "surrogates not allowed"),
        MemoryError(),
        ZeroDivisionError("division by zero"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_whatever_a_reader_raises_is_the_objects_failure_record_not_a_retry(
    world: World, raised: Exception
) -> None:
    world.prober.script["x/odd.png"] = raised
    outcome = world.ingest("x/odd.png")
    assert outcome.kind is OutcomeKind.FAILED and outcome.failure is not None
    failure = outcome.failure
    assert failure.error_code is ErrorCode.PARSER_ERROR and failure.stage is Stage.PROBE
    assert f"raised {type(raised).__name__}" in failure.message
    # The innermost frame of the package, and what it called (this test's scripted prober).
    assert failure.parser == "ingest.ingestor (tests)"
    assert world.catalog.failures == [failure] and world.queue.sent == [failure]
    failure.model_dump_json()  # a record any store can hold, whatever the text it carries


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    "raised",
    [
        _client_error("SlowDown", 503),
        _client_error("ThrottlingException", 400),
        _client_error("InternalError", 500),
        _client_error("ResourceNotFoundException", 400),  # the stack's own table: not the object
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
        TransientError(ErrorCode.INVOCATION_DEADLINE, "no time left"),
    ],
    ids=lambda e: type(e).__name__ + getattr(e, "response", {}).get("Error", {}).get("Code", ""),
)
def test_only_conditions_a_retry_can_cure_go_back_to_the_queue(
    world: World, raised: Exception
) -> None:
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    world.prober.script["x/later.png"] = raised
    with pytest.raises(type(raised)):
        world.ingest("x/later.png")
    for error in (
        ReadTimeoutError(endpoint_url="https://s3"),
        EndpointConnectionError(endpoint_url="https://s3"),
    ):
        world.prober.script["x/later.png"] = error
        with pytest.raises(type(error)):
            world.ingest("x/later.png")
    assert world.catalog.failures == [] and world.queue.sent == []


def test_a_batch_with_one_hostile_file_registers_the_nine_others_first_time(world: World) -> None:
    world.prober.script["b/hostile.dcm"] = RecursionError("maximum recursion depth exceeded")
    keys = ["b/hostile.dcm", *(f"b/{i}.png" for i in range(9))]
    result = runner(world).run(sqs_event(*(s3_body("drop", k) for k in keys)), Context())  # type: ignore[arg-type]
    assert result == {"batchItemFailures": []}
    assert len(world.catalog.items) == 9
    assert [(f.key, f.error_code, f.attempt) for f in world.catalog.failures] == [
        ("b/hostile.dcm", ErrorCode.PARSER_ERROR, 1)
    ]
