"""The sink path through the real handlers on moto: the ingest function publishes each batch's
changes to the FIFO sink queue in one call, and the sink function applies what it receives
(Label Studio itself is an in-memory double here; tests/integration has the real server)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from media_ingest.adapters import clients
from media_ingest.adapters.catalog import DynamoCatalog
from media_ingest.adapters.queues import SqsFailureQueue
from media_ingest.errors import ErrorCode, Stage
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.records import OutcomeKind
from media_ingest.sinks.changes import ChangeBatch
from media_ingest.sinks.label_studio import LabelStudioSink, ProjectRoutes
from media_ingest.sinks.runner import SinkRunner
from media_ingest.wiring import build_runner
from tests.handlers.conftest import FakeContext, Stack, load_function
from tests.support.events import sqs_record
from tests.support.fakes import MemoryTaskStore
from tests.support.media import MediaSet

PROJECT = 5


@pytest.fixture
def sinking(stack: Stack) -> Stack:
    url = stack.sqs.create_queue(QueueName="sink.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    settings = stack.settings.model_copy(update={"sink_queue_url": url})
    return Stack(stack.endpoint, settings, stack.handler, stack.s3, stack.sqs, stack.ddb)


def _calls(stack: Stack) -> Counter[str]:
    """Every AWS call the functions make from now on, by operation."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[f"{model.service_model.service_name}.{model.name}"] += 1

    for service in ("sqs", "dynamodb", "s3"):
        clients.client(service).meta.events.register("before-call", count)
    return seen


def _received(stack: Stack) -> list[dict[str, Any]]:
    got = stack.sqs.receive_message(
        QueueUrl=stack.settings.sink_queue_url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    return list(got.get("Messages", []))


def _sink_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    records = []
    for message in messages:
        record = sqs_record(message["Body"], message_id=message["MessageId"])
        record["attributes"]["MessageGroupId"] = message["Attributes"]["MessageGroupId"]
        records.append(record)
    return {"Records": records}


def _sink_runner(stack: Stack, store: MemoryTaskStore) -> SinkRunner:
    catalog = DynamoCatalog(stack.settings.catalog_table)
    sink = LabelStudioSink(
        tasks=store,
        catalog=catalog,
        routes=ProjectRoutes(routes={"main": PROJECT}),
        failures=FailureRecorder(catalog, SqsFailureQueue(stack.settings.failure_queue_url)),
    )
    return SinkRunner(sink, max_receive_count=2)


def test_a_batch_costs_one_send_and_the_sink_makes_one_task_per_object(
    sinking: Stack, media: MediaSet
) -> None:
    bodies = [sinking.body(f"img/{n}.png", media.bytes("plain.png")) for n in range(3)]
    calls = _calls(sinking)
    assert sinking.deliver(*bodies) == {"batchItemFailures": []}
    assert calls["sqs.SendMessageBatch"] == 1 and calls["sqs.SendMessage"] == 0
    [message] = _received(sinking)
    assert message["Attributes"]["MessageGroupId"] == "main"
    batch = ChangeBatch.model_validate_json(message["Body"])
    assert sorted(c.key for c in batch.changes) == ["img/0.png", "img/1.png", "img/2.png"]

    store = MemoryTaskStore({PROJECT: frozenset({"image"})})
    sink = load_function("sink")
    event = _sink_event([message])
    for _ in range(2):  # the message delivered twice: still one task per object
        result = sink.lambda_handler(event, FakeContext(), runner=_sink_runner(sinking, store))
        assert result == {"batchItemFailures": []}
    assert store.uris(PROJECT) == [f"s3://drop/img/{n}.png" for n in range(3)]


def test_a_redelivered_ingest_batch_publishes_the_same_message_again(
    sinking: Stack, media: MediaSet
) -> None:
    """The replayed outcome is published again, identical: SQS's FIFO deduplication (5
    minutes) drops it on AWS, and after that the sink applies it as a no-op."""
    sent: list[dict[str, Any]] = []
    clients.client("sqs").meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: sent.extend(params["Entries"]),
    )
    body = sinking.body("img/a.png", media.bytes("plain.png"))
    sinking.deliver(body)
    sinking.deliver(body, receive_count=2)
    assert len(sent) == 2
    assert sent[0] == sent[1] and sent[0]["MessageGroupId"] == "main"
    assert len(sent[0]["MessageDeduplicationId"]) == 64


def test_a_failed_publish_retries_the_messages_that_had_changes(
    sinking: Stack, media: MediaSet
) -> None:
    registered = sinking.body("img/a.png", media.bytes("plain.png"))
    ignored = sinking.body(".DS_Store", b"x")
    broken = sinking.settings.model_copy(
        update={"sink_queue_url": sinking.settings.sink_queue_url + "-gone"}
    )
    response = sinking.deliver(registered, ignored, runner=build_runner(broken))
    assert len(response["batchItemFailures"]) == 1  # only the registration's message
    assert _received(sinking) == []
    assert sinking.deliver(registered, receive_count=2) == {"batchItemFailures": []}
    [message] = _received(sinking)
    assert [c.key for c in ChangeBatch.model_validate_json(message["Body"]).changes] == [
        "img/a.png"
    ]


def test_sink_failures_are_failure_records_of_their_own(sinking: Stack, media: MediaSet) -> None:
    sinking.deliver(sinking.body("img/a.png", media.bytes("plain.png")))
    [message] = _received(sinking)
    store = MemoryTaskStore({PROJECT: frozenset({"image"})})
    store.down = True
    sink = load_function("sink")
    runner = _sink_runner(sinking, store)
    event = _sink_event([message])
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"  # its last attempt
    result = sink.lambda_handler(event, FakeContext(), runner=runner)
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    [record] = [r for r in sinking.failure_messages() if r.stage is Stage.SINK]
    assert (record.key, record.error_code) == ("img/a.png", ErrorCode.SINK_UNAVAILABLE)
    [stored] = [f for f in sinking.reader.failures() if f.stage is Stage.SINK]
    assert stored.event_id.endswith("#sink")
    assert store.uris(PROJECT) == []


def test_an_overwrite_in_an_update_dataset_rewrites_its_task(
    sinking: Stack, media: MediaSet
) -> None:
    store = MemoryTaskStore({PROJECT: frozenset({"image"})})
    catalog = DynamoCatalog(sinking.settings.catalog_table)
    runner = SinkRunner(
        LabelStudioSink(
            tasks=store,
            catalog=catalog,
            routes=ProjectRoutes(routes={"live": PROJECT}),
            failures=FailureRecorder(catalog, SqsFailureQueue(sinking.settings.failure_queue_url)),
        ),
        max_receive_count=2,
    )
    sink = load_function("sink")
    first, second = media.bytes("plain.png"), media.bytes("portrait.jpg")
    for data in (first, second):
        assert sinking.deliver(sinking.body("updates/a.png", data)) == {"batchItemFailures": []}
        messages = _received(sinking)
        assert sink.lambda_handler(_sink_event(messages), FakeContext(), runner=runner) == {
            "batchItemFailures": []
        }
        for message in messages:
            sinking.sqs.delete_message(
                QueueUrl=sinking.settings.sink_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    [task] = store.tasks[PROJECT].values()
    assert task.meta["size"] == len(second) and task.meta["dataset"] == "live"
    kinds = sorted(o.kind for o in sinking.reader.ledger()[0] if o.key == "updates/a.png")
    assert kinds == [OutcomeKind.REGISTERED, OutcomeKind.UPDATED]
