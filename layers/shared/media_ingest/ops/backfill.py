"""Backfill: objects that were in a bucket before the stack enqueued on the ingest path.

Owns the plan (rules, already-registered check, rate bound, resumable position), whether
the stack can read the source at all (checked before anything is enqueued), and the
summary. Takes a lister, a catalog check and a queue as interfaces; never creates a client.
An object enqueued here gets the same outcome an upload would, and the same object
enqueued twice is one event (see events.backfill_body), so reruns register nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from media_ingest.events import backfill_body
from media_ingest.listing import (
    SSE_C,
    ListedObject,
    Lister,
    Page,
    Position,
    RateLimit,
    Source,
    save_atomically,
)
from media_ingest.routing import Router
from media_ingest.settings import UrlStyle
from media_ingest.urls import object_url

# The listing models live in media_ingest.listing (reconcile lists too); named here as well.
__all__ = [
    "SSE_C",
    "Backfill",
    "BackfillState",
    "Counts",
    "ListedObject",
    "Lister",
    "Page",
    "Position",
    "RateLimit",
    "Source",
]

SQS_BATCH = 10


class SourceUnreadable(ValueError):
    """The stack's functions cannot read the source: nothing is enqueued, since every
    object would end as an ACCESS_DENIED failure."""


def check_readable(source: Source, readable_buckets: set[str], encryption: str | None) -> None:
    """Refuse a source the stack may not read: a bucket it was not deployed to read (the
    drop bucket and ExtraSourceBucketArns are), or objects only their uploader can read."""
    if source.bucket not in readable_buckets:
        raise SourceUnreadable(
            f"the stack's functions may not read s3://{source.bucket}: deploy the stack with "
            f"ExtraSourceBucketArns including arn:aws:s3:::{source.bucket} (comma-separated "
            "with any others), or pass --no-read-check if its role may read it another way"
        )
    if encryption == SSE_C:
        raise SourceUnreadable(
            f"objects under {source} are encrypted with customer-provided keys (SSE-C): S3 "
            "serves them only with the key, which the stack never has, so each would fail "
            "with ACCESS_DENIED"
        )


def bucket_names(arns: str) -> set[str]:
    """`arn:aws:s3:::a,arn:aws:s3:::b` (the ExtraSourceBucketArns parameter) -> {a, b}."""
    return {arn.rsplit(":", 1)[-1] for arn in arns.split(",") if arn.strip()}


class Counts(BaseModel):
    listed: int = 0
    enqueued: int = 0
    ignored: int = 0
    registered: int = 0


class BackfillState(BaseModel):
    """What survives an interruption: the source, how far it got, and what it counted."""

    source: str
    inventory: str | None = None
    position: Position = Position()
    counts: Counts = Counts()
    total: int | None = None
    done: bool = False

    def save(self, path: Path) -> None:
        save_atomically(path, self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: Path) -> BackfillState | None:
        return cls.model_validate_json(path.read_text()) if path.exists() else None


class RegisteredCheck(Protocol):
    def registered(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (dataset, object URL) pairs already in the catalog."""
        ...


class MessageQueue(Protocol):
    def send(self, bodies: list[str]) -> None: ...


class Progress(Protocol):
    def update(self, state: BackfillState) -> None: ...


@dataclass
class Backfill:
    lister: Lister
    catalog: RegisteredCheck
    queue: MessageQueue
    router: Router
    region: str
    url_style: UrlStyle
    rate: RateLimit
    state_path: Path
    progress: Progress | None = None

    def run(self, state: BackfillState, limit: int | None = None) -> BackfillState:
        """Enqueue from the saved position on, `limit` objects at most.

        The state is saved after every batch of ten, so an interruption (KeyboardInterrupt)
        loses at most the batch in flight, which a rerun sends again: the same object
        enqueued twice is one event, one outcome.
        """
        for page in self.lister.pages(state.position):
            for start in range(0, len(page.objects), SQS_BATCH):
                if limit is not None and state.counts.listed >= limit:
                    state.save(self.state_path)
                    return state
                room = SQS_BATCH if limit is None else min(SQS_BATCH, limit - state.counts.listed)
                batch = page.objects[start : start + room]
                self._enqueue(batch, state)
                state.position = page.positions[start + len(batch) - 1]
                state.save(self.state_path)
                if self.progress:
                    self.progress.update(state)
        state.done = True
        state.save(self.state_path)
        return state

    def _enqueue(self, objects: list[ListedObject], state: BackfillState) -> None:
        candidates: list[tuple[ListedObject, tuple[str, str]]] = []
        for obj in objects:
            dataset = self.router.route(obj.key, obj.bucket).dataset
            if dataset is None:
                state.counts.ignored += 1
                continue
            url = object_url(obj.bucket, obj.key, self.region, self.url_style)
            candidates.append((obj, (dataset, url)))
        known = self.catalog.registered([pair for _, pair in candidates]) if candidates else set()
        fresh = [obj for obj, pair in candidates if pair not in known]
        if fresh:
            self.rate.wait_for(len(fresh))
            self.queue.send([self._body(obj) for obj in fresh])
        state.counts.listed += len(objects)
        state.counts.registered += len(candidates) - len(fresh)
        state.counts.enqueued += len(fresh)

    def _body(self, obj: ListedObject) -> str:
        # The object's own time: the body is then the same on every run.
        return backfill_body(
            obj.bucket,
            obj.key,
            size=obj.size,
            etag=obj.etag,
            region=self.region,
            event_time=obj.last_modified,
        )
