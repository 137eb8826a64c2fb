"""Our Encord registration files as the official `encord` SDK loads them (0.1.211).

Every part any test writes is already checked (tests/conftest.py); these tests pin what the
SDK keeps of a mixed dataset, the checker's own teeth, and the limits the SDK leaves to us.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from media_ingest.groups.rules import GroupKind
from media_ingest.manifests.writer import ManifestWriter, Part
from media_ingest.ops.export import ExportFormat, export
from media_ingest.platforms.encord import (
    MAX_TITLE_CHARS,
    MAX_URL_BYTES,
    Entry,
    EntryTooLarge,
    encord_title,
    entry_for,
    group_entry,
)
from media_ingest.records import CatalogItem
from tests.support import encord_oracle
from tests.support.fakes import MemoryPartStore
from tests.support.items import image_item, mixed_dataset, video_item


def _entries() -> list[Entry]:
    items, groups = mixed_dataset()
    members = {m.object_url for _, group in groups for m in group}
    singles = [entry_for(i) for i in items if i.object_url not in members]
    return singles + [group_entry(meta.ref, group) for meta, group in groups]


def _written_part(update: bool = False) -> dict[str, Any]:
    store = MemoryPartStore()
    writer = ManifestWriter(store, update_datasets=frozenset({"main"} if update else ()))
    writer.append("main", _entries())
    body = store.part_body("main", 1)
    assert body is not None
    return body


def test_a_mixed_part_loads_whole_every_entry_and_field_kept() -> None:
    doc = _written_part()
    parsed = encord_oracle.assert_loads(doc)
    kept = {name: len(value) for name, value in parsed if isinstance(value, list) and value}
    assert kept == {
        "videos": 1,
        "images": 1,
        "image_groups": 2,
        "dicom_series": 1,
        "audio": 1,
        "pdf": 1,
        "text": 1,
    }
    assert parsed.skip_duplicate_urls is True and parsed.upsert_metadata is False
    [video] = parsed.videos
    assert video.client_metadata == doc["videos"][0]["clientMetadata"]  # free-form: kept whole
    # `$encord` is the stack's (owner_metadata.STACK_FIELDS): the owner's block never passes.
    assert video.client_metadata["$encord"] == {
        "keyframes": [0, 12, 30],
        "config": {"sampling_rate": 1, "keyframe_mode": "frame"},
    }
    assert video.video_metadata is not None and video.video_metadata.width == 240
    sequence = next(g for g in parsed.image_groups if g.create_video)
    assert [i.url.rsplit("/", 1)[1] for i in sequence.images] == [
        "frame1.png",
        "frame2.png",
        "frame10.png",
    ]
    [series] = parsed.dicom_series
    assert [f.url.rsplit("/", 1)[1] for f in series.dicom_files] == ["1.dcm", "2.dcm"]
    assert [pdf.object_url for pdf in parsed.pdf] == [
        "https://drop.s3.us-east-1.amazonaws.com/docs/report.pdf"
    ]


def test_the_checker_names_what_the_sdk_would_drop_or_refuse() -> None:
    doc = _written_part()
    doc["pdfs"] = doc.pop("pdf")  # the section name parts had before this was checked
    doc["videos"][0]["videoMetadata"]["codec"] = "h264"
    doc["images"][0]["objectURL"] = doc["images"][0].pop("objectUrl")
    assert sorted(encord_oracle.check(doc)) == [
        "extra_forbidden images.0.objectURL: Extra inputs are not permitted",
        "extra_forbidden pdfs: Extra inputs are not permitted",
        "extra_forbidden videos.0.videoMetadata.codec: Extra inputs are not permitted",
        "missing images.0.objectUrl: Field required",
    ]


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ({"keyframes": [12, 0]}, "not increasing frame numbers"),
        ({"keyframes": [0], "mode": "frame"}, "only keyframes and config belong there"),
        ({"keyframes": [0], "config": {"keyframe_mode": "ms"}}, "must be frame or seconds"),
    ],
)
def test_the_checker_holds_encord_blocks_to_the_metadata_rules(
    block: dict[str, Any], problem: str
) -> None:
    doc = _written_part()
    doc["videos"][0]["clientMetadata"]["$encord"] = block
    [found] = encord_oracle.check(doc)
    assert problem in found


def test_a_top_level_keyframes_key_is_the_sdks_deprecated_special_key() -> None:
    doc = _written_part()
    doc["videos"][0]["clientMetadata"]["keyframes"] = [0, 12]
    [found] = encord_oracle.check(doc)
    assert "clientMetadata.keyframes: not a key Encord's metadata schema accepts" in found


def test_parts_of_an_update_dataset_carry_upsert_metadata_as_the_sdk_reads_it() -> None:
    parsed = encord_oracle.assert_loads(_written_part(update=True))
    assert parsed.upsert_metadata is True and parsed.skip_duplicate_urls is True


def test_an_update_replaces_its_entry_in_the_open_part_and_a_redelivery_changes_nothing() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, update_datasets=frozenset({"main"}))
    first = video_item("v/a.mp4", sequencer="01")
    second = video_item("v/a.mp4", sequencer="02").model_copy(update={"size": 2000})
    writer.append("main", [entry_for(first), entry_for(image_item("i/b.jpg"))])
    assert writer.append("main", [entry_for(second)]) == 1
    assert writer.append("main", [entry_for(second)]) == 0  # redelivered: the same payload
    body = store.part_body("main", 1)
    assert body is not None
    [video] = encord_oracle.assert_loads(body).videos
    assert video.video_metadata is not None and video.video_metadata.file_size == 2000
    assert body["images"] == [entry_for(image_item("i/b.jpg")).payload]


def test_an_update_of_an_entry_in_a_sealed_part_goes_to_the_open_part() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, max_entries=1, update_datasets=frozenset({"main"}))
    first = video_item("v/a.mp4", sequencer="01")
    writer.append("main", [entry_for(first)])
    changed = first.model_copy(update={"size": 5, "sequencer": "02"})
    assert writer.append("main", [entry_for(changed)]) == 1
    sizes = [p["videos"][0]["videoMetadata"]["file_size"] for p in _bodies(store)]
    assert sizes == [1000, 5]  # imported in order, Encord keeps the newest metadata


def test_an_update_survives_a_lost_race_on_the_open_part() -> None:
    store = MemoryPartStore()
    writer = ManifestWriter(store, update_datasets=frozenset({"main"}), sleep=lambda _s: None)
    first = video_item("v/a.mp4")
    writer.append("main", [entry_for(first)])
    store.fail_next_writes = 2
    assert writer.append("main", [entry_for(first.model_copy(update={"size": 7}))]) == 1
    [body] = _bodies(store)
    assert body["videos"][0]["videoMetadata"]["file_size"] == 7


def _bodies(store: MemoryPartStore) -> list[dict[str, Any]]:
    found = []
    number = 1
    while (body := store.part_body("main", number)) is not None:
        found.append(body)
        number += 1
    return found


def test_a_part_written_with_the_legacy_pdfs_key_is_read_and_rewritten_as_pdf() -> None:
    doc = _written_part()
    legacy = {("pdfs" if k == "pdf" else k): v for k, v in doc.items()}
    part = Part.from_encord(legacy, sealed=False)
    assert "pdfs" not in part.sections and len(part.sections["pdf"]) == 1
    assert part.entry_count == 8
    assert part.to_encord() == doc


def test_the_json_export_repairs_legacy_parts_and_copies_the_others_byte_for_byte(
    tmp_path: Path,
) -> None:
    doc = _written_part()
    legacy = json.dumps({("pdfs" if k == "pdf" else k): v for k, v in doc.items()}).encode()
    current = json.dumps(doc).encode()

    class Parts:
        def index_body(self, dataset: str) -> bytes | None:
            return None

        def part_body(self, dataset: str, number: int) -> bytes | None:
            return {1: legacy, 2: current}.get(number)

        def removals_body(self, dataset: str, number: int) -> bytes | None:
            return None

    class NoCatalog:
        def dataset_items(self, dataset: str) -> list[CatalogItem]:
            return []

    summary = export(ExportFormat.ENCORD_JSON, "main", tmp_path, NoCatalog(), Parts())
    folder = tmp_path / "encord-json"
    assert (folder / "part-00002.json").read_bytes() == current
    repaired = json.loads((folder / "part-00001.json").read_text())
    encord_oracle.assert_loads(repaired)
    assert repaired == doc
    assert summary.entries == 16
    assert summary.notes == ["part-00001.json: section 'pdfs' renamed 'pdf' (Encord's name)"]


def test_a_title_past_300_characters_keeps_its_end_and_the_full_key_stays_in_metadata() -> None:
    key = "deep/" + "d" * 400 + "/clip.mp4"
    entry = entry_for(video_item(key))
    title = entry.payload["title"]
    assert len(title) == MAX_TITLE_CHARS
    assert title.startswith("…") and title.endswith("d/clip.mp4")
    assert entry.payload["clientMetadata"]["key"] == key
    assert encord_title("short.mp4") == "short.mp4"
    group = group_entry(
        mixed_dataset()[1][0][0].ref.model_copy(update={"title": "t" * 301}),
        [image_item("frames/x/a.png")],
    )
    assert len(group.payload["title"]) == MAX_TITLE_CHARS


def test_an_entry_with_a_title_encord_would_refuse_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="at most 300 characters"):
        Entry(section="videos", payload={"objectUrl": "https://x/a.mp4", "title": "t" * 301})


def test_an_object_url_past_16_kb_cannot_be_built() -> None:
    item = video_item("v/" + "k" * (MAX_URL_BYTES + 1))
    with pytest.raises(EntryTooLarge, match="16 KB"):
        entry_for(item)


def test_a_group_kind_maps_to_the_sdks_section() -> None:
    for kind, section in [
        (GroupKind.IMAGE_GROUPS, "image_groups"),
        (GroupKind.IMAGE_SEQUENCES, "image_groups"),
        (GroupKind.DICOM_SERIES, "dicom_series"),
    ]:
        meta, members = next(g for g in mixed_dataset()[1] if g[0].ref.kind is kind)
        assert group_entry(meta.ref, members).section == section
