"""Reconcile over fakes: what it finds (lost events, missed overwrites, missed deletions),
what it leaves alone (ignored, markers, recent, settled meanwhile), the events it enqueues
and their stable identities, and resuming after an interruption."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media_ingest.events import Action, parse_body
from media_ingest.groups.rules import GroupKind, GroupRoutes
from media_ingest.listing import ListedObject, Page, Position, RateLimit
from media_ingest.reconcile.rules import RowState
from media_ingest.reconcile.runner import FileStore, Reconciler, ReconcileState
from media_ingest.reconcile.snapshot import Snapshot
from media_ingest.routing import Router
from media_ingest.urls import object_url

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=2)


def url(key: str) -> str:
    return object_url("b", key, "us-east-1")


def live(key: str, etag: str, **fields: object) -> RowState:
    base = {
        "key": key,
        "dataset": "main",
        "object_url": url(key),
        "bucket": "b",
        "state": "live",
        "etags": (etag,),
        "event_id": f"ev-{key}",
        "written_at": OLD,
    }
    return RowState.model_validate(base | fields)


class Rows:
    def __init__(self, rows: list[RowState], page: int = 3) -> None:
        self.rows = {(r.dataset, r.object_url): r for r in rows}
        self.page = page
        self.reads = 0

    def scan(
        self, bucket: str, prefix: str, start: dict[str, object] | None
    ) -> Iterator[tuple[list[RowState], dict[str, object] | None]]:
        rows = sorted(self.rows.values(), key=lambda r: r.key)
        first = int(str(start["n"])) if start else 0
        for begin in range(first, len(rows), self.page):
            more = begin + self.page < len(rows)
            yield rows[begin : begin + self.page], {"n": begin + self.page} if more else None

    def read(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], RowState]:
        self.reads += 1
        return {p: self.rows[p] for p in pairs if p in self.rows}


class Listing:
    def __init__(self, objects: list[ListedObject], page: int = 4) -> None:
        self.objects = sorted(objects, key=lambda o: o.key)
        self.page = page

    def pages(self, position: Position) -> Iterator[Page]:
        left = [o for o in self.objects if not position.after_key or o.key > position.after_key]
        for begin in range(0, len(left), self.page):
            chunk = left[begin : begin + self.page]
            yield Page(objects=chunk, positions=[Position(after_key=o.key) for o in chunk])

    def count(self) -> int:
        return len(self.objects)


class Objects:
    def __init__(self, listing: Listing) -> None:
        self.now = {o.key: o for o in listing.objects}

    def stat(self, bucket: str, key: str) -> ListedObject | None:
        return self.now.get(key)


class Queue:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies += bodies


def obj(key: str, etag: str = "e", modified: datetime = OLD) -> ListedObject:
    return ListedObject(bucket="b", key=key, size=5, etag=etag, last_modified=modified)


def world() -> tuple[Rows, Listing]:
    listed = [obj(f"k/{n:02d}.txt") for n in range(10)]
    listed += [
        obj("k/over.txt", etag="new"),  # registered as "old": a missed overwrite
        obj("k/noted.txt", etag="v2"),  # an overwrite already called a duplicate
        obj("k/failed.txt", etag="f"),  # failed: had its outcome
        obj("k/lost1.txt"),
        obj("k/lost2.txt"),
        obj("k/back.txt"),  # deleted, then uploaded again: that event was lost
        obj("k/.DS_Store"),
        obj("seq/run1/_SEALED"),
        obj("k/fresh.txt", modified=NOW),  # within the grace period
    ]
    rows = [live(f"k/{n:02d}.txt", "e") for n in range(10)]
    rows += [
        live("k/over.txt", "old"),
        live("k/noted.txt", "v1", etags=("v1", "v2")),
        live("k/failed.txt", "f", state="failed"),
        live("k/back.txt", "e", state="removed", etags=()),
        live("k/gone.txt", "e"),  # its object is gone: a missed deletion
        live("k/gone-failed.txt", "x", state="failed"),  # likewise, a failure
        live("k/removed.txt", "e", state="removed", etags=()),  # deletion already recorded
        live("k/late.txt", "e", written_at=NOW),  # registered after the listing looked
    ]
    return Rows(rows), Listing(listed)


def reconciler(rows: Rows, listing: Listing, queue: Queue, store: FileStore) -> Reconciler:
    return Reconciler(
        catalog=rows,
        lister=listing,
        objects=Objects(listing),
        queue=queue,
        router=Router("main", {}, (".DS_Store",)),
        groups=GroupRoutes({"seq/": GroupKind.IMAGE_SEQUENCES}),
        region="us-east-1",
        url_style="virtual",
        snapshot=Snapshot(),
        store=store,
        rate=RateLimit(1e9, sleep=lambda _: None),
    )


def state(apply: bool) -> ReconcileState:
    return ReconcileState(source="s3://b/", apply=apply, listed_at=NOW, grace_seconds=900)


def test_what_reconcile_finds_and_what_it_leaves_alone(tmp_path: Path) -> None:
    rows, listing = world()
    queue = Queue()
    done = reconciler(rows, listing, queue, FileStore(tmp_path / "s.json")).run(state(False))
    c = done.counts
    assert (c.rows, c.listed) == (18, 19)
    assert (c.ok, c.ignored, c.recent) == (12, 2, 2)  # 10 + noted + failed; late and fresh
    assert (c.lost, c.overwritten, c.deleted) == (3, 1, 2)
    assert sorted(done.samples["lost"]) == ["k/back.txt", "k/lost1.txt", "k/lost2.txt"]
    assert done.samples["deleted"] == ["k/gone-failed.txt", "k/gone.txt"]
    assert queue.bodies == [] and c.enqueued == 0  # report only


def test_with_apply_it_enqueues_what_the_live_path_missed_with_stable_identities(
    tmp_path: Path,
) -> None:
    rows, listing = world()
    first, second = Queue(), Queue()
    reconciler(rows, listing, first, FileStore(tmp_path / "1.json")).run(state(True))
    reconciler(rows, listing, second, FileStore(tmp_path / "2.json")).run(state(True))
    events = [e for body in first.bodies for e in parse_body(body)]
    assert sorted((e.action, e.key) for e in events) == [
        (Action.CREATED, "k/back.txt"),
        (Action.CREATED, "k/lost1.txt"),
        (Action.CREATED, "k/lost2.txt"),
        (Action.CREATED, "k/over.txt"),
        (Action.REMOVED, "k/gone-failed.txt"),
        (Action.REMOVED, "k/gone.txt"),
    ]
    over = next(e for e in events if e.key == "k/over.txt")
    assert over.etag == "new"  # the version that had no outcome
    # Enqueued again (say, before the first ones were processed): the same events.
    again = [e.event_id for body in second.bodies for e in parse_body(body)]
    assert again == [e.event_id for e in events]


def test_a_candidate_decided_meanwhile_is_settled_not_found(tmp_path: Path) -> None:
    rows, listing = world()
    decided = live("k/lost1.txt", "e")

    class Late(Rows):
        def read(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], RowState]:
            found = super().read(pairs)
            key = ("main", url("k/lost1.txt"))
            if key in pairs:
                found[key] = decided  # its event was processed after the snapshot
            return found

    late = Late(list(rows.rows.values()))
    done = reconciler(late, listing, Queue(), FileStore(tmp_path / "s.json")).run(state(False))
    assert done.counts.lost == 2 and done.counts.settled == 1


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    rows, listing = world()
    store, queue = FileStore(tmp_path / "s.json"), Queue()
    run = reconciler(rows, listing, queue, store)
    run.snapshot = Snapshot(tmp_path / "s.db")
    saves = 0

    def interrupt(_: ReconcileState) -> None:
        nonlocal saves
        saves += 1
        if saves == 9:  # 6 scan pages, the phase change, then the listing's second batch
            raise KeyboardInterrupt

    run.progress = interrupt
    with pytest.raises(KeyboardInterrupt):
        run.run(state(True))
    saved = store.load()
    assert saved is not None and saved.phase == "listing" and not saved.done
    resumed = reconciler(rows, listing, queue, store)
    resumed.snapshot = Snapshot(tmp_path / "s.db")
    done = resumed.run(saved)
    whole = reconciler(rows, listing, Queue(), FileStore(tmp_path / "w.json")).run(state(True))
    assert done.counts.model_dump() == whole.counts.model_dump()
    assert len({e for body in queue.bodies for e in parse_body(body)}) == 6
