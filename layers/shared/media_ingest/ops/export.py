"""The export command's work: one dataset written as files a labelling platform imports.

Formats: `encord-json` (the manifest parts and index, copied as stored), `encord-csv` and
`nucleus` (from the dataset's catalog items). Reads through two small interfaces, writes
only under `OUT/<format>/`, which it replaces whole; never calls AWS itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from media_ingest.groups.rules import GroupKind, GroupMeta, ordered
from media_ingest.manifests.writer import Part
from media_ingest.platforms import encord, nucleus
from media_ingest.platforms.encord import entry_for, group_entry
from media_ingest.records import CatalogItem, Refusal, utcnow

REFUSED_FILE = "refused.csv"
# A Nucleus VideoScene of frames needs a frame rate and S3 has none to give: sealed image
# sequences are exported at this rate (README "Groups").
SEQUENCE_FRAME_RATE = 10

type Sealed = tuple[GroupMeta, list[CatalogItem]]
CSV_FILE = "registration.csv"


class ExportFormat(StrEnum):
    ENCORD_JSON = "encord-json"
    ENCORD_CSV = "encord-csv"
    NUCLEUS = "nucleus"


class CatalogReader(Protocol):
    def dataset_items(self, dataset: str) -> Iterable[CatalogItem]: ...


class GroupReader(Protocol):
    def sealed_groups(self, dataset: str) -> Iterable[tuple[GroupMeta, list[CatalogItem]]]: ...


class ManifestFiles(Protocol):
    def index_body(self, dataset: str) -> bytes | None: ...
    def part_body(self, dataset: str, number: int) -> bytes | None: ...
    def removals_body(self, dataset: str, number: int) -> bytes | None: ...


class ExportSummary(BaseModel):
    """What an export wrote: the command's summary and its --json output."""

    dataset: str
    format: ExportFormat
    folder: str
    files: list[str]
    entries: int = Field(description="entries (Encord) or items and scenes (Nucleus) written")
    refused: dict[str, int] = Field(default_factory=dict, description="refused objects by kind")
    update: bool | None = None


class NucleusExportInfo(BaseModel):
    """`export.json` beside the Nucleus files: what an importer passes to `Dataset.append`."""

    dataset: str
    update: bool = Field(
        description="pass as Dataset.append(..., update=): on a reference_id collision, "
        "true overwrites the stored item's metadata, false ignores the item"
    )
    items_file: str = "items.jsonl"
    scenes_file: str = "scenes.jsonl"
    items: int
    scenes: int
    exported_at: str


type Progress = Callable[[int], None]


def export(
    fmt: ExportFormat,
    dataset: str,
    out: Path,
    catalog: CatalogReader,
    manifests: ManifestFiles,
    *,
    update: bool = False,
    progress: Progress | None = None,
    groups: GroupReader | None = None,
) -> ExportSummary:
    """Write the dataset in `fmt` under `out/<fmt>/` (replacing it); return what was written."""
    if update and fmt is not ExportFormat.NUCLEUS:
        raise ValueError("--update is Nucleus's collision rule: it applies to --format nucleus")
    tick = progress or (lambda _done: None)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{fmt.value}-", dir=out))
    try:
        refused: list[Refusal] = []
        if fmt is ExportFormat.ENCORD_JSON:
            entries = _encord_json(dataset, manifests, stage, tick)
        else:
            sealed = list(groups.sealed_groups(dataset)) if groups is not None else []
            members = {m.object_url for _, group in sealed for m in group}
            items = (i for i in catalog.dataset_items(dataset) if i.object_url not in members)
            if fmt is ExportFormat.ENCORD_CSV:
                entries, refused = _encord_csv(sealed, items, stage, tick)
            else:
                entries, refused = _nucleus(dataset, sealed, items, stage, tick, update=update)
        if entries == 0 and not refused:
            raise LookupError(f"dataset {dataset!r} has no registered items")
        if refused:
            _write_refusals(refused, stage / REFUSED_FILE)
        target = out / fmt.value
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ExportSummary(
        dataset=dataset,
        format=fmt,
        folder=str(target),
        files=sorted(p.name for p in target.iterdir()),
        entries=entries,
        refused=dict(Counter(r.kind for r in refused)),
        update=update if fmt is ExportFormat.NUCLEUS else None,
    )


def _encord_json(dataset: str, manifests: ManifestFiles, stage: Path, tick: Progress) -> int:
    """Every part byte for byte (each an importable Encord file), and the index."""
    index = manifests.index_body(dataset)
    known: set[int] = set()
    if index is not None:
        parsed = json.loads(index)
        known = {int(p["number"]) for p in parsed.get("parts", [])}
        known.add(int(parsed.get("open_part", 1)))
    # The open part exists before the index lists it (and after a crash between the two
    # writes it may never be listed): read on past the last known part until one is missing.
    last = max(known, default=0)
    entries = written = 0
    number = 1
    while True:
        body = manifests.part_body(dataset, number)
        if body is None and number > last:
            break
        if body is not None:
            (stage / f"part-{number:05d}.json").write_bytes(body)
            entries += Part.from_encord(json.loads(body), sealed=False).entry_count
            written += 1
            tick(written)
        number += 1
    if written == 0:
        raise LookupError(f"dataset {dataset!r} has no manifest parts")
    if index is not None:
        (stage / "index.json").write_bytes(index)
        # The removal log (deleted URLs) the index lists, so the folder is whole.
        for info in json.loads(index).get("removals", []):
            log = manifests.removals_body(dataset, int(info["number"]))
            if log is not None:
                (stage / f"removed-{int(info['number']):05d}.json").write_bytes(log)
    return entries


def _encord_csv(
    sealed: list[Sealed], items: Iterable[CatalogItem], stage: Path, tick: Progress
) -> tuple[int, list[Refusal]]:
    """Sealed groups as their entries (a row per frame, in frame order), then every item
    that is in no sealed group as its own entry."""
    result = encord.CsvExport()
    encord.csv_rows((group_entry(meta.ref, members) for meta, members in sealed), result)
    for count, item in enumerate(items, 1):
        encord.csv_rows([entry_for(item)], into=result)
        tick(count)
    with (stage / CSV_FILE).open("w", encoding="utf-8", newline="") as stream:
        encord.write_csv(result.rows, stream)
    return result.entries, result.refused


def _sequence_scene(meta: GroupMeta, members: list[CatalogItem]) -> nucleus.NucleusScene | Refusal:
    """A sealed image sequence as one VideoScene of its frames, in frame order."""
    ref = meta.ref
    frames = ordered(ref.kind, members)
    try:
        return nucleus.sequence_scene(
            f"{frames[0].bucket}/{ref.scope}",
            frames,
            SEQUENCE_FRAME_RATE,
            {"dataset": ref.dataset, "title": ref.title, "frames": len(frames)},
        )
    except nucleus.SceneError as exc:
        return Refusal(object_url=frames[0].object_url, kind=ref.kind.value, reason=str(exc))


def _nucleus(
    dataset: str,
    sealed: list[Sealed],
    items: Iterable[CatalogItem],
    stage: Path,
    tick: Progress,
    *,
    update: bool,
) -> tuple[int, list[Refusal]]:
    refused: list[Refusal] = []
    counts = Counter[str]()
    # Nucleus has scenes, not groups: a sealed sequence is a scene; the frames of an image
    # group (and any frame of a sequence not yet sealed) are items of their own.
    sequences = [(m, g) for m, g in sealed if m.ref.kind is GroupKind.IMAGE_SEQUENCES]
    singles = [i for m, g in sealed if m.ref.kind is not GroupKind.IMAGE_SEQUENCES for i in g]
    converted_groups = [_sequence_scene(meta, members) for meta, members in sequences]
    with (
        (stage / "items.jsonl").open("w", encoding="utf-8") as item_lines,
        (stage / "scenes.jsonl").open("w", encoding="utf-8") as scene_lines,
    ):
        for scene in converted_groups:
            if isinstance(scene, Refusal):
                refused.append(scene)
                continue
            line = json.dumps(scene.payload(), separators=(",", ":"), ensure_ascii=False)
            scene_lines.write(line + "\n")
            counts["scenes"] += 1
        for count, item in enumerate(itertools.chain(singles, items), 1):
            converted = nucleus.convert(item)
            if isinstance(converted, Refusal):
                refused.append(converted)
            elif isinstance(converted, nucleus.NucleusScene):
                line = json.dumps(converted.payload(), separators=(",", ":"), ensure_ascii=False)
                scene_lines.write(line + "\n")
                counts["scenes"] += 1
            else:
                item_lines.write(converted.model_dump_json() + "\n")
                counts["items"] += 1
            tick(count)
    info = NucleusExportInfo(
        dataset=dataset,
        update=update,
        items=counts["items"],
        scenes=counts["scenes"],
        exported_at=utcnow().isoformat(),
    )
    (stage / "export.json").write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return counts["items"] + counts["scenes"], refused


def _write_refusals(refused: list[Refusal], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(Refusal.model_fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.model_dump() for r in refused)
