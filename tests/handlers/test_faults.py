"""Transient AWS faults injected into the function's AWS calls (moto server).

The accounting invariant must hold anyway: every file registered once, every URL once in
the manifests, retries bounded and visible in the metrics.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.retries import standard

from media_ingest.adapters import clients
from tests.handlers.conftest import FakeContext, Stack
from tests.handlers.test_ingest_handler import kinds
from tests.support.events import sqs_record
from tests.support.media import MediaSet

RATE = 0.2
DEADLINE_MS = 400
FILES = 40


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class FaultInjector:
    """A `before-send` hook: answers for AWS with a 500, a throttle or a timeout at `rate`."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.random = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.calls = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.calls += 1
        if self.random.random() >= self.rate:
            return None
        fault = self.random.choice(("500", "throttle", "timeout"))
        self.injected[fault] += 1
        if fault == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault == "throttle" and "dynamodb" in request.headers.get("X-Amz-Target", b"").decode():
            body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}'
            return AWSResponse(request.url, 400, HTTPHeaders(), _Raw(body))
        status = 503 if fault == "throttle" else 500
        return AWSResponse(request.url, status, HTTPHeaders(), _Raw(b""))


@pytest.fixture(params=[RATE, 0.5], ids=["20pct", "50pct"])
def faults(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[FaultInjector]:
    """At 20% the SDK's own retries absorb nearly everything; at 50% calls exhaust them (and
    the SDK's retry quota), so messages fail and are redelivered: both levels of retry."""
    # Real backoff sleeps up to seconds per retry; the schedule is not what is under test.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    injector = FaultInjector(request.param, seed=20261123)
    made = [clients.client(service) for service in ("s3", "dynamodb", "sqs")]
    for c in made:
        c.meta.events.register_first("before-send", injector)
    yield injector
    for c in made:
        c.meta.events.unregister("before-send", injector)


def test_failing_aws_calls_still_register_everything_once(
    stack: Stack, media: MediaSet, faults: FaultInjector, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ("plain.png", "clip.mp4", "tone.wav")
    bodies = {
        f"m{i}": stack.body(f"f/{i:02d}-{names[i % 3]}", media.bytes(names[i % 3]))
        for i in range(FILES)
    }
    pending, receive, rounds = dict(bodies), 1, 0
    # The short deadline stands for the idempotency records' expiry only: the probes are
    # not held to it (with 400 ms left, the runner would rightly start none).
    stack.runner.deadline = None
    while pending and rounds < 12:
        rounds += 1
        if rounds > 6:
            # Past half-rate faults the SDK's retry quota runs dry; what matters then is
            # that the outage ending finds nothing lost and nothing doubled.
            faults.rate = 0
        ids = list(pending)
        for start in range(0, len(ids), 10):
            batch = ids[start : start + 10]
            event = {"Records": [sqs_record(pending[i], receive, message_id=i) for i in batch]}
            result = stack.handler.lambda_handler(event, _ShortContext(), runner=stack.runner)
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            for message_id in set(batch) - failed:
                del pending[message_id]
        receive += 1
        # A failure can leave an INPROGRESS idempotency record (its delete failed too); it
        # expires at the function's deadline. SQS redelivers after the visibility timeout,
        # which the template sets above the function timeout: wait past the deadline too.
        time.sleep(DEADLINE_MS / 1000 + 0.1)

    assert not pending, f"{len(pending)} messages still failing after {rounds} deliveries"
    if faults.rate > RATE:
        assert rounds > 1  # some messages did go back to the queue
    assert sum(faults.injected.values()) >= 0.1 * faults.calls  # the faults really happened
    items = stack.reader.items()
    assert len(items) == FILES and len({i.object_url for i in items}) == FILES
    urls = stack.manifest_urls()
    assert len(urls) == FILES and len(set(urls)) == FILES
    assert kinds(stack) == {"registered": FILES}
    retries = sum(_metric(capsys.readouterr().out, "AwsRetries"))
    assert 0 < retries <= sum(faults.injected.values())
    print(
        f"\n{faults.calls} AWS calls, injected {dict(faults.injected)}; "
        f"{retries} retried by the SDK; all {FILES} files registered after {rounds} deliveries"
    )


class _ShortContext(FakeContext):
    def get_remaining_time_in_millis(self) -> int:
        return DEADLINE_MS


def _metric(stdout: str, name: str) -> list[float]:
    values: list[float] = []
    for line in stdout.splitlines():
        if '"_aws"' in line and f'"{name}"' in line:
            value = json.loads(line)[name]
            values += value if isinstance(value, list) else [value]
    return values
