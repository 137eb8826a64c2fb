"""Listing objects that are already in a bucket: the models every listing yields (pages of
objects in a stable order, each with the position right after it), the listing interface,
the rate bound on what is enqueued from them, and saving progress atomically.

Shared by `backfill` and `reconcile` (operators) and the scheduled reconcile function; the
listers themselves (ListObjectsV2, S3 Inventory) are adapters/listing.py. Never touches AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel


class Source(BaseModel):
    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> Source:
        if not text.startswith("s3://") or len(text) <= 5:
            raise ValueError(f"expected s3://bucket[/prefix], got {text!r}")
        bucket, _, prefix = text[5:].partition("/")
        return cls(bucket=bucket, prefix=prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


# What the listing adapter says of how the first object is encrypted (None: not known).
SSE_C = "SSE-C"


class ListedObject(BaseModel):
    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime


class Position(BaseModel):
    """Where a listing stands: the last key handled, or (file, row) in an inventory."""

    after_key: str | None = None
    inventory_file: int = 0
    inventory_row: int = 0


class Page(BaseModel):
    """Objects in listing order, each with the position right after it."""

    objects: list[ListedObject]
    positions: list[Position]


class Lister(Protocol):
    def pages(self, position: Position) -> Iterator[Page]: ...

    def count(self) -> int: ...


@dataclass
class RateLimit:
    """At most `per_second` messages per second on average since the first send."""

    per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _start: float | None = None
    _sent: int = 0

    def wait_for(self, n: int) -> None:
        now = self.clock()
        if self._start is None:
            self._start = now
        due = self._start + self._sent / self.per_second
        if due > now:
            self.sleep(due - now)
        self._sent += n


def save_atomically(path: Path, text: str) -> None:
    """Write a state file so that an interruption never leaves half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
