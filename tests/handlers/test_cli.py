"""The operator CLI against a moto stack holding real ingestion results."""

from __future__ import annotations

import json

import boto3
import pytest

from media_ingest.cli import main, table
from tests.handlers.conftest import Stack
from tests.support.media import MediaSet


@pytest.fixture
def deployed(stack: Stack, media: MediaSet) -> Stack:
    """A CloudFormation stack whose outputs name the fixture's resources, plus a small drop."""
    outputs = {
        "DropBucketName": "drop", "RegistryTableName": stack.settings.catalog_table,
        "ManifestBucketName": "manifests", "ManifestPrefix": "manifests/",
        "IngestQueueUrl": stack.sqs.create_queue(QueueName="ingest")["QueueUrl"],
        "DeadLetterQueueUrl": stack.sqs.create_queue(QueueName="dlq")["QueueUrl"],
        "FailureQueueUrl": stack.settings.failure_queue_url,
    }  # fmt: skip
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    cfn = boto3.client("cloudformation", endpoint_url=stack.endpoint)
    cfn.create_stack(StackName="media-ingest", TemplateBody=json.dumps(template))
    stack.deliver(
        stack.body("v/clip.mp4", media.bytes("clip.mp4")),
        stack.body("v/clip.mp4", media.bytes("clip.mp4")),
        stack.body("a/tone.wav", media.bytes("tone.wav")),
        stack.body("bad.mp4", media.bytes("truncated.mp4")),
        stack.body("x/.DS_Store", b"junk"),
    )
    return stack


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["--stack", "media-ingest", *argv]) == 0
    return capsys.readouterr().out


def test_status_counts_every_outcome(deployed: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    state = json.loads(run(capsys, "status", "--json"))
    assert state["events"] == 5
    assert state["outcomes"] == {
        "registered": 2,
        "duplicate": 1,
        "updated": 0,
        "failed": 1,
        "ignored": 1,
    }
    assert state["accounted"] is True
    human = run(capsys, "status")
    assert "events received: 5" in human and "all events accounted for" in human


def test_items_failures_and_manifests(deployed: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    items = json.loads(run(capsys, "items", "--json"))
    assert sorted(i["key"] for i in items) == ["a/tone.wav", "v/clip.mp4"]
    human = run(capsys, "items")
    assert "320x240 29.97fps" in human and "44.1kHz 2ch" in human
    failures = json.loads(run(capsys, "failures", "--json"))
    assert [(f["key"], f["error_code"]) for f in failures] == [("bad.mp4", "CORRUPT_MEDIA")]
    assert "CORRUPT_MEDIA" in run(capsys, "failures")
    parts = json.loads(run(capsys, "manifests", "--json"))
    assert [(p["dataset"], p["number"], p["entries"], p["sealed"]) for p in parts] == [
        ("main", 1, 2, False)
    ]
    assert "s3://manifests/manifests/main/part-00001.json" in run(capsys, "manifests")


def test_unknown_stack_is_a_clear_error(
    deployed: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stack", "nope", "status"]) == 2
    assert "stack 'nope' not found" in capsys.readouterr().err


def test_table_aligns_columns() -> None:
    assert table(["a", "bb"], [("xxx", 1)]).splitlines() == ["a    bb", "---  --", "xxx  1"]
