"""The export command's work: one dataset written as files a labelling platform imports.

Formats: `encord-json` (the manifest parts and index, copied as stored), `encord-csv` and
`nucleus` (from the dataset's catalog items). Reads through two small interfaces, writes
only under `OUT/<format>/`, which it replaces whole; never calls AWS itself.
"""

from __future__ import annotations

import csv
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

from . import encord_csv, nucleus_json
from .manifest import Part, entry_for
from .records import CatalogItem, Refusal, utcnow

REFUSED_FILE = "refused.csv"
CSV_FILE = "registration.csv"


class ExportFormat(StrEnum):
    ENCORD_JSON = "encord-json"
    ENCORD_CSV = "encord-csv"
    NUCLEUS = "nucleus"


class CatalogReader(Protocol):
    def dataset_items(self, dataset: str) -> Iterable[CatalogItem]: ...


class ManifestFiles(Protocol):
    def index_body(self, dataset: str) -> bytes | None: ...
    def part_body(self, dataset: str, number: int) -> bytes | None: ...


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
    fmt: ExportFormat, dataset: str, out: Path, catalog: CatalogReader,
    manifests: ManifestFiles, *, update: bool = False, progress: Progress | None = None,
) -> ExportSummary:  # fmt: skip
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
        elif fmt is ExportFormat.ENCORD_CSV:
            entries, refused = _encord_csv(dataset, catalog.dataset_items(dataset), stage, tick)
        else:
            entries, refused = _nucleus(dataset, catalog.dataset_items(dataset), stage, tick,
                                        update)  # fmt: skip
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
        dataset=dataset, format=fmt, folder=str(target),
        files=sorted(p.name for p in target.iterdir()), entries=entries,
        refused=dict(Counter(r.kind for r in refused)),
        update=update if fmt is ExportFormat.NUCLEUS else None,
    )  # fmt: skip


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
    return entries


def _encord_csv(
    dataset: str, items: Iterable[CatalogItem], stage: Path, tick: Progress
) -> tuple[int, list[Refusal]]:
    result = encord_csv.CsvExport()
    for count, item in enumerate(items, 1):
        encord_csv.csv_rows([entry_for(item)], into=result)
        tick(count)
    with (stage / CSV_FILE).open("w", encoding="utf-8", newline="") as stream:
        encord_csv.write_rows(result.rows, stream)
    return result.entries, result.refused


def _nucleus(
    dataset: str, items: Iterable[CatalogItem], stage: Path, tick: Progress, update: bool
) -> tuple[int, list[Refusal]]:
    refused: list[Refusal] = []
    counts = Counter[str]()
    with (
        (stage / "items.jsonl").open("w", encoding="utf-8") as item_lines,
        (stage / "scenes.jsonl").open("w", encoding="utf-8") as scene_lines,
    ):
        for count, item in enumerate(items, 1):
            converted = nucleus_json.convert(item)
            if isinstance(converted, Refusal):
                refused.append(converted)
            elif isinstance(converted, nucleus_json.NucleusScene):
                line = json.dumps(converted.payload(), separators=(",", ":"), ensure_ascii=False)
                scene_lines.write(line + "\n")
                counts["scenes"] += 1
            else:
                item_lines.write(converted.model_dump_json() + "\n")
                counts["items"] += 1
            tick(count)
    info = NucleusExportInfo(
        dataset=dataset, update=update, items=counts["items"], scenes=counts["scenes"],
        exported_at=utcnow().isoformat(),
    )  # fmt: skip
    (stage / "export.json").write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return counts["items"] + counts["scenes"], refused


def _write_refusals(refused: list[Refusal], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(Refusal.model_fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.model_dump() for r in refused)
