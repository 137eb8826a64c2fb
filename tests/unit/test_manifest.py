from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from encord.orm.storage import DataUploadItems, DataUploadVideo
from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.errors import TransientError
from media_ingest.manifests.writer import ManifestWriter, Part
from media_ingest.platforms.encord import Entry, VideoMetadataPolicy, entry_for
from media_ingest.records import utcnow
from tests.support.fakes import MemoryPartStore
from tests.support.items import (
    UNKNOWN_TIMING,
    VFR_TIMING,
    audio_item,
    image_item,
    video_item,
)


def test_video_entry_carries_probe_metadata() -> None:
    entry = entry_for(video_item("cams/a b.mp4"))
    assert entry.section == "videos"
    payload = entry.payload
    assert payload["objectUrl"] == "https://drop.s3.us-east-1.amazonaws.com/cams/a%20b.mp4"
    assert payload["title"] == "cams/a b.mp4"
    assert payload["videoMetadata"] == {
        "fps": 29.97,
        "duration": 2.0,
        "width": 240,
        "height": 320,
        "file_size": 1000,
        "mime_type": "video/mp4",
    }
    assert payload["clientMetadata"]["rotation"] == 90
    assert payload["clientMetadata"]["fps_fraction"] == "30000/1001"


def test_audio_entry_has_encord_audio_metadata() -> None:
    payload = entry_for(audio_item("a.flac")).payload
    assert payload["audioMetadata"] == {
        "duration": 1.0,
        "file_size": 1000,
        "mime_type": "audio/flac",
        "sample_rate": 44100,
        "bit_depth": 16,
        "codec": "flac",
        "num_channels": 2,
    }


def test_audio_without_a_bit_depth_omits_the_block_rather_than_guess() -> None:
    assert "audioMetadata" not in entry_for(audio_item("a.flac", bit_depth=None)).payload


def test_image_entry() -> None:
    entry = entry_for(image_item("p.jpg"))
    assert entry.section == "images"
    assert entry.payload["imageMetadata"]["width"] == 48


def test_part_is_an_importable_encord_file() -> None:
    part = Part()
    part.add([entry_for(video_item("v.mp4")), entry_for(image_item("i.jpg"))])
    doc = part.to_encord()
    assert list(doc) == ["videos", "images", "skip_duplicate_urls"]
    assert doc["skip_duplicate_urls"] is True
    assert Part.from_encord(doc, sealed=True).entry_keys() == part.entry_keys()


def _entries(n: int, prefix: str = "k") -> list[Entry]:
    return [entry_for(video_item(f"{prefix}{i}.mp4")) for i in range(n)]


def test_parts_roll_over_when_full_and_the_index_lists_them() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=4, sleep=lambda _: None)
    assert writer.append("main", _entries(10)) == 10
    parts = store.parts("main")
    assert [p.entry_count for p in parts] == [4, 4, 2]
    assert [p.sealed for p in parts] == [True, True, False]
    index = store.read_index("main")
    assert index is not None
    assert index.value.open_part == 3
    assert [(p.number, p.sealed) for p in index.value.parts] == [(1, True), (2, True), (3, False)]


def test_an_entry_already_in_the_open_part_is_not_added_twice() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=100, sleep=lambda _: None)
    entries = _entries(3)
    assert writer.append("main", entries) == 3
    assert writer.append("main", entries + entries) == 0
    assert store.parts("main")[0].entry_count == 3


def test_a_replayed_entry_already_in_a_since_sealed_part_is_not_added_again() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=2, sleep=lambda _: None)
    before = utcnow() - timedelta(seconds=1)
    first = _entries(1, "first")
    writer.append("main", first)
    writer.append("main", _entries(3, "other"))  # seals part 1 with 'first' inside
    assert writer.append("main", first, replayed_since=before) == 0
    urls = [k for p in store.parts("main") for k in p.entry_keys()]
    assert len(urls) == len(set(urls)) == 4


def test_conflicts_are_retried_then_reported_as_transient() -> None:
    store = MemoryPartStore()
    store.fail_next_writes = 3
    writer = ManifestWriter(store, sleep=lambda _: None)
    assert writer.append("main", _entries(2)) == 2
    assert writer.conflicts == 3
    store.fail_next_writes = 1000
    with pytest.raises(TransientError):
        ManifestWriter(store, max_attempts=5, sleep=lambda _: None).append("main", _entries(1, "x"))


def test_concurrent_writers_lose_and_duplicate_nothing() -> None:
    store = MemoryPartStore()
    batches = [_entries(3, f"w{w}-") for w in range(50)]
    start = threading.Barrier(50)

    def write(entries: list[Entry]) -> None:
        start.wait()
        ManifestWriter(store, max_entries=40, max_attempts=500).append("main", entries)

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    urls = [u for p in store.parts("main") for u in p.entry_keys()]
    assert len(urls) == 150 and len(set(urls)) == 150
    assert all(p.entry_count <= 40 for p in store.parts("main"))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 60), max_size=12), max_size=12),
    st.integers(1, 7),
)
def test_chunking_keeps_every_unique_entry_exactly_once(
    batches: list[list[int]], size: int
) -> None:
    """The writer's contract: an entry offered again is offered as a replay (the batch
    runner marks outcomes decided before its run), and then it is never added twice."""
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=size, sleep=lambda _: None)
    first_offered: dict[int, datetime] = {}
    for batch in batches:
        now = utcnow()
        replayed = [first_offered[n] for n in batch if n in first_offered]
        for n in batch:
            first_offered.setdefault(n, now)
        entries = [entry_for(video_item(f"k{n}.mp4")) for n in batch]
        writer.append("main", entries, replayed_since=min(replayed, default=None))
    parts = store.parts("main")
    urls = [u for p in parts for u in p.entry_keys()]
    expected = {n for batch in batches for n in batch}
    assert len(urls) == len(set(urls)) == len(expected)
    assert all(p.entry_count <= size for p in parts)
    assert all(p.sealed for p in parts[:-1])


# -- frame timing in the entry, read back with Encord's own SDK models ---------------------
# encord.orm.storage.CustomerProvidedVideoMetadata (encord 0.1.211): "if provided, Encord
# service will skip frame synchronization checks and will use the values specified here".
ENTRY_KEYS = {"objectUrl", "title", "videoMetadata", "clientMetadata"}


def sdk_video(entry: Entry) -> DataUploadVideo:
    """The entry as Encord's SDK reads a registration file (unknown keys would be dropped
    silently, so the test checks there are none)."""
    assert set(entry.payload) <= ENTRY_KEYS
    part = Part()
    part.add([entry])
    items = DataUploadItems.model_validate(part.to_encord())
    [video] = items.videos
    return video


def test_a_variable_rate_video_carries_no_video_metadata_by_default() -> None:
    vfr = sdk_video(entry_for(video_item("phone/vfr.mov", timing=VFR_TIMING)))
    assert vfr.video_metadata is None  # Encord synchronises the frames itself
    client = vfr.client_metadata
    assert {k: client[k] for k in client if k.startswith(("frame_", "first_", "present"))} == {
        "frame_count": 85,
        "frame_rate_mode": "variable",
        "frame_duration_min": 0.033333,
        "frame_duration_max": 0.066667,
        "first_frame_time": 0.0,
        "presentation_duration": 3.0,
    }
    assert "fps_fraction" not in client and client["avg_fps_fraction"] == "30000/1001"
    cfr = sdk_video(entry_for(video_item("cams/cfr.mp4")))
    assert cfr.video_metadata is not None and cfr.video_metadata.fps == 29.97
    assert cfr.client_metadata["frame_rate_mode"] == "constant"


@pytest.mark.parametrize(
    ("policy", "constant", "variable", "unknown"),
    [
        ("constant", True, False, False),
        ("unless-variable", True, False, True),
        ("always", True, True, True),
    ],
)
def test_the_video_metadata_policy(
    policy: VideoMetadataPolicy, constant: bool, variable: bool, unknown: bool
) -> None:
    sent = {
        name: sdk_video(entry_for(video_item(f"{name}.mp4", timing=timing), policy))
        for name, timing in (
            ("constant", None),
            ("variable", VFR_TIMING),
            ("unknown", UNKNOWN_TIMING),
        )
    }
    assert {name: v.video_metadata is not None for name, v in sent.items()} == {
        "constant": constant,
        "variable": variable,
        "unknown": unknown,
    }
    assert sent["unknown"].client_metadata["frame_timing_unknown"] == UNKNOWN_TIMING.unknown


# -- parts capped in bytes as well as entries (issue 11) -------------------------------------
def _bulky(key: str, notes: int) -> Entry:
    item = video_item(key)
    media = item.media.model_copy(update={"client_metadata": {"notes": "n" * notes}})
    return entry_for(item.model_copy(update={"media": media}))


def test_a_part_rolls_over_at_its_byte_cap_before_its_entry_cap() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=1000, max_bytes=50_000, sleep=lambda _: None)
    entries = [_bulky(f"b/{i}.mp4", 9_000) for i in range(20)]
    assert writer.append("main", entries) == 20
    parts = store.parts("main")
    sizes = [len(p.encoded()) for p in parts]
    assert len(parts) > 1 and max(sizes) <= 50_000, sizes
    assert all(p.sealed for p in parts[:-1])
    assert sum(p.entry_count for p in parts) == 20


def test_an_entry_larger_than_the_byte_cap_gets_a_part_of_its_own() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_bytes=20_000, sleep=lambda _: None)
    writer.append("main", [_bulky("s/small.mp4", 100), _bulky("s/huge.mp4", 30_000)])
    writer.append("main", [_bulky("s/after.mp4", 100)])
    counts = [p.entry_count for p in store.parts("main")]
    assert counts == [1, 1, 1]


def test_a_parts_bytes_follow_every_add_and_replace() -> None:
    # The bytes are kept between changes (the cap is checked on every commit): each change
    # must show in them, or a part would grow past its cap unseen.
    part = Part()
    empty = part.encoded()
    first = _bulky("c/a.mp4", 100)
    part.add([first])
    added = part.encoded()
    assert added != empty and b"c/a.mp4" in added
    part.replace(Entry(section=first.section, payload={**first.payload, "title": "renamed"}))
    assert b"renamed" in part.encoded()
    assert len(part.encoded()) == len(Part.from_encord(json.loads(part.encoded()), False).encoded())


def test_appends_one_at_a_time_still_roll_over_at_the_byte_cap() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=1000, max_bytes=50_000, sleep=lambda _: None)
    for i in range(20):
        writer.append("main", [_bulky(f"one/{i}.mp4", 9_000)])
    parts = store.parts("main")
    sizes = [len(Part.from_encord(p.to_encord(), p.sealed).encoded()) for p in parts]
    assert len(parts) > 1 and max(sizes) <= 50_000, sizes
    assert sum(p.entry_count for p in parts) == 20


def test_a_part_at_its_byte_cap_is_sealed_by_the_write_that_fills_it() -> None:
    # Sealed at once, not left open for the next append to find full (and write again).
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_bytes=20_000, sleep=lambda _: None)
    writer.append("main", [_bulky("s/huge.mp4", 30_000)])
    [part] = store.parts("main")
    assert part.sealed
