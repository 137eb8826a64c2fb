"""Backfill planning: rules, already-registered objects, resumable positions, rate bound."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.events import BACKFILL_EVENT, parse_body
from media_ingest.ops.backfill import (
    SSE_C,
    Backfill,
    BackfillState,
    ListedObject,
    Page,
    Position,
    RateLimit,
    Source,
    SourceUnreadable,
    bucket_names,
    check_readable,
)
from media_ingest.routing import Router
from media_ingest.urls import object_url

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class ListLister:
    """Keys in order, `page_size` per page, resumable after a key (like ListObjectsV2)."""

    def __init__(self, keys: list[str], page_size: int = 7) -> None:
        self.keys = sorted(keys)
        self.page_size = page_size

    def pages(self, position: Position) -> Iterator[Page]:
        keys = [k for k in self.keys if position.after_key is None or k > position.after_key]
        for start in range(0, len(keys), self.page_size):
            chunk = keys[start : start + self.page_size]
            objects = [
                ListedObject(bucket="old", key=k, size=10, etag=f"e-{k}", last_modified=T0)
                for k in chunk
            ]
            yield Page(objects=objects, positions=[Position(after_key=k) for k in chunk])

    def count(self) -> int:
        return len(self.keys)


class Registered:
    def __init__(self, pairs: set[tuple[str, str]] | None = None) -> None:
        self.pairs = pairs or set()
        self.asked = 0

    def registered(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        self.asked += len(pairs)
        return {p for p in pairs if p in self.pairs}


class Queue:
    def __init__(self, fail_after: int | None = None) -> None:
        self.bodies: list[str] = []
        self.fail_after = fail_after

    def send(self, bodies: list[str]) -> None:
        assert 1 <= len(bodies) <= 10
        if self.fail_after is not None and len(self.bodies) >= self.fail_after:
            raise KeyboardInterrupt
        self.bodies.extend(bodies)

    def keys(self) -> list[str]:
        return [e.key for b in self.bodies for e in parse_body(b)]


ROUTER = Router("main", {"cam2/": "second"}, (".DS_Store", "*/"))


def make(
    lister: ListLister,
    tmp_path: Path,
    registered: Registered | None = None,
    queue: Queue | None = None,
) -> Backfill:
    return Backfill(
        lister=lister,
        catalog=registered or Registered(),
        queue=queue or Queue(),
        router=ROUTER,
        region="us-east-1",
        url_style="virtual",
        rate=RateLimit(1e9, sleep=lambda _: None),
        state_path=tmp_path / "state.json",
    )


def test_source_urls_are_parsed() -> None:
    assert Source.parse("s3://bucket/some/prefix/") == Source(
        bucket="bucket", prefix="some/prefix/"
    )
    assert Source.parse("s3://bucket") == Source(bucket="bucket", prefix="")
    with pytest.raises(ValueError, match="s3://"):
        Source.parse("bucket/prefix")


def test_every_object_is_enqueued_once_ignored_or_known(tmp_path: Path) -> None:
    keys = [f"a/{i:03d}.mp4" for i in range(25)] + ["a/.DS_Store", "folder/", "cam2/x.png"]
    known = Registered({("main", object_url("old", "a/003.mp4", "us-east-1"))})
    run = make(ListLister(keys), tmp_path, known)
    state = run.run(BackfillState(source="s3://old/"))
    queue = run.queue
    assert isinstance(queue, Queue)
    assert state.done
    assert state.counts.model_dump() == {
        "listed": 28,
        "enqueued": 25,
        "ignored": 2,
        "registered": 1,
    }
    assert sorted(queue.keys()) == sorted(set(keys) - {"a/.DS_Store", "folder/", "a/003.mp4"})
    assert BackfillState.load(tmp_path / "state.json") == state


def test_backfill_bodies_are_s3_events_that_repeat_exactly(tmp_path: Path) -> None:
    key = "dir/my clip+1 ✓ été.mp4"
    first, second = Queue(), Queue()
    make(ListLister([key]), tmp_path, queue=first).run(BackfillState(source="s3://old/"))
    make(ListLister([key]), tmp_path, queue=second).run(BackfillState(source="s3://old/"))
    [event] = parse_body(first.bodies[0])
    assert (event.bucket, event.key, event.size, event.etag) == ("old", key, 10, f"e-{key}")
    assert event.event_name == BACKFILL_EVENT and event.event_time == T0
    # The same object backfilled twice is the same event: one idempotency key, one outcome.
    assert first.bodies == second.bodies
    assert parse_body(second.bodies[0])[0].event_id == event.event_id


def test_a_limit_stops_early_and_a_rerun_resumes_where_it_stopped(tmp_path: Path) -> None:
    keys = [f"k{i:03d}" for i in range(53)]
    queue = Queue()
    run = make(ListLister(keys, page_size=20), tmp_path, queue=queue)
    state = run.run(BackfillState(source="s3://old/"), limit=23)
    assert not state.done and state.counts.listed == 23
    assert queue.keys() == keys[:23]
    resumed = BackfillState.load(tmp_path / "state.json")
    assert resumed is not None and resumed.position.after_key == "k022"
    final = run.run(resumed)
    assert final.done and final.counts.listed == 53
    assert queue.keys() == keys


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), page=st.integers(1, 25), stop=st.integers(0, 8))
def test_an_interruption_loses_nothing_and_repeats_at_most_one_batch(
    tmp_path_factory: pytest.TempPathFactory, n: int, page: int, stop: int
) -> None:
    tmp = tmp_path_factory.mktemp("bf")
    keys = [f"k{i:03d}" for i in range(n)]
    queue = Queue(fail_after=stop * 10)
    run = make(ListLister(keys, page_size=page), tmp, queue=queue)
    try:
        run.run(BackfillState(source="s3://old/"))
    except KeyboardInterrupt:
        saved = BackfillState.load(tmp / "state.json") or BackfillState(source="s3://old/")
        queue.fail_after = None
        run.run(saved)
    sent = queue.keys()
    assert set(sent) == set(keys)
    assert len(sent) - len(set(sent)) <= 10


def test_the_rate_bound_spaces_batches() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limit = RateLimit(20, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limit.wait_for(10)
    # 50 messages at 20/s: the last batch may leave 2 s after the first.
    assert now[0] == pytest.approx(2.0)
    assert len(slept) == 4


# -- can the stack read the source at all (issue 11) ---------------------------------------
def test_a_bucket_the_stack_was_not_deployed_to_read_is_refused() -> None:
    readable = {"drop"} | bucket_names("arn:aws:s3:::archive,arn:aws-cn:s3:::cn-media")
    assert readable == {"drop", "archive", "cn-media"}
    check_readable(Source.parse("s3://archive/old/"), readable, "AES256")
    with pytest.raises(
        SourceUnreadable, match="ExtraSourceBucketArns including arn:aws:s3:::legacy"
    ):
        check_readable(Source.parse("s3://legacy/"), readable, None)


def test_objects_only_their_uploader_can_read_are_refused() -> None:
    with pytest.raises(SourceUnreadable, match="SSE-C"):
        check_readable(Source.parse("s3://drop/sealed/"), {"drop"}, SSE_C)


def test_a_head_answering_400_without_the_customer_key_is_sse_c() -> None:
    import boto3
    from botocore.stub import Stubber

    from media_ingest.adapters.listing import S3Lister

    s3 = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(s3)
    stubber.add_response("list_objects_v2", {"Contents": [{"Key": "sealed/a.png"}]})
    stubber.add_client_error("head_object", service_error_code="400", http_status_code=400)
    stubber.add_response("list_objects_v2", {"Contents": [{"Key": "kms/a.png"}]})
    stubber.add_response("head_object", {"ServerSideEncryption": "aws:kms"})
    stubber.add_response("list_objects_v2", {})
    stubber.activate()
    assert S3Lister(Source.parse("s3://b/sealed/"), client=s3).first_encryption() == SSE_C
    assert S3Lister(Source.parse("s3://b/kms/"), client=s3).first_encryption() == "aws:kms"
    assert S3Lister(Source.parse("s3://b/empty/"), client=s3).first_encryption() is None
