"""Faults on LocalStack through the real event path (S3 -> SQS -> Lambda): the function's
process killed right after the catalog write and right after the manifest append, a real
function timeout, and poison messages that must reach the dead-letter queue after
MaxReceiveCount receives. A second stack is deployed for them, with short timeouts and the
template's FaultInjection parameter (docs/operations.md), so the redeliveries come within
seconds instead of the default 18 minutes."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from media_ingest.ops.status import manifest_parts
from media_ingest.records import OutcomeKind
from tests.integration import diagnostics
from tests.integration.conftest import Deployed, deploy, stack_name
from tests.support.media import MediaSet

TIMEOUT_S, VISIBILITY_S, RECEIVES = 15, 30, 4
FAULTS = {
    "chaos/crash-registered/": "crash@registered",
    "chaos/crash-appended/": "crash@appended",
    "chaos/hang-registered/": "hang@registered",
}
POISON = [
    "this is not an S3 event",
    json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}),
]


@pytest.fixture(scope="module")
def chaos() -> Deployed:
    spec = ",".join(f"{fault}:{prefix}" for prefix, fault in FAULTS.items())
    return deploy(
        stack_name("chaos"),
        f"FunctionTimeoutSeconds={TIMEOUT_S}",
        f"IngestVisibilityTimeoutSeconds={VISIBILITY_S}",
        f"MaxReceiveCount={RECEIVES}",
        f"FaultInjection={spec}",
    )


def test_kills_a_timeout_and_poison_messages_lose_nothing_and_repeat_nothing(
    chaos: Deployed, media: MediaSet
) -> None:
    run = chaos.prefix()
    faulted = {prefix: f"{prefix}{run}clip.mp4" for prefix in FAULTS}
    calm = [f"chaos/calm/{run}{i}.png" for i in range(6)]
    clip, png = media.bytes("clip.mp4"), media.bytes("plain.png")
    keys = {chaos.drop(key, clip) for key in faulted.values()}
    keys |= {chaos.drop(key, png) for key in calm}
    for body in POISON:
        chaos.sqs.send_message(QueueUrl=chaos.outputs.IngestQueueUrl, MessageBody=body)

    # Up to three kills in a row can hit one batch, each costing a visibility timeout.
    outcomes = chaos.wait(keys, timeout=len(FAULTS) * (VISIBILITY_S + TIMEOUT_S) + 300)
    assert Counter(o.key for o in outcomes) == Counter(keys)  # one outcome per event
    assert {o.kind for o in outcomes} == {OutcomeKind.REGISTERED}
    items = [i.key for i in chaos.reader().items() if i.key in keys]
    assert sorted(items) == sorted(keys)
    # The last batch's manifest append follows its outcomes by a moment.
    deadline = time.monotonic() + 60
    while len(urls := [u for u in _manifest_urls(chaos) if run in u]) < len(keys):
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(urls) == len(keys) and len(set(urls)) == len(keys)

    # Every fault really fired, once: the redelivery found its write done.
    log = diagnostics.function_log(chaos.name)
    fired = [json.loads(ln) for ln in log if '"fault injected"' in ln]
    assert Counter(f["fault_key"] for f in fired if run in f["fault_key"]) == {
        key: 1 for key in faulted.values()
    }
    assert any(f"Task timed out after {TIMEOUT_S:.2f} seconds" in ln for ln in log)

    # The poison messages: MaxReceiveCount receives, then the dead-letter queue, counted.
    deadline = time.monotonic() + RECEIVES * (VISIBILITY_S + TIMEOUT_S) + 300
    while (dead := _dead_lettered(chaos)) < len(POISON) and time.monotonic() < deadline:
        time.sleep(5)
    assert dead == len(POISON), diagnostics.describe(chaos.name, chaos.outputs)
    status = json.loads(chaos.cli("status", "--json"))
    queues = {q["name"]: q for q in status["queues"]}
    assert queues["dead-letter"]["visible"] == len(POISON)
    assert status["events"] == sum(status["outcomes"].values()) + status["in_progress"]
    assert sorted(_peek(chaos, chaos.outputs.DeadLetterQueueUrl)) == sorted(POISON)


def _manifest_urls(stack: Deployed) -> list[str]:
    urls: list[str] = []
    for part in manifest_parts(stack.outputs):
        body = stack.s3.get_object(Bucket=stack.outputs.ManifestBucketName, Key=part.key)
        doc = json.loads(body["Body"].read())
        urls += [e["objectUrl"] for section in ("videos", "images") for e in doc.get(section, [])]
    return urls


def _dead_lettered(stack: Deployed) -> int:
    attrs = stack.sqs.get_queue_attributes(
        QueueUrl=stack.outputs.DeadLetterQueueUrl,
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def _peek(stack: Deployed, queue_url: str) -> list[str]:
    """The bodies on a queue, left in place (visibility 0)."""
    got = stack.sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1
    ).get("Messages", [])
    return [m["Body"] for m in got]
