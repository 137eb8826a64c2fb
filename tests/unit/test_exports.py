"""Export conversions: Encord CSV rows and refusals, Nucleus items and scenes, the layout."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import nucleus
import pytest

from media_ingest.groups.rules import GroupKind, GroupMeta, GroupRef, GroupStatus
from media_ingest.manifests.removals import RemovalLog
from media_ingest.manifests.writer import ManifestWriter, Part
from media_ingest.ops.export import SEQUENCE_FRAME_RATE, ExportFormat, export
from media_ingest.platforms.encord import CSV_REASON as REASON
from media_ingest.platforms.encord import Entry, csv_rows, entry_for
from media_ingest.platforms.encord import write_csv as write_rows
from media_ingest.platforms.nucleus import (
    MAX_SCENE_FRAMES,
    NucleusItem,
    NucleusScene,
    SceneError,
    convert,
    reference_id,
    sequence_scene,
)
from media_ingest.records import CatalogItem, Refusal, UrlChange
from tests.support.fakes import MemoryPartStore
from tests.support.items import VFR_TIMING, audio_item, dicom_item, image_item, video_item


def _group(title: str, urls: list[str], create_video: bool) -> Entry:
    payload: dict[str, object] = {"title": title, "createVideo": create_video}
    payload |= {f"objectUrl_{i}": url for i, url in enumerate(urls)}
    return Entry(section="image_groups", payload=payload)


def test_csv_has_a_row_per_video_and_per_frame_of_each_group_in_frame_order() -> None:
    frames = [f"https://b.s3.us-east-1.amazonaws.com/seq/{i}.jpg" for i in range(12)]
    result = csv_rows(
        [
            entry_for(video_item("cams/a b.mp4")),
            _group("walk", frames, create_video=True),
            _group("album", frames[:2], create_video=False),
        ]
    )
    assert result.entries == 3 and result.refused == []
    out = io.StringIO()
    write_rows(result.rows, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == ["ObjectUrl", "Title", "Create video"]
    assert rows[0] == {
        "ObjectUrl": "https://drop.s3.us-east-1.amazonaws.com/cams/a%20b.mp4",
        "Title": "cams/a b.mp4",
        "Create video": "",
    }
    walk = [r for r in rows if r["Title"] == "walk"]
    assert [r["ObjectUrl"] for r in walk] == frames  # objectUrl_10 after objectUrl_9
    assert {r["Create video"] for r in walk} == {"true"}
    assert [r["Create video"] for r in rows if r["Title"] == "album"] == ["false", "false"]
    assert len(rows) == 1 + 12 + 2


def test_csv_refuses_single_images_dicom_and_the_rest_by_name() -> None:
    result = csv_rows(
        entry_for(i)
        for i in (
            image_item("a.jpg"),
            image_item("b.jpg"),
            dicom_item("s/1.dcm"),
            audio_item("t.flac"),
            video_item("v.mp4"),
        )
    )
    assert [r.object_url for r in result.rows] == ["https://drop.s3.us-east-1.amazonaws.com/v.mp4"]
    assert sorted((r.kind, r.object_url.rsplit("/", 1)[-1]) for r in result.refused) == [
        ("audio", "t.flac"),
        ("dicom_series", "1.dcm"),
        ("images", "a.jpg"),
        ("images", "b.jpg"),
    ]
    assert {r.reason for r in result.refused} == {REASON}


def test_image_becomes_a_dataset_item_the_official_client_reads() -> None:
    item = image_item("photos/x y.jpg")
    converted = convert(item)
    assert isinstance(converted, NucleusItem)
    loaded = nucleus.DatasetItem.from_json(json.loads(converted.model_dump_json()))
    assert loaded.reference_id == "drop/photos/x y.jpg" == reference_id(item)
    assert loaded.image_location == "https://drop.s3.us-east-1.amazonaws.com/photos/x%20y.jpg"
    assert loaded.metadata is not None
    assert loaded.metadata["width"] == 48 and loaded.metadata["height"] == 64
    assert loaded.metadata["orientation"] == 6 and "version_id" not in loaded.metadata
    assert loaded.to_payload()["image_url"] == loaded.image_location


def test_video_becomes_a_video_scene_by_url_that_validates() -> None:
    converted = convert(video_item("cams/clip.mp4"))
    assert isinstance(converted, NucleusScene)
    scene = nucleus.VideoScene.from_json(converted.payload())
    assert scene.reference_id == "drop/cams/clip.mp4"
    assert scene.video_location == "https://drop.s3.us-east-1.amazonaws.com/cams/clip.mp4"
    # The client refuses a frame_rate beside a video URL: the probed rate is metadata.
    assert scene.frame_rate is None
    assert scene.metadata["fps"] == 29.97 and scene.metadata["fps_fraction"] == "30000/1001"
    assert scene.metadata["duration"] == 2.0 and scene.metadata["rotation"] == 90
    assert scene.to_payload()["video_url"] == scene.video_location  # validate() passes


def test_a_variable_rate_scene_carries_its_timing_and_no_fps_as_the_rate() -> None:
    converted = convert(video_item("phone/vfr.mov", timing=VFR_TIMING))
    assert isinstance(converted, NucleusScene)
    scene = nucleus.VideoScene.from_json(converted.payload())
    metadata = scene.metadata
    assert "fps" not in metadata and "fps_fraction" not in metadata
    assert (metadata["avg_fps"], metadata["avg_fps_fraction"]) == (29.97, "30000/1001")
    assert (metadata["frame_count"], metadata["frame_rate_mode"]) == (85, "variable")
    assert (metadata["frame_duration_min"], metadata["frame_duration_max"]) == (0.033333, 0.066667)
    constant = convert(video_item("cams/clip.mp4"))
    assert isinstance(constant, NucleusScene)
    assert constant.metadata["frame_rate_mode"] == "constant"
    assert constant.metadata["frame_count"] == 60


def test_kinds_nucleus_has_no_form_for_are_refusals() -> None:
    refused = convert(audio_item("t.flac"))
    assert isinstance(refused, Refusal) and refused.kind == "audio"


def _frames(count: int) -> list[CatalogItem]:
    one = image_item("seq/0.jpg")
    return [
        one.model_copy(update={"key": f"seq/{i:05d}.jpg", "object_url": f"https://b/seq/{i}.jpg"})
        for i in range(count)
    ]


def test_image_sequence_scene_keeps_frame_order_and_rate() -> None:
    scene = sequence_scene("walk-1", _frames(MAX_SCENE_FRAMES), frame_rate=10, metadata={"a": 1})
    loaded = nucleus.VideoScene.from_json(scene.payload())
    assert loaded.frame_rate == 10 and loaded.metadata == {"a": 1}
    assert loaded.length == 3000
    assert [i.image_location for i in loaded.items[:3]] == [
        "https://b/seq/0.jpg",
        "https://b/seq/1.jpg",
        "https://b/seq/2.jpg",
    ]
    assert loaded.items[2].reference_id == "drop/seq/00002.jpg"
    loaded.validate()


def test_image_sequence_over_3000_frames_is_refused_clearly() -> None:
    with pytest.raises(SceneError, match=r"3,001 frames.*at most 3,000"):
        sequence_scene("long", _frames(MAX_SCENE_FRAMES + 1), frame_rate=30)


@pytest.mark.parametrize(
    ("frames", "rate", "message"),
    [
        ([], 10, "no frames"),
        (None, 0, "frame_rate must be at least 1"),
        ("video", 10, "are not images"),
        ("twice", 10, "lists a frame twice"),
    ],
)
def test_image_sequence_errors(frames: object, rate: int, message: str) -> None:
    chosen: list[CatalogItem]
    if frames is None:
        chosen = _frames(2)
    elif frames == "video":
        chosen = [*_frames(1), video_item("v.mp4")]
    elif frames == "twice":
        chosen = _frames(1) * 2
    else:
        chosen = []
    with pytest.raises(SceneError, match=message):
        sequence_scene("s", chosen, frame_rate=rate)


class _Catalog:
    def __init__(self, items: list[CatalogItem]) -> None:
        self.items = items

    def dataset_items(self, dataset: str) -> list[CatalogItem]:
        return [i for i in self.items if i.dataset == dataset]


def test_nucleus_layout_and_update_flag(tmp_path: Path) -> None:
    catalog = _Catalog([image_item("a.jpg"), video_item("v.mp4"), audio_item("t.flac")])
    ticks: list[int] = []
    summary = export(
        ExportFormat.NUCLEUS,
        "main",
        tmp_path,
        catalog,
        _Parts(MemoryPartStore()),
        update=True,
        progress=ticks.append,
    )
    folder = tmp_path / "nucleus"
    assert summary.files == ["export.json", "items.jsonl", "refused.csv", "scenes.jsonl"]
    assert summary.entries == 2 and summary.refused == {"audio": 1} and ticks == [1, 2, 3]
    info = json.loads((folder / "export.json").read_text())
    assert info["update"] is True and (info["items"], info["scenes"]) == (1, 1)
    refused = list(csv.DictReader((folder / "refused.csv").open()))
    assert [(r["kind"], r["object_url"]) for r in refused] == [
        ("audio", "https://drop.s3.us-east-1.amazonaws.com/t.flac")
    ]
    # A second export replaces the folder whole: no stale refused.csv survives.
    again = export(
        ExportFormat.NUCLEUS,
        "main",
        tmp_path,
        _Catalog(catalog.items[:1]),
        _Parts(MemoryPartStore()),
    )
    assert again.files == ["export.json", "items.jsonl", "scenes.jsonl"]
    assert json.loads((folder / "export.json").read_text())["update"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["nucleus"]  # no staging left behind


def test_update_applies_to_nucleus_only_and_unknown_datasets_fail(tmp_path: Path) -> None:
    catalog = _Catalog([video_item("v.mp4")])
    with pytest.raises(ValueError, match="applies to --format nucleus"):
        export(
            ExportFormat.ENCORD_CSV,
            "main",
            tmp_path,
            catalog,
            _Parts(MemoryPartStore()),
            update=True,
        )
    with pytest.raises(LookupError, match="'nope' has no registered items"):
        export(ExportFormat.ENCORD_CSV, "nope", tmp_path, catalog, _Parts(MemoryPartStore()))
    with pytest.raises(LookupError, match="'main' has no manifest parts"):
        export(ExportFormat.ENCORD_JSON, "main", tmp_path, catalog, _Parts(MemoryPartStore()))
    assert list(tmp_path.iterdir()) == []


class _Parts:
    """The memory store's parts as the bytes S3 would hold (the export copies bytes)."""

    def __init__(self, store: MemoryPartStore, hide_from_index: int | None = None) -> None:
        self.store = store
        self.hide = hide_from_index

    def part_body(self, dataset: str, number: int) -> bytes | None:
        got = self.store.read_part(dataset, number)
        return json.dumps(got.value.to_encord()).encode() if got else None

    def removals_body(self, dataset: str, number: int) -> bytes | None:
        got = self.store.read_removals(dataset, number)
        return got.value.model_dump_json().encode() if got else None

    def index_body(self, dataset: str) -> bytes | None:
        got = self.store.read_index(dataset)
        if got is None:
            return None
        index = got.value
        if self.hide is not None:
            index = index.model_copy(
                update={
                    "parts": [p for p in index.parts if p.number != self.hide],
                    "open_part": self.hide - 1,
                }
            )
        return index.model_dump_json().encode()


def test_encord_json_copies_every_part_even_one_the_index_does_not_list(tmp_path: Path) -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=2)
    writer.append("main", [entry_for(video_item(f"v{i}.mp4")) for i in range(5)])
    summary = export(
        ExportFormat.ENCORD_JSON, "main", tmp_path, _Catalog([]), _Parts(store, hide_from_index=3)
    )
    assert summary.files == ["index.json", "part-00001.json", "part-00002.json", "part-00003.json"]
    assert summary.entries == 5
    for number in (1, 2, 3):
        stored = store.read_part("main", number)
        assert stored is not None
        written = json.loads((tmp_path / "encord-json" / f"part-{number:05d}.json").read_text())
        assert written == stored.value.to_encord()
        assert Part.from_encord(written, sealed=False).entry_count == stored.value.entry_count


def test_encord_json_carries_the_removal_log(tmp_path: Path) -> None:
    store = MemoryPartStore()
    kept, gone = video_item("kept.mp4"), video_item("gone.mp4")
    ManifestWriter(store).append("main", [entry_for(kept), entry_for(gone)])
    change = UrlChange(
        object_url=gone.object_url, key=gone.key, change="removed", at=gone.event_time, event_id="d"
    )
    RemovalLog(store).record("main", [change])
    summary = export(ExportFormat.ENCORD_JSON, "main", tmp_path, _Catalog([]), _Parts(store))
    assert summary.files == ["index.json", "part-00001.json", "removed-00001.json"]
    log = json.loads((tmp_path / "encord-json" / "removed-00001.json").read_text())
    assert [c["object_url"] for c in log["changes"]] == [gone.object_url]


class _Groups:
    """Sealed groups as the group table gives them to an export."""

    def __init__(self, *groups: tuple[GroupKind, str, list[CatalogItem]]) -> None:
        self.groups = [
            (
                GroupMeta(
                    ref=GroupRef(dataset="main", kind=kind, scope=f"p/{title}", title=title),
                    status=GroupStatus.SEALED,
                    members=len(items),
                ),
                items,
            )
            for kind, title, items in groups
        ]

    def sealed_groups(self, dataset: str) -> list[tuple[GroupMeta, list[CatalogItem]]]:
        return [(m, g) for m, g in self.groups if m.ref.dataset == dataset]


def _group_frames(title: str, numbers: list[int]) -> list[CatalogItem]:
    return [image_item(f"p/{title}/{n}.jpg") for n in numbers]


def test_sealed_groups_feed_csv_rows_in_frame_order(tmp_path: Path) -> None:
    group, sequence = _group_frames("g", [10, 2]), _group_frames("s", [3, 1, 20])
    loose = video_item("v.mp4")
    catalog = _Catalog([*group, *sequence, loose])
    groups = _Groups(
        (GroupKind.IMAGE_GROUPS, "g", group), (GroupKind.IMAGE_SEQUENCES, "s", sequence)
    )
    summary = export(
        ExportFormat.ENCORD_CSV, "main", tmp_path, catalog, _Parts(MemoryPartStore()), groups=groups
    )
    assert summary.entries == 3 and summary.refused == {}  # members are not refused images
    rows = list(csv.DictReader((tmp_path / "encord-csv" / "registration.csv").open()))
    base = "https://drop.s3.us-east-1.amazonaws.com/"
    assert [(r["ObjectUrl"].removeprefix(base), r["Title"], r["Create video"]) for r in rows] == [
        ("p/g/2.jpg", "g", "false"),
        ("p/g/10.jpg", "g", "false"),
        ("p/s/1.jpg", "s", "true"),
        ("p/s/3.jpg", "s", "true"),
        ("p/s/20.jpg", "s", "true"),
        ("v.mp4", "v.mp4", ""),
    ]


def test_a_sealed_sequence_is_one_nucleus_scene_of_its_group_frames(tmp_path: Path) -> None:
    sequence, group = _group_frames("s", [3, 1, 20]), _group_frames("g", [1])
    groups = _Groups(
        (GroupKind.IMAGE_SEQUENCES, "s", sequence), (GroupKind.IMAGE_GROUPS, "g", group)
    )
    summary = export(
        ExportFormat.NUCLEUS,
        "main",
        tmp_path,
        _Catalog([*sequence, *group]),
        _Parts(MemoryPartStore()),
        groups=groups,
    )
    folder = tmp_path / "nucleus"
    [line] = (folder / "scenes.jsonl").read_text().splitlines()
    scene = nucleus.VideoScene.from_json(json.loads(line))
    assert scene.reference_id == "drop/p/s" and scene.frame_rate == SEQUENCE_FRAME_RATE
    assert [i.reference_id for i in scene.items] == [
        "drop/p/s/1.jpg",
        "drop/p/s/3.jpg",
        "drop/p/s/20.jpg",
    ]
    items = (folder / "items.jsonl").read_text().splitlines()
    assert [json.loads(i)["reference_id"] for i in items] == ["drop/p/g/1.jpg"]
    assert summary.entries == 2


def test_a_sequence_nucleus_cannot_hold_is_refused_by_name(tmp_path: Path) -> None:
    sequence = _group_frames("long", list(range(MAX_SCENE_FRAMES + 1)))
    summary = export(
        ExportFormat.NUCLEUS,
        "main",
        tmp_path,
        _Catalog(sequence),
        _Parts(MemoryPartStore()),
        groups=_Groups((GroupKind.IMAGE_SEQUENCES, "long", sequence)),
    )
    assert summary.refused == {"image_sequences": 1} and summary.entries == 0
