"""The hostile and unusual corpus (tests/support/corpus.py) through both real handlers on
moto: every object one outcome, the one its independent reader predicts, and no message
returned to the queue. The same corpus runs through the deployed stack, with memory
enforced, in tests/integration/test_corpus.py."""

from __future__ import annotations

import os
from typing import Any

import pytest

from media_ingest.wiring import build_extract_runner, build_runner
from tests.handlers.conftest import FakeContext, Stack, load_function
from tests.support.corpus import SIDECAR_SUFFIX, Case, corpus, judge, member_prefix
from tests.support.events import s3_body, sqs_record
from tests.support.media import MediaSet

PREFIX = "corpus/"


def _event(stack: Stack, key: str, data: bytes, case: Case | None = None) -> str:
    extra: dict[str, Any] = {}
    if case is not None and case.sse_c:
        extra = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(32)}
    metadata = case.metadata if case is not None else {}
    put = stack.s3.put_object(Bucket="drop", Key=key, Body=data, Metadata=metadata, **extra)
    return s3_body(
        "drop",
        key,
        size=len(data),
        etag=put["ETag"].strip('"'),
        sequencer=f"{next(stack.sequencer):016X}",
    )


def _deliver(stack: Stack, runner: Any, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        result = stack.deliver(*bodies[start : start + 10], runner=runner)
        assert result == {"batchItemFailures": []}


@pytest.mark.slow  # about 15 s: `make test` runs it, with the same corpus on LocalStack
def test_every_corpus_object_gets_the_outcome_its_reader_predicts(
    stack: Stack, media: MediaSet
) -> None:
    queue = stack.sqs.create_queue(QueueName="extract")["QueueUrl"]
    settings = stack.settings.model_copy(
        update={"extract_queue_url": queue, "drop_bucket": "drop", "sidecar_suffix": SIDECAR_SUFFIX}
    )
    ingest, extract = build_runner(settings), build_extract_runner(settings)
    extract_app = load_function("extract")
    # moto keeps SSE-C objects readable without their key: that case is the LocalStack run's.
    cases = [case for case in corpus(media) if not case.sse_c]
    bodies = []
    for case in cases:
        key = PREFIX + case.name
        for path, data in case.existing.items():
            bodies.append(_event(stack, member_prefix(key) + path, data))
        if case.sidecar is not None:
            bodies.append(_event(stack, key + SIDECAR_SUFFIX, case.sidecar))
        bodies.append(_event(stack, key, case.data, case))
    _deliver(stack, ingest, bodies)
    seen = {o["Key"] for o in stack.s3.list_objects_v2(Bucket="drop")["Contents"]}
    while True:
        got = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        messages = got.get("Messages", [])
        if not messages:
            break
        for message in messages:
            event = {"Records": [sqs_record(message["Body"])]}
            assert extract_app.lambda_handler(event, FakeContext(), runner=extract) == {
                "batchItemFailures": []
            }
            stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        listed = stack.s3.list_objects_v2(Bucket="drop")["Contents"]
        members = [o for o in listed if o["Key"] not in seen]
        seen |= {o["Key"] for o in members}
        _deliver(
            stack,
            ingest,
            [
                s3_body(
                    "drop",
                    o["Key"],
                    size=o["Size"],
                    etag=o["ETag"].strip('"'),
                    sequencer=f"{next(stack.sequencer):016X}",
                )
                for o in members
            ],
        )
    outcomes, in_progress = stack.reader.ledger()
    assert in_progress == 0
    assert judge(cases, PREFIX, outcomes, stack.reader.failures()) == []
