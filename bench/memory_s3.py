"""The S3 calls S3PartStore makes, in memory, with S3's answers: conditional writes (412 for a
failed IfMatch / IfNoneMatch), 404 for a missing key, a paginated listing with LastModified.

Every call counts (per operation, and body bytes each way) and takes the time `latency`
says, through a clock: `RealClock` sleeps (threads of this process), a
`bench.simclock.VirtualTime` moves its actor in virtual time. A write is applied halfway
through its round trip (after the request and its body arrived), which is when a
concurrent write can get in before it.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from bench.latency import NONE, Latency


class Clock(Protocol):
    def sleep(self, seconds: float) -> None: ...
    def now(self) -> datetime: ...


class RealClock:
    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class MemoryS3:
    latency: Latency = NONE
    clock: Clock = field(default_factory=RealClock)
    objects: dict[str, tuple[bytes, str, dict[str, str], datetime]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    read_bytes: int = 0
    written_bytes: int = 0
    versions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def gets(self) -> int:
        return self.calls["GetObject"]

    @property
    def puts(self) -> int:
        return self.calls["PutObject"]

    def reset(self) -> None:
        self.calls.clear()
        self.read_bytes = self.written_bytes = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> MemoryS3:
        """A copy holding the same objects (bytes: immutable, so a cheap copy) and counts."""
        copied = MemoryS3(self.latency, self.clock, dict(self.objects), Counter(self.calls))
        copied.read_bytes, copied.written_bytes = self.read_bytes, self.written_bytes
        copied.versions = self.versions
        return copied

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self.clock.sleep(self.latency.first_byte_ms / 2000)
        with self.lock:
            self.calls["GetObject"] += 1
            found = self.objects.get(Key)
        size = len(found[0]) if found else 0
        self.clock.sleep(self.latency.seconds(received=size) - self.latency.first_byte_ms / 2000)
        if found is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        body, etag, metadata, modified = found
        with self.lock:
            self.read_bytes += len(body)
        return {
            "Body": io.BytesIO(body),
            "ETag": etag,
            "Metadata": dict(metadata),
            "LastModified": modified,
        }

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self.clock.sleep(self.latency.seconds())
        with self.lock:
            self.calls["HeadObject"] += 1
            found = self.objects.get(Key)
        if found is None:
            raise ClientError({"Error": {"Code": "404", "Message": Key}}, "HeadObject")
        body, etag, metadata = found[:3]
        return {"ContentLength": len(body), "ETag": etag, "Metadata": dict(metadata)}

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        Metadata: dict[str, str] | None = None,
        IfMatch: str | None = None,
        IfNoneMatch: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        there = self.latency.first_byte_ms / 2000 + len(Body) / (self.latency.mb_per_s * 1e6)
        self.clock.sleep(there)
        with self.lock:
            self.calls["PutObject"] += 1
            self.written_bytes += len(Body)
            current = self.objects.get(Key)
            refused = (IfNoneMatch == "*" and current is not None) or (
                IfMatch is not None and (current is None or current[1] != IfMatch)
            )
            if not refused:
                self.versions += 1
                etag = f'"{self.versions:032x}"'
                self.objects[Key] = (Body, etag, dict(Metadata or {}), self.clock.now())
        self.clock.sleep(self.latency.first_byte_ms / 2000)
        if refused:
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
        return {"ETag": etag}

    def get_paginator(self, name: str) -> _Listing:
        assert name == "list_objects_v2", name
        return _Listing(self)

    def list_page(self, prefix: str, start_after: str, limit: int = 1000) -> dict[str, Any]:
        with self.lock:
            self.calls["ListObjectsV2"] += 1
            keys = sorted(k for k in self.objects if k.startswith(prefix) and k > start_after)
            page = keys[:limit]
            contents = [
                {"Key": k, "Size": len(self.objects[k][0]), "LastModified": self.objects[k][3]}
                for k in page
            ]
        self.clock.sleep(self.latency.seconds(received=200 * len(page)))
        return {"Contents": contents, "IsTruncated": len(keys) > limit}


@dataclass
class _Listing:
    s3: MemoryS3

    def paginate(self, *, Bucket: str, Prefix: str = "", StartAfter: str = "") -> Iterator[Any]:
        after = StartAfter
        while True:
            page = self.s3.list_page(Prefix, after)
            yield page
            if not page["IsTruncated"]:
                return
            after = page["Contents"][-1]["Key"]


@dataclass
class MemoryCounters:
    """The DynamoDB call DynamoPartNumbers makes (an atomic counter), in memory, timed."""

    latency_ms: float
    clock: Clock = field(default_factory=RealClock)
    counters: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update_item(self, **params: Any) -> dict[str, Any]:
        assert "if_not_exists(next_part, :floor) + :one" in params["UpdateExpression"]
        self.clock.sleep(self.latency_ms / 2000)
        key = params["Key"]["pk"]["S"]
        floor = int(params["ExpressionAttributeValues"][":floor"]["N"])
        with self.lock:
            self.calls += 1
            self.counters[key] = self.counters.get(key, floor) + 1
            value = self.counters[key]
        self.clock.sleep(self.latency_ms / 2000)
        return {"Attributes": {"next_part": {"N": str(value)}}}
