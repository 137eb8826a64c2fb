"""One mixed dataset (every kind, an image group, an image sequence, a DICOM series, owner
metadata, key frames, annotation links) exported in every format, each loaded with the
platform's own code where it can be had here: the `encord` SDK's models, `scale-nucleus`'s
`from_json`, label-studio-sdk's config parser, and, for CVAT, a checker of its reader's rules
(tests/support/cvat_reader.py says why not CVAT's own). Nothing may go missing silently:
every object is exported or listed in refused.csv, and what is exported keeps every field.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import nucleus
import pytest
from label_studio_sdk.label_interface.interface import LabelInterface

from media_ingest.groups.rules import GroupMeta
from media_ingest.media import MediaKind
from media_ingest.ops.export import ExportFormat, ExportSummary, export
from media_ingest.platforms import cvat, label_studio
from media_ingest.platforms import nucleus as nucleus_format
from media_ingest.records import CatalogItem
from tests.support import cvat_reader
from tests.support.items import image_item, mixed_dataset, video_item

ITEMS, GROUPS = mixed_dataset()
URLS = {i.object_url for i in ITEMS}


class _Catalog:
    def __init__(self, items: list[CatalogItem]) -> None:
        self.items = items

    def dataset_items(self, dataset: str) -> list[CatalogItem]:
        return list(self.items)


class _Groups:
    def __init__(self, groups: list[tuple[GroupMeta, list[CatalogItem]]]) -> None:
        self.groups = groups

    def sealed_groups(self, dataset: str) -> Iterator[tuple[GroupMeta, list[CatalogItem]]]:
        return iter(self.groups)


class _NoParts:
    def index_body(self, dataset: str) -> bytes | None:
        return None

    def part_body(self, dataset: str, number: int) -> bytes | None:
        return None

    def removals_body(self, dataset: str, number: int) -> bytes | None:
        return None


def _export(fmt: ExportFormat, out: Path, items: list[CatalogItem] = ITEMS) -> ExportSummary:
    groups = _Groups(GROUPS if items is ITEMS else [])
    return export(fmt, "main", out, _Catalog(items), _NoParts(), groups=groups)


def _refused(folder: Path) -> dict[str, str]:
    path = folder / "refused.csv"
    if not path.exists():
        return {}
    return {r["object_url"]: r["kind"] for r in csv.DictReader(path.open(encoding="utf-8"))}


def test_nucleus_loads_every_image_and_video_with_every_field(tmp_path: Path) -> None:
    summary = _export(ExportFormat.NUCLEUS, tmp_path)
    folder = tmp_path / "nucleus"
    items = [json.loads(line) for line in (folder / "items.jsonl").open()]
    scenes = [json.loads(line) for line in (folder / "scenes.jsonl").open()]
    for line in items:
        loaded = nucleus.DatasetItem.from_json(line)
        assert (loaded.reference_id, loaded.image_location) == (
            line["reference_id"],
            line["image_url"],
        )
        assert loaded.metadata == line["metadata"]
    for line in scenes:
        scene = nucleus.VideoScene.from_json(line)
        scene.validate()
        assert scene.metadata == line["metadata"]
        assert [f.image_location for f in scene.items] == [
            f["image_url"] for f in line.get("frames", [])
        ]
    exported = {i["image_url"] for i in items} | {s.get("video_url") for s in scenes}
    exported |= {f["image_url"] for s in scenes for f in s.get("frames", [])}
    # Every object is exported or refused by name, none twice.
    refused = _refused(folder)
    assert exported - {None} | set(refused) == URLS and not (exported & set(refused))
    assert sorted(refused.values()) == ["audio", "dicom", "dicom", "pdf", "text"]
    assert summary.entries == len(items) + len(scenes) == 1 + 2 + 1 + 1  # + sequence, video


def test_label_studio_writes_a_tasks_file_and_its_config_per_kind(tmp_path: Path) -> None:
    summary = _export(ExportFormat.LABEL_STUDIO, tmp_path)
    folder = tmp_path / "label-studio"
    info = json.loads((folder / "export.json").read_text())
    assert info["buckets"] == ["drop"]
    counts = {f["kind"]: f["count"] for f in info["files"]}
    assert counts == {"audio": 1, "image": 6, "pdf": 1, "text": 1, "video": 1}
    uris: set[str] = set()
    for entry in info["files"]:
        tasks = json.loads((folder / entry["tasks"]).read_text())
        config = LabelInterface((folder / entry["config"]).read_text())
        # label-studio-sdk's own parser: the config shows exactly the key every task holds.
        [tag] = config.objects
        key = tag.value.removeprefix("$")
        assert tag.value == f"${key}" and key == label_studio.DATA_KEYS[MediaKind(entry["kind"])]
        for task in tasks:
            assert list(task) == ["data", "meta"] and list(task["data"]) == [key]
            assert task["data"][key] == f"s3://drop/{task['meta']['key']}"
            uris.add(task["meta"]["object_url"])
    refused = _refused(folder)
    assert uris | set(refused) == URLS and not uris & set(refused)
    assert sorted(refused.values()) == ["dicom", "dicom"]
    assert summary.entries == 10 and summary.refused == {"dicom": 2}


def test_a_label_studio_task_keeps_probe_owner_annotation_and_group_metadata(
    tmp_path: Path,
) -> None:
    _export(ExportFormat.LABEL_STUDIO, tmp_path)
    folder = tmp_path / "label-studio"
    [video] = json.loads((folder / "tasks-video.json").read_text())
    item = ITEMS[0]
    assert item.media.video is not None and item.media.annotations is not None
    assert video["meta"] == {
        "object_url": item.object_url,
        "dataset": "main",
        "bucket": "drop",
        "key": "cams/clip.mp4",
        "etag": "e",
        "kind": "video",
        "mime_type": "video/mp4",
        "size": 1000,
        "probe": json.loads(item.media.video.model_dump_json(exclude_none=True)),
        "owner": item.media.client_metadata,
        "annotations": json.loads(item.media.annotations.model_dump_json()),
    }
    assert video["meta"]["probe"]["keyframes"] == [0, 12, 30]
    images = json.loads((folder / "tasks-image.json").read_text())
    sequence = [t for t in images if t["meta"].get("group", {}).get("kind") == "image_sequences"]
    assert [t["meta"]["key"] for t in sequence] == [
        "seq/run7/frame1.png",
        "seq/run7/frame2.png",
        "seq/run7/frame10.png",
    ]
    assert sequence[0]["meta"]["group"] == {"kind": "image_sequences", "scope": "seq/run7"}


@pytest.mark.parametrize("key", ["odd/what?.png", " lead.png", "trail.png "])
def test_a_key_label_studio_storage_cannot_resolve_is_refused_by_name(
    tmp_path: Path, key: str
) -> None:
    summary = _export(ExportFormat.LABEL_STUDIO, tmp_path, [image_item(key), image_item("ok.png")])
    [row] = csv.DictReader((tmp_path / "label-studio/refused.csv").open())
    assert row["reason"] == label_studio.UNRESOLVABLE and summary.entries == 1


def test_cvat_manifest_lists_every_image_as_cvats_reader_takes_it(tmp_path: Path) -> None:
    summary = _export(ExportFormat.CVAT, tmp_path)
    folder = tmp_path / "cvat"
    assert summary.files == ["drop/manifest.jsonl", "refused.csv"]
    images = cvat_reader.read(folder / "drop" / "manifest.jsonl")
    assert images == {
        "img/portrait.jpg": (48, 64),  # as displayed: EXIF orientation 6 applied, as CVAT does
        "frames/cam1/a.png": (48, 64),
        "frames/cam1/b.png": (48, 64),
        "seq/run7/frame1.png": (48, 64),
        "seq/run7/frame2.png": (48, 64),
        "seq/run7/frame10.png": (48, 64),
    }
    # With the manifest at the bucket's root, each name maps back to its object's key.
    image_keys = {i.key for i in ITEMS if i.kind is MediaKind.IMAGE}
    assert set(cvat_reader.task_files("manifest.jsonl", images)) == image_keys
    refused = list(csv.DictReader((folder / "refused.csv").open()))
    assert sorted(r["kind"] for r in refused) == ["audio", "dicom", "dicom", "pdf", "text", "video"]
    [video] = [r for r in refused if r["kind"] == "video"]
    assert video["reason"] == cvat.VIDEO_REASON


def test_cvat_needs_an_extension_to_map_a_file_to_its_line(tmp_path: Path) -> None:
    _export(ExportFormat.CVAT, tmp_path, [image_item("img/noext"), image_item("img/ok.jpg")])
    [row] = csv.DictReader((tmp_path / "cvat/refused.csv").open())
    assert row["reason"] == cvat.NO_EXTENSION
    assert list(cvat_reader.read(tmp_path / "cvat/drop/manifest.jsonl")) == ["img/ok.jpg"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"version":"2.0"}', '{"type":"images"}', '{"name":"a","extension":".png"}'], "version"),
        (['{"version":"1.1"}', '{"type":"video"}', '{"name":"a","extension":".png"}'], "type"),
        (['{"version":"1.1"}', '{"type":"images"}', '{"name":"a"}'], "not a dataset manifest"),
        (
            ['{"version":"1.1"}', '{"type":"images"}', '{"name":"a","extension":".png"}'],
            "width or height",
        ),
        (['{"version":"1.1"}', "", '{"type":"images"}'], "not a dataset manifest"),
    ],
)
def test_the_cvat_checker_refuses_what_cvats_reader_refuses(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(cvat_reader.CvatManifestError, match=message):
        cvat_reader.read(path)


def test_one_cvat_manifest_per_source_bucket(tmp_path: Path) -> None:
    other = image_item("b/x.png").model_copy(update={"bucket": "legacy"})
    summary = _export(ExportFormat.CVAT, tmp_path, [image_item("a/y.png"), other])
    assert summary.files == ["drop/manifest.jsonl", "legacy/manifest.jsonl"]
    assert list(cvat_reader.read(tmp_path / "cvat/legacy/manifest.jsonl")) == ["b/x.png"]


def test_a_video_alone_is_refused_for_cvat_not_an_empty_manifest(tmp_path: Path) -> None:
    summary = _export(ExportFormat.CVAT, tmp_path, [video_item("v/a.mp4")])
    assert summary.entries == 0 and summary.files == ["refused.csv"]


def test_nucleus_refuses_what_its_client_would_refuse_by_name(tmp_path: Path) -> None:
    nan_video = video_item("v/nan.mp4")
    assert nan_video.media.video is not None
    bad = nan_video.media.video.model_copy(update={"fps": float("nan")})
    nan_video = nan_video.model_copy(
        update={"media": nan_video.media.model_copy(update={"video": bad})}
    )
    ftp = image_item("i/ftp.png").model_copy(update={"object_url": "ftp://drop/i/ftp.png"})
    twin = image_item("i/a.png").model_copy(update={"object_url": "s3://drop/i/a.png"})
    summary = _export(ExportFormat.NUCLEUS, tmp_path, [nan_video, ftp, image_item("i/a.png"), twin])
    reasons = {
        r["object_url"]: r["reason"]
        for r in csv.DictReader((tmp_path / "nucleus/refused.csv").open())
    }
    assert reasons == {
        nan_video.object_url: nucleus_format.NOT_FINITE,
        "ftp://drop/i/ftp.png": nucleus_format.NOT_REMOTE,
        "s3://drop/i/a.png": nucleus_format.DUPLICATE,
    }
    assert summary.entries == 1


def test_nucleus_files_stay_below_the_clients_payload_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [image_item(f"i/{n:03d}.png") for n in range(10)]
    line = len(nucleus_format.dataset_item(items[0]).model_dump_json().encode()) + 1
    monkeypatch.setattr(nucleus_format, "MAX_PAYLOAD_BYTES", line * 4)
    summary = _export(ExportFormat.NUCLEUS, tmp_path, items)
    folder = tmp_path / "nucleus"
    info = json.loads((folder / "export.json").read_text())
    assert info["items_files"] == ["items.jsonl", "items-00002.jsonl", "items-00003.jsonl"]
    sizes = [(folder / name).stat().st_size for name in info["items_files"]]
    assert max(sizes) <= line * 4 and summary.entries == 10
    loaded = [
        nucleus.DatasetItem.from_json(json.loads(text))
        for name in info["items_files"]
        for text in (folder / name).open()
    ]
    assert [i.reference_id for i in loaded] == [f"drop/i/{n:03d}.png" for n in range(10)]
