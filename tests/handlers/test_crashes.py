"""The function dying mid-item: the process ends (SystemExit stands in for a kill: nothing
after it runs, nothing is cleaned up) after the catalog write and before the manifest
append, or after the append and before the batch response. SQS redelivers the message
after the visibility timeout, which is longer than the function's deadline; the redelivery
must complete the item with no duplicate and no loss."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from media_ingest.adapters.catalog import DynamoCatalog
from media_ingest.adapters.manifests import S3PartStore
from tests.handlers.conftest import FakeContext, Stack
from tests.handlers.test_ingest_handler import kinds
from tests.support.events import sqs_record
from tests.support.media import MediaSet

DEADLINE_MS = 300


class _Context(FakeContext):
    def get_remaining_time_in_millis(self) -> int:
        return DEADLINE_MS


class Killed(SystemExit):
    pass


def _die_after(original: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise Killed(137)

    return call


def _deliver(stack: Stack, body: str, receive_count: int) -> dict[str, Any]:
    # The short deadline stands for the idempotency record's expiry only: the probe is not
    # held to it (with 300 ms left, the runner would rightly not start one).
    stack.runner.deadline = None
    event = {"Records": [sqs_record(body, receive_count, message_id="m1")]}
    result: dict[str, Any] = stack.handler.lambda_handler(event, _Context(), runner=stack.runner)
    return result


@pytest.mark.parametrize(
    ("cls", "method"),
    [(DynamoCatalog, "put_new"), (S3PartStore, "write_part")],
    ids=["after the catalog write", "after the manifest append"],
)
def test_a_killed_function_is_completed_by_the_redelivery(
    stack: Stack, media: MediaSet, cls: type, method: str
) -> None:
    body = stack.body("crash/clip.mp4", media.bytes("clip.mp4"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, method, _die_after(getattr(cls, method)))
        with pytest.raises(Killed):
            _deliver(stack, body, receive_count=1)
    # That process is gone; another execution environment gets the redelivery, after the
    # visibility timeout, which outlasts the function's deadline.
    time.sleep(DEADLINE_MS / 1000 + 0.2)
    assert _deliver(stack, body, receive_count=2) == {"batchItemFailures": []}
    assert len(stack.reader.items()) == 1
    assert stack.manifest_urls() == ["https://drop.s3.us-east-1.amazonaws.com/crash/clip.mp4"]
    assert kinds(stack) == {"registered": 1}
    # And once more, as SQS may: still nothing twice.
    assert _deliver(stack, body, receive_count=3) == {"batchItemFailures": []}
    assert len(stack.manifest_urls()) == 1 and kinds(stack) == {"registered": 1}
