"""Handler tests: the real Lambda entry point against a moto server on loopback.

A moto *server* (not the in-process mock) because ffprobe, a separate process, must
range-read the presigned URL exactly as it does from S3.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from media_ingest.adapters import clients
from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.records import FailureRecord
from media_ingest.settings import Settings
from media_ingest.wiring import build_runner
from tests.support.events import s3_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]


def load_function(name: str) -> ModuleType:
    """A function's app.py, imported from functions/<name>/ as Lambda would."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_app", ROOT / "functions" / name / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    function_name = "media-ingest-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:media-ingest-test"
    memory_limit_in_mb = 1024
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/test"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Stack:
    endpoint: str
    settings: Settings
    handler: Any
    s3: Any
    sqs: Any
    ddb: Any
    sequencer: Iterator[int] = field(default_factory=lambda: itertools.count(0x1000))

    def put(self, key: str, data: bytes) -> dict[str, Any]:
        """Put an object; return the S3 event record fields S3 would send for it."""
        put = self.s3.put_object(Bucket="drop", Key=key, Body=data)
        return {
            "size": len(data),
            "etag": put["ETag"].strip('"'),
            "sequencer": f"{next(self.sequencer):016X}",
        }

    def body(self, key: str, data: bytes) -> str:
        return s3_body("drop", key, **self.put(key, data))

    def deliver(self, *bodies: str, receive_count: int = 1, runner: Any = None) -> dict[str, Any]:
        event = {"Records": [sqs_record(b, receive_count) for b in bodies]}
        result: dict[str, Any] = self.handler.lambda_handler(
            event, FakeContext(), runner=runner or self.runner
        )
        return result

    def __post_init__(self) -> None:
        self.runner = build_runner(self.settings)
        self.reader = CatalogReader(self.settings.catalog_table)

    def failure_messages(self) -> list[FailureRecord]:
        got = self.sqs.receive_message(
            QueueUrl=self.settings.failure_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [FailureRecord.model_validate_json(m["Body"]) for m in got.get("Messages", [])]

    def manifest_parts(self, dataset: str = "main") -> list[dict[str, Any]]:
        listed = self.s3.list_objects_v2(Bucket="manifests", Prefix=f"manifests/{dataset}/part-")
        return [
            json.loads(self.s3.get_object(Bucket="manifests", Key=o["Key"])["Body"].read())
            for o in sorted(listed.get("Contents", []), key=lambda o: o["Key"])
        ]

    def manifest_urls(self, dataset: str = "main") -> list[str]:
        return [
            entry.get("objectUrl") or entry.get("objectUrl_0")
            for part in self.manifest_parts(dataset)
            for name, entries in part.items()
            if isinstance(entries, list)
            for entry in entries
        ]


GROUP_ROUTES = '{"frames/": "image_groups", "seq/": "image_sequences"}'


def create_group_table(ddb: Any, name: str) -> None:
    """The GroupTable of template.yaml: pk/sk, and DueIndex (waiting, due_at)."""
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "waiting", "AttributeType": "S"},
            {"AttributeName": "due_at", "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "DueIndex",
                "KeySchema": [
                    {"AttributeName": "waiting", "KeyType": "HASH"},
                    {"AttributeName": "due_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )


@pytest.fixture
def grouped(stack: Stack) -> Stack:
    """The same stack with grouping on: the group table, two grouping prefixes."""
    create_group_table(stack.ddb, "groups")
    settings = stack.settings.model_copy(
        update={
            "group_table": "groups",
            "group_routes": Settings.model_validate(
                {
                    "CATALOG_TABLE": "c",
                    "MANIFEST_BUCKET": "m",
                    "FAILURE_QUEUE_URL": "q",
                    "GROUP_ROUTES": GROUP_ROUTES,
                }
            ).group_routes,
        },
    )
    return Stack(stack.endpoint, settings, stack.handler, stack.s3, stack.sqs, stack.ddb)


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "media-ingest-test")
    clients.client.cache_clear()
    s3: Any = boto3.client("s3", endpoint_url=moto_endpoint)
    sqs: Any = boto3.client("sqs", endpoint_url=moto_endpoint)
    ddb: Any = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="drop")
    s3.create_bucket(Bucket="manifests")
    failure_url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    ddb.create_table(
        TableName="catalog",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    settings = Settings(
        CATALOG_TABLE="catalog",
        MANIFEST_BUCKET="manifests",
        FAILURE_QUEUE_URL=failure_url,
        DEFAULT_DATASET="main",
        DATASET_ROUTES='{"updates/": "live"}',
        UPDATE_DATASETS="live",
    )
    yield Stack(moto_endpoint, settings, load_function("ingest"), s3, sqs, ddb)
    clients.client.cache_clear()
