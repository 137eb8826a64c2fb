"""The shared clients count their API calls (what `reconcile` reports it cost)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from media_ingest.adapters import clients


@pytest.fixture
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clients.client.cache_clear()
    with mock_aws():
        yield
    clients.client.cache_clear()


def test_every_call_of_a_shared_client_is_counted_by_operation(fresh_clients: None) -> None:
    before = clients.calls.snapshot()
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="counted")
    s3.list_objects_v2(Bucket="counted")
    s3.list_objects_v2(Bucket="counted")
    spent = clients.calls.snapshot() - before
    assert spent == {"S3.CreateBucket": 1, "S3.ListObjectsV2": 2}
