"""Manifest appends under concurrency (docs/architecture.md): many writers on one dataset over
the in-memory store, with S3's conditional-write semantics, a part-number counter, writers
that die after a write, and replays.

The invariants, for every interleaving the threads produce: every entry in exactly one part;
no part past either Encord limit; every part but the open ones sealed and recorded; at most
two races lost before any commit; no append gives up.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.manifests.writer import ManifestWriter, Part, Versioned
from media_ingest.platforms.encord import Entry, entry_for
from media_ingest.records import utcnow
from tests.support.fakes import MemoryPartNumbers, MemoryPartStore
from tests.support.items import image_item

# Each store call takes this long, so that threads interleave between reads and writes.
LATENCY = 0.002


class Died(BaseException):
    """The function's process ending right after a write (nothing after it runs)."""


@dataclass
class DyingStore(MemoryPartStore):
    """A part store whose writes may end the writer's process once they have happened."""

    deaths: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        super().__init__(latency=LATENCY)

    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> str:
        written = super().write_part(dataset, number, part, etag)
        with self.lock:
            dies = self.rng.random() < self.deaths
        if dies:
            raise Died
        return written


def entries(writer: int, batch: int, size: int) -> list[Entry]:
    return [entry_for(image_item(f"w{writer}/b{batch}/{i}.png")) for i in range(size)]


def stored_parts(store: MemoryPartStore, dataset: str = "main") -> dict[int, Part]:
    """Every part in the store by number (gaps allowed: a number may never be written)."""
    found = {}
    for listed in store.list_parts(dataset):
        got = store.read_part(dataset, listed.number)
        if got is not None:
            found[listed.number] = got.value
    return found


def all_keys(store: MemoryPartStore, dataset: str = "main") -> list[str]:
    return [k for part in stored_parts(store, dataset).values() for k in part.entry_keys()]


@dataclass
class Run:
    """One writer thread: an execution environment appending batches; when it dies after a
    write, a new environment takes the batch over as a replay (as the redelivery would)."""

    store: DyingStore
    numbers: MemoryPartNumbers
    max_entries: int
    writers_made: list[ManifestWriter]
    start: threading.Barrier
    errors: list[BaseException] = field(default_factory=list)

    def writer(self) -> ManifestWriter:
        made = ManifestWriter(
            self.store, max_entries=self.max_entries, numbers=self.numbers, max_attempts=10
        )
        self.writers_made.append(made)
        return made

    def __call__(self, number: int, batches: list[list[Entry]]) -> None:
        try:
            self.write(batches)
        except BaseException as exc:  # a thread's exception must fail the test
            self.errors.append(exc)

    def write(self, batches: list[list[Entry]]) -> None:
        writer = self.writer()
        self.start.wait()
        for batch in batches:
            decided: datetime = utcnow()
            replay: datetime | None = None
            while True:
                try:
                    writer.append("main", batch, replayed_since=replay)
                    break
                except Died:
                    writer, replay = self.writer(), decided


@settings(max_examples=12, deadline=None)
@given(
    writers=st.integers(2, 16),
    max_entries=st.integers(3, 40),
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    deaths=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_concurrent_writers_keep_every_entry_exactly_once_within_the_limits(
    writers: int, max_entries: int, sizes: list[int], deaths: float, seed: int
) -> None:
    store = DyingStore(deaths=deaths, rng=random.Random(seed))
    made: list[ManifestWriter] = []
    run = Run(store, MemoryPartNumbers(), max_entries, made, threading.Barrier(writers))
    plan = {w: [entries(w, b, n) for b, n in enumerate(sizes)] for w in range(writers)}
    threads = [threading.Thread(target=run, args=(w, plan[w])) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert run.errors == []  # no append gave up
    for writer in made:  # index updates that found it busy go with a writer's next append
        assert writer.flush_index("main")
    keys = all_keys(store)
    offered = {e.key for batches in plan.values() for batch in batches for e in batch}
    assert Counter(keys) == Counter(offered)  # every entry once: none lost, none twice
    parts = stored_parts(store)
    assert all(p.entry_count <= max_entries for p in parts.values())
    assert all(p.entry_count == max_entries for p in parts.values() if p.sealed)
    assert all(Part.from_encord(p.to_encord(), p.sealed) == p for p in parts.values())
    assert max(w.worst_streak for w in made) <= 2  # no commit lost more than two races
    index = store.read_index("main")
    listed_sealed = {p.number for p in index.value.parts if p.sealed} if index else set()
    sealed = {number for number, part in parts.items() if part.sealed}
    if deaths == 0:
        assert index is not None and listed_sealed == sealed  # it records every sealed part
    else:  # a writer may die between a write and the index (the parts' metadata is the truth)
        assert listed_sealed <= sealed


def test_writers_that_collide_spread_over_parts_of_their_own_and_stop_colliding() -> None:
    store, numbers = MemoryPartStore(latency=LATENCY), MemoryPartNumbers()
    ManifestWriter(store, numbers=numbers).append("main", entries(99, 0, 1))  # the main part
    writers = [ManifestWriter(store, max_entries=1000, numbers=numbers) for _ in range(24)]
    settled: dict[int, int] = {}
    for round_ in range(6):
        start = threading.Barrier(len(writers))

        def append(
            w: int, writer: ManifestWriter, r: int = round_, go: threading.Barrier = start
        ) -> None:
            go.wait()
            writer.append("main", entries(w, r, 10))

        threads = [threading.Thread(target=append, args=(w, x)) for w, x in enumerate(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if round_ == 2:
            settled = {i: w.conflicts for i, w in enumerate(writers) if not w._held["main"].main}
    # Most writers moved to a part of their own after losing a race, and from then on lost
    # none: no one else writes their part. (The main part stays shared: its writers may
    # lose a race to a stale view, never more than two before a commit.)
    assert len(settled) >= len(writers) // 2
    assert {i: writers[i].conflicts for i in settled} == settled
    assert max(w.worst_streak for w in writers) <= 2
    assert len({w._held["main"].number for w in writers if not w._held["main"].main}) == len(
        [w for w in writers if not w._held["main"].main]
    )
    offered = [e.key for w in range(24) for r in range(6) for e in entries(w, r, 10)]
    assert sorted(all_keys(store)) == sorted([*offered, entries(99, 0, 1)[0].key])


def test_a_single_writer_fills_parts_one_after_the_other() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=5, numbers=MemoryPartNumbers())
    for batch in range(7):
        writer.append("main", entries(0, batch, 3))
    assert [p.entry_count for p in store.parts("main")] == [5, 5, 5, 5, 1]
    assert writer.conflicts == 0
    index = store.read_index("main")
    assert index is not None and index.value.open_part == 5


def test_a_part_left_open_by_a_writer_that_went_away_is_adopted() -> None:
    now = [utcnow()]
    store = MemoryPartStore(clock=lambda: now[0])
    numbers = MemoryPartNumbers()

    def writer() -> ManifestWriter:
        return ManifestWriter(store, max_entries=4, numbers=numbers, clock=lambda: now[0])

    first, second = writer(), writer()
    first.append("main", entries(1, 0, 1))  # creates the main part
    second.append("main", entries(2, 0, 1))  # joins it
    # A race lost on a fresh read sends the first writer to a part of its own...
    first._held["main"].fresh = True
    first._held["main"].etag = "stale"
    first.append("main", entries(1, 1, 1))
    orphan = first._held["main"].number
    assert orphan != 1 and first.conflicts == 1
    # ...and it goes away. Ten minutes later another writer fills its own part and, for
    # the next one, takes over the orphan instead of starting yet another part.
    del first
    now[0] += timedelta(minutes=11)
    third = writer()
    third._held["main"] = third._fresh_part("main", 0)
    third.append("main", entries(3, 0, 4))  # fills and seals a part of its own
    assert third._held["main"].number == orphan
    third.append("main", entries(3, 1, 2))
    got = store.read_part("main", orphan)
    assert got is not None and got.value.entry_count == 3  # the orphan's one, then two
    assert len(all_keys(store)) == len(set(all_keys(store))) == 9


def test_present_reads_only_the_parts_written_since() -> None:
    now = [utcnow()]
    store = MemoryPartStore(clock=lambda: now[0])
    writer = ManifestWriter(store, max_entries=2, numbers=MemoryPartNumbers())
    old = entries(0, 0, 2)
    writer.append("main", old)  # part 1, sealed
    now[0] += timedelta(hours=1)
    since = now[0]
    new = entries(0, 1, 1)
    writer.append("main", new)  # part 2
    reads: list[int] = []
    real = store.read_part

    def counted(dataset: str, number: int) -> Versioned[Part] | None:
        reads.append(number)
        return real(dataset, number)

    store.read_part = counted  # type: ignore[method-assign]
    assert writer.present("main", old + new, since) == {new[0].key}
    assert reads == [2]  # part 1 was sealed and last written an hour before
    both = {e.key for e in old + new}
    assert writer.present("main", old + new, since - timedelta(hours=2)) == both
    # An entry is present only with its very payload (an update's URL holds the old one).
    changed = Entry(section=new[0].section, payload={**new[0].payload, "title": "renamed"})
    assert writer.present("main", [changed], since) == set()


def test_an_index_already_recording_a_part_is_not_written_again() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=2, numbers=MemoryPartNumbers())
    writer.append("main", entries(0, 0, 2))
    before = store.writes
    other = ManifestWriter(store, max_entries=2, numbers=MemoryPartNumbers())
    other._record("main", 1, Part(sealed=True))  # a second writer finds part 1 full
    assert store.writes == before


class OrderedStore(MemoryPartStore):
    """Remembers, in the order the writes happened, each URL's last written metadata."""

    def __init__(self) -> None:
        super().__init__(latency=LATENCY)
        self.order = threading.Lock()
        self.latest: dict[str, str] = {}

    def write_part(self, dataset: str, number: int, part: Part, etag: str | None) -> str:
        with self.order:
            before = self.read_part(dataset, number)
            had = before.value.payloads() if before is not None else {}
            written = super().write_part(dataset, number, part, etag)
            for url, payload in part.payloads().items():
                if had.get(url) != payload:
                    self.latest[url] = payload["title"]
            return written


def test_updates_import_after_the_entry_they_replace_under_concurrent_writers() -> None:
    """A dataset whose overwrites update (UpdateDatasets) keeps one open part at a time, so
    part numbers follow time: importing the parts in number order leaves every URL with the
    metadata written last, however many writers ran at once."""
    store = OrderedStore()
    numbers = MemoryPartNumbers()
    urls = [f"shared/{i}.png" for i in range(12)]
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(writer_number: int) -> None:
        writer = ManifestWriter(
            store,
            max_entries=5,
            numbers=numbers,
            update_datasets=frozenset({"main"}),
            sleep=lambda _: None,
            max_attempts=500,
        )
        start.wait()
        try:
            for version in range(4):
                batch = [
                    Entry(
                        section=e.section,
                        payload={**e.payload, "title": f"w{writer_number}v{version}"},
                    )
                    for e in (entry_for(image_item(url)) for url in urls)
                ]
                writer.append("main", batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert _imported(store) == store.latest
    parts = stored_parts(store)
    assert sorted(parts) == list(range(1, len(parts) + 1))  # no part of a writer's own
    assert all(part.upsert_metadata for part in parts.values())


def test_an_update_goes_where_it_imports_after_the_entry_it_replaces() -> None:
    """Writers of a dataset that updates do not move to parts of their own after a lost race:
    else an update written to a lower-numbered open part would import before the entry it
    replaces (in a higher-numbered one) and lose to it."""
    store = MemoryPartStore()
    numbers = MemoryPartNumbers()
    shared = frozenset({"main"})
    first = ManifestWriter(store, numbers=numbers, update_datasets=shared, sleep=lambda _: None)
    second = ManifestWriter(store, numbers=numbers, update_datasets=shared, sleep=lambda _: None)
    url = entry_for(image_item("clip.png"))
    first.append("main", entries(0, 0, 1))  # makes part 1, the main part
    store.fail_next_writes = 1  # the second writer loses its first race on a fresh read
    second.append("main", [Entry(section=url.section, payload={**url.payload, "title": "v1"})])
    first.append("main", [Entry(section=url.section, payload={**url.payload, "title": "v2"})])
    assert _imported(store)[url.key] == "v2"
    assert sorted(stored_parts(store)) == [1]


def test_writers_of_an_updating_dataset_agree_on_the_next_part_while_the_index_lags() -> None:
    """A writer that meets the full main part before the index has heard of its seal opens
    the same next part as the writer that sealed it, never a second one: with two open, an
    update written to the lower one after its URL's entry went to the higher one would
    import first and lose to the older metadata."""
    store = MemoryPartStore()
    numbers = MemoryPartNumbers()
    shared = frozenset({"main"})
    sealer = ManifestWriter(
        store, max_entries=2, numbers=numbers, update_datasets=shared, sleep=lambda _: None
    )
    sealer.append("main", entries(0, 0, 2))  # part 1 full and sealed; the index names part 2
    stale = store.read_index("main")
    assert stale is not None and stale.value.open_part == 2
    # The index as the other writer sees it before the seal reaches it.
    store.write_index("main", stale.value.model_copy(update={"open_part": 1}), stale.etag)
    url = entry_for(image_item("clip.png"))
    late = ManifestWriter(
        store, max_entries=2, numbers=numbers, update_datasets=shared, sleep=lambda _: None
    )
    late.append("main", [Entry(section=url.section, payload={**url.payload, "title": "v1"})])
    sealer.append("main", [Entry(section=url.section, payload={**url.payload, "title": "v2"})])
    assert sorted(stored_parts(store)) == [1, 2]
    assert _imported(store)[url.key] == "v2"


def _imported(store: MemoryPartStore) -> dict[str, str]:
    """Each URL's title after importing every part in number order (later parts win)."""
    final: dict[str, str] = {}
    for _, part in sorted(stored_parts(store).items()):
        for url, payload in part.payloads().items():
            final[url] = payload["title"]
    return final
