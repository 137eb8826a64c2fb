"""Group rules: key layout, natural order, DICOM order, the group's entry, seal decisions,
and manifest parts rolling over at Encord's URL limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_ingest.groups.rules import (
    GroupKind,
    GroupMeta,
    GroupRef,
    GroupRoutes,
    GroupStatus,
    natural_key,
    ordered,
    seal_decision,
    series_ref,
)
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.platforms.encord import Entry, group_entry
from media_ingest.settings import Settings
from tests.support.fakes import MemoryPartStore
from tests.support.items import dicom_item, image_item, video_item

ROUTES = GroupRoutes({"frames/": GroupKind.IMAGE_GROUPS, "frames/seq/": GroupKind.IMAGE_SEQUENCES})


def test_natural_sort_orders_numbers_by_value() -> None:
    names = ["f10.png", "F2.png", "f1.png", "f100.png", "f02b.png", "g.png", "f9.png"]
    assert sorted(names, key=natural_key) == [
        "f1.png",
        "F2.png",
        "f02b.png",
        "f9.png",
        "f10.png",
        "f100.png",
        "g.png",
    ]


@given(st.lists(st.integers(min_value=0, max_value=10**9), unique=True, min_size=1))
def test_natural_sort_of_numbered_frames_is_numeric(numbers: list[int]) -> None:
    names = [f"frame_{n}.jpg" for n in numbers]
    assert sorted(names, key=natural_key) == [f"frame_{n}.jpg" for n in sorted(numbers)]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("frames/cam1/0001.jpg", ("frames/", GroupKind.IMAGE_GROUPS, "cam1", "0001.jpg", False)),
        ("frames/a/b/7.png", ("frames/", GroupKind.IMAGE_GROUPS, "a/b", "7.png", False)),
        ("frames/seq/run/1.png", ("frames/seq/", GroupKind.IMAGE_SEQUENCES, "run", "1.png", False)),
        ("frames/cam1/_SEALED", ("frames/", GroupKind.IMAGE_GROUPS, "cam1", "_SEALED", True)),
        ("frames/loose.jpg", None),  # no title: not grouped
        ("frames/cam1/", None),  # a folder marker
        ("other/cam1/1.jpg", None),
    ],
)
def test_group_keys(key: str, expected: tuple[object, ...] | None) -> None:
    located = ROUTES.locate(key)
    if expected is None:
        assert located is None
    else:
        assert located is not None
        assert (
            located.prefix,
            located.kind,
            located.title,
            located.name,
            located.is_marker,
        ) == expected


def test_group_ids_keep_prefix_dataset_and_kind_apart() -> None:
    a = ROUTES.locate("frames/x/1.jpg")
    b = ROUTES.locate("frames/seq/x/1.jpg")
    assert a is not None and b is not None
    assert a.ref("main").title == b.ref("main").title == "x"
    assert len({a.ref("main").pk, b.ref("main").pk, a.ref("other").pk}) == 3
    assert GroupRef.parse(a.ref("main").group_id).pk == a.ref("main").pk


def test_image_group_entry_in_natural_order() -> None:
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_GROUPS, scope="frames/x", title="x")
    members = [image_item(f"frames/x/{n}.jpg") for n in (10, 2, 1)]
    entry = group_entry(ref, [*members, members[0]])  # a member listed twice counts once
    assert entry.section == "image_groups"
    assert entry.payload["title"] == "x" and entry.payload["createVideo"] is False
    assert entry.urls == tuple(
        f"https://drop.s3.us-east-1.amazonaws.com/frames/x/{n}.jpg" for n in (1, 2, 10)
    )
    assert entry.key == entry.urls[0]
    assert entry.payload["clientMetadata"]["files"] == 3


def test_an_image_sequence_is_an_image_group_with_create_video() -> None:
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_SEQUENCES, scope="s/x", title="x")
    entry = group_entry(ref, [image_item("s/x/1.jpg")])
    assert (entry.section, entry.payload["createVideo"]) == ("image_groups", True)


def test_dicom_order_instance_number_then_sop_then_name() -> None:
    files = [
        dicom_item("d/z.dcm", instance=2, sop="1.9"),
        dicom_item("d/b.dcm", instance=None, sop="1.1"),
        dicom_item("d/y.dcm", instance=2, sop="1.5"),
        dicom_item("d/a.dcm", instance=10, sop="1.0"),
        dicom_item("d/c.dcm", instance=1, sop="1.7"),
    ]
    assert [i.key for i in ordered(GroupKind.DICOM_SERIES, files)] == [
        "d/c.dcm",
        "d/y.dcm",
        "d/z.dcm",
        "d/a.dcm",
        "d/b.dcm",
    ]


def test_dicom_series_ref_and_entry() -> None:
    item = dicom_item("d/1.dcm", series="1.2.9", description=None)
    ref = series_ref(item)
    assert ref is not None
    assert (ref.kind, ref.scope, ref.title) == (GroupKind.DICOM_SERIES, "1.2.9", "1.2.9")
    assert series_ref(dicom_item("d/1.dcm")).title == "chest"  # type: ignore[union-attr]
    assert series_ref(dicom_item("d/1.dcm", series=None)) is None
    assert series_ref(video_item("v.mp4")) is None
    entry = group_entry(ref, [item])
    assert entry.section == "dicom_series" and "createVideo" not in entry.payload
    assert entry.payload["clientMetadata"]["series_instance_uid"] == "1.2.9"


def test_an_empty_group_has_no_entry() -> None:
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_GROUPS, scope="x", title="x")
    with pytest.raises(ValueError, match="no members"):
        group_entry(ref, [])


T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "last", "now", "seal"),
    [
        (GroupStatus.OPEN, T0, T0 + timedelta(seconds=299), False),
        (GroupStatus.OPEN, T0, T0 + timedelta(seconds=300), True),
        (GroupStatus.OPEN, None, T0 + timedelta(days=1), False),
        (GroupStatus.SEALED, T0, T0 + timedelta(days=1), False),
    ],
)
def test_seal_decision(
    status: GroupStatus, last: datetime | None, now: datetime, seal: bool
) -> None:
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_GROUPS, scope="x", title="x")
    meta = GroupMeta(ref=ref, status=status, members=3, last_member_at=last)
    assert seal_decision(meta, now, quiet_seconds=300) is seal


def test_group_routes_setting() -> None:
    base = {"CATALOG_TABLE": "c", "MANIFEST_BUCKET": "m", "FAILURE_QUEUE_URL": "q"}
    settings = Settings.model_validate(base | {"GROUP_ROUTES": '{"f/": "image_sequences"}'})
    assert settings.group_routes == {"f/": GroupKind.IMAGE_SEQUENCES}
    for bad in ('{"f/": "dicom_series"}', '{"f": "image_groups"}', '{"f/": "videos"}'):
        with pytest.raises(ValueError):
            Settings.model_validate(base | {"GROUP_ROUTES": bad})


def _group(name: str, frames: int) -> Entry:
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_GROUPS, scope=name, title=name)
    return group_entry(ref, [image_item(f"{name}/{i}.jpg") for i in range(frames)])


def test_parts_roll_over_before_the_url_limit() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=100, max_urls=10, sleep=lambda _: None)
    assert writer.append("main", [_group("a", 4), _group("b", 4)]) == 2
    assert writer.append("main", [_group("c", 4)]) == 1  # 12 URLs would not fit: next part
    assert writer.append("main", [_group("d", 2), _group("e", 9)]) == 2
    parts = store.parts("main")
    assert [p.url_count for p in parts] == [8, 6, 9]
    assert all(p.url_count <= 10 for p in parts)
    assert [p.sealed for p in parts] == [True, True, False]
    # Appending the same groups again adds nothing to the open part.
    assert writer.append("main", [_group("e", 9)]) == 0


@given(st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=30))
def test_no_part_exceeds_either_limit(sizes: list[int]) -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=3, max_urls=8, sleep=lambda _: None)
    entries = [_group(f"g{i}", n) for i, n in enumerate(sizes)]
    for start in range(0, len(entries), 4):
        writer.append("main", entries[start : start + 4])
    parts = store.parts("main")
    assert all(p.url_count <= 8 and p.entry_count <= 3 for p in parts)
    assert sum(p.entry_count for p in parts) == len(sizes)


def test_an_entry_larger_than_a_whole_part_is_refused() -> None:
    writer = ManifestWriter(MemoryPartStore(), max_urls=3, sleep=lambda _: None)
    with pytest.raises(ValueError, match="at most 3"):
        writer.append("main", [_group("big", 4)])
