"""Tests of the benchmark's own pure parts (not part of the project's suite).

.venv/bin/pytest bench/test_bench.py
"""

from __future__ import annotations

import http.client
import socket
import struct
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.api_calls import CallCounter
from bench.backfill import FILES, Plan, simulate
from bench.cold_start import heavy_imports, parse_importtime, without_boto3
from bench.cost import item_size
from bench.latency import Latency
from bench.manifest_growth import entries, writer_over
from bench.media import mkv_layout, mp4_layout
from bench.memory_s3 import MemoryS3
from bench.proxy import CountingProxy, send_counted
from bench.s3files import S3FileServer, parse_range
from bench.simclock import VirtualTime


class ShortSocket:
    """Accepts at most `per_call` bytes per send, then fails after `budget` bytes."""

    def __init__(self, per_call: int, budget: int) -> None:
        self.per_call, self.budget, self.got = per_call, budget, 0

    def send(self, data: memoryview) -> int:
        if self.got >= self.budget:
            raise BrokenPipeError
        n = min(len(data), self.per_call, self.budget - self.got)
        self.got += n
        return n


def test_send_counted_counts_partial_sends() -> None:
    assert send_counted(ShortSocket(per_call=3, budget=100), b"x" * 10) == 10


def test_send_counted_reports_what_went_out_before_the_peer_hung_up() -> None:
    with pytest.raises(BrokenPipeError) as caught:
        send_counted(ShortSocket(per_call=4, budget=7), b"x" * 10)
    assert caught.value.sent == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=10-", (10, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=1000-", None),
    ],
)
def test_parse_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.fixture
def served(tmp_path: Path) -> Any:
    (tmp_path / "obj.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    with S3FileServer({"b": tmp_path}) as upstream, CountingProxy(upstream.url) as proxy:
        yield proxy


def test_proxy_counts_a_range_read_exactly(served: CountingProxy) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/b/obj.bin?X-Amz-Signature=x", headers={"Range": "bytes=256-1279"})
    response = conn.getresponse()
    body = response.read()
    served.wait_idle()
    assert response.status == 206 and body == bytes(range(256)) * 4
    [record] = served.served()
    assert (record.body_bytes, record.complete, record.path) == (1024, True, "/b/obj.bin")


def test_proxy_charges_a_client_that_hangs_up_less_than_the_object(
    served: CountingProxy, tmp_path: Path
) -> None:
    # Far larger than loopback socket buffers can absorb (an idle machine autotunes them
    # to megabytes), so the hang-up really comes before the end.
    size = 64 * 1024 * 1024
    (tmp_path / "big.bin").write_bytes(bytes(size))
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /b/big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-\r\n\r\n")
        got = b""
        while len(got) < 2000:  # headers and the start of the body
            got += sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    served.wait_idle()
    [record] = served.served()
    assert not record.complete
    assert len(got) - got.index(b"\r\n\r\n") - 4 <= record.body_bytes < size


def test_proxy_answers_missing_keys_like_s3(served: CountingProxy) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/b/nope.bin")
    response = conn.getresponse()
    assert response.status == 404 and b"<Code>NoSuchKey</Code>" in response.read()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_mp4_layout_finds_moov_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(
        box(b"ftyp", b"isom" * 4) + box(b"mdat", b"\0" * 5000) + box(b"moov", b"m" * 300)
    )
    found = mp4_layout(path)
    assert found.index_bytes == 308
    assert found.metadata_bytes == 24 + 8 + 308  # ftyp + mdat header + moov
    assert not found.index_at_start


def _sized(ident: bytes, payload: bytes) -> bytes:
    return ident + (0x4000 | len(payload)).to_bytes(2) + payload  # 2-byte size vint


def test_mkv_layout_counts_seekhead_and_cues(tmp_path: Path) -> None:
    segment = (
        _sized(bytes.fromhex("114D9B74"), b"s" * 20)  # SeekHead
        + _sized(bytes.fromhex("1654AE6B"), b"t" * 30)  # Tracks
        + _sized(bytes.fromhex("1F43B675"), b"c" * 500)  # Cluster
        + _sized(bytes.fromhex("1C53BB6B"), b"q" * 40)  # Cues
    )
    path = tmp_path / "a.mkv"
    path.write_bytes(
        _sized(bytes.fromhex("1A45DFA3"), b"h" * 10) + _sized(bytes.fromhex("18538067"), segment)
    )
    found = mkv_layout(path)
    assert found.index_bytes == (4 + 2 + 20) + (4 + 2 + 40)
    assert found.metadata_bytes == 16 + 6 + 26 + 36 + 46  # header, segment header, S+T+C
    assert not found.index_at_start


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:        10 |         10 |       botocore
import time:        20 |         30 |     boto3
import time:         5 |         35 |   powertools.idempotency
import time:         7 |         42 | media_ingest.ingest.batch_runner
import time:         3 |          3 |   typing_extras
import time:         1 |         46 | app
"""


def test_parse_importtime_rebuilds_the_tree() -> None:
    [batch, app] = parse_importtime(IMPORTTIME)
    assert (batch.name, batch.cumulative_us) == ("media_ingest.ingest.batch_runner", 42)
    assert batch.children[0].children[0].name == "boto3"
    assert [c.name for c in app.children] == ["typing_extras"]


def test_heavy_imports_are_third_party_children_of_our_modules() -> None:
    [batch, _] = parse_importtime(IMPORTTIME)
    found = heavy_imports(batch)
    assert list(found) == [("media_ingest.ingest.batch_runner", "powertools.idempotency")]
    assert without_boto3(found[("media_ingest.ingest.batch_runner", "powertools.idempotency")]) == 5


def test_memory_s3_honours_conditional_writes() -> None:
    s3 = MemoryS3()
    first = s3.put_object(Bucket="b", Key="k", Body=b"abc", Metadata={}, IfNoneMatch="*")
    with pytest.raises(Exception, match="PreconditionFailed"):
        s3.put_object(Bucket="b", Key="k", Body=b"x", Metadata={}, IfNoneMatch="*")
    with pytest.raises(Exception, match="PreconditionFailed"):
        s3.put_object(Bucket="b", Key="k", Body=b"x", Metadata={}, IfMatch='"stale"')
    s3.put_object(Bucket="b", Key="k", Body=b"xy", Metadata={}, IfMatch=first["ETag"])
    assert (s3.written_bytes, s3.puts) == (7, 4)  # refused bodies were sent too


def test_manifest_writer_over_memory_s3_seals_parts() -> None:
    s3 = MemoryS3()
    writer = writer_over(s3)
    writer.max_entries = 3
    assert writer.append("d", entries(7)) == 7
    parts = sorted(k for k in s3.objects if "/part-" in k)
    assert parts == [f"manifests/d/part-0000{n}.json" for n in (1, 2, 3)]
    assert s3.objects[parts[0]][2]["sealed"] == "true"


class FakeModel:
    def __init__(self, service: str, name: str) -> None:
        self.name = name
        self.service_model = type("ServiceModel", (), {"service_id": service})()


def test_call_counter_excludes_only_probe_range_reads() -> None:
    counter = CallCounter(probe_bucket="drop")
    calls = [
        ("S3", "GetObject", {"Bucket": "drop", "Range": "bytes=0-1"}),
        ("S3", "GetObject", {"Bucket": "drop"}),
        ("S3", "GetObject", {"Bucket": "manifests", "Range": "bytes=0-1"}),
        ("DynamoDB", "PutItem", {}),
    ]
    for service, name, params in calls:
        context: dict[str, Any] = {}
        counter._remember(params=params, context=context)
        counter._count(model=FakeModel(service, name), context=context)
    assert counter.excluded == Counter({"S3.GetObject": 1})
    assert counter.counted == Counter({"S3.GetObject": 2, "DynamoDB.PutItem": 1})


def test_e2e_is_skipped_with_the_documented_message_without_localstack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench import Context, e2e  # noqa: PLC0415 - only this test needs it

    monkeypatch.setattr(e2e, "localstack_running", lambda: False)
    ctx = Context(quick=True, cache=tmp_path, ffprobe="ffprobe", ffprobe_version="-", e2e=True)
    [section] = e2e.run(ctx)
    assert section.skipped == "skipped: LocalStack not running (make localstack-start)"


def test_virtual_time_runs_actors_in_time_order_and_charges_their_cpu() -> None:
    clock = VirtualTime(cpu_scale=0.0)  # CPU free: only the sleeps move the clocks
    seen: list[tuple[str, float]] = []

    def actor(name: str, naps: list[float]) -> None:
        for nap in naps:
            clock.sleep(nap)
            seen.append((name, clock.seconds()))

    clock.spawn("a", actor, "a", [0.3, 0.3])
    clock.spawn("b", actor, "b", [0.5])
    assert clock.run() == pytest.approx(0.6)
    assert [n for n, _ in seen] == ["a", "b", "a"]
    assert [round(t, 6) for _, t in seen] == [0.3, 0.5, 0.6]

    busy = VirtualTime(cpu_scale=1.0)

    def spin() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        busy.sleep(0)

    busy.spawn("spin", spin)
    assert busy.run() >= 0.05  # its CPU moved its clock


def test_memory_s3_lists_pages_and_delays_by_the_latency() -> None:
    slept: list[float] = []

    class Clock:
        def sleep(self, seconds: float) -> None:
            slept.append(seconds)

        def now(self) -> Any:
            return datetime.now(UTC)

    s3 = MemoryS3(latency=Latency(20, 10), clock=Clock())
    for n in range(1, 2502):
        s3.objects[f"m/d/part-{n:05d}.json"] = (b"x", '"e"', {}, datetime.now(UTC))
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="b", Prefix="m/d/part-"))
    assert [len(p["Contents"]) for p in pages] == [1000, 1000, 501]
    slept.clear()
    s3.put_object(Bucket="b", Key="k", Body=b"y" * 1_000_000, Metadata={})
    assert sum(slept) == pytest.approx(0.020 + 0.1)  # first byte, then 1 MB at 10 MB/s


def test_the_backfill_model_ramps_and_stops_at_the_first_ceiling() -> None:
    plan = Plan("p", batch=10, batch_seconds=0.5, manifest_ceiling=1e9, dollars_per_file=0.0)
    slow = simulate(plan, concurrency=10, dynamodb_writes=1e9)
    assert slow.limited_by == "functions"
    assert slow.seconds == pytest.approx(FILES / (10 * 10 / 0.5), rel=0.01)
    capped = simulate(plan, concurrency=1000, dynamodb_writes=4000)
    assert capped.limited_by == "DynamoDB writes"
    # five functions at first, 300 more a minute: the ramp takes its share of the time
    assert capped.seconds > FILES / 4000


def test_dynamodb_item_size_counts_names_and_values() -> None:
    row = {"pk": {"S": "item#ab"}, "docz": {"B": b"\x00" * 10}, "n": {"N": "12345"}}
    assert item_size(row) == (2 + 7) + (4 + 10) + (1 + 4)
