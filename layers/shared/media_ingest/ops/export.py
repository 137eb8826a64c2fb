"""The export command's work: one dataset written as files a labelling platform imports.

Formats: `encord-json` (the manifest parts and index as stored, a part still using a legacy
section name repaired), `encord-csv`, `nucleus`, `label-studio` and `cvat` (from the
dataset's catalog items and sealed groups). Each format's content is its platform module's
(platforms/); this module lays the files out. Reads through small interfaces, writes only
under `OUT/<format>/`, which it replaces whole; never calls AWS itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TextIO, runtime_checkable

from pydantic import BaseModel, Field

from media_ingest.groups.rules import GroupKind, GroupMeta, GroupRef, ordered
from media_ingest.manifests.writer import Part
from media_ingest.media import MediaKind
from media_ingest.platforms import cvat, encord, label_studio, nucleus
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
    LABEL_STUDIO = "label-studio"
    CVAT = "cvat"


class CatalogReader(Protocol):
    def dataset_items(self, dataset: str) -> Iterable[CatalogItem]: ...


class GroupReader(Protocol):
    def sealed_groups(self, dataset: str) -> Iterable[tuple[GroupMeta, list[CatalogItem]]]: ...


class ManifestFiles(Protocol):
    def index_body(self, dataset: str) -> bytes | None: ...
    def part_body(self, dataset: str, number: int) -> bytes | None: ...
    def removals_body(self, dataset: str, number: int) -> bytes | None: ...


@runtime_checkable
class PartListing(Protocol):
    """A manifest reader that can also list a dataset's part numbers (the bucket listing)."""

    def part_numbers(self, dataset: str) -> list[int]: ...


class ExportSummary(BaseModel):
    """What an export wrote: the command's summary and its --json output."""

    dataset: str
    format: ExportFormat
    folder: str
    files: list[str]
    entries: int = Field(description="entries (Encord) or items and scenes (Nucleus) written")
    refused: dict[str, int] = Field(default_factory=dict, description="refused objects by kind")
    update: bool | None = None
    notes: list[str] = Field(default_factory=list, description="what the export had to repair")


class NucleusExportInfo(BaseModel):
    """`export.json` beside the Nucleus files: what an importer passes to `Dataset.append`."""

    dataset: str
    update: bool = Field(
        description="pass as Dataset.append(..., update=): on a reference_id collision, "
        "true overwrites the stored item's metadata, false ignores the item"
    )
    items_file: str = "items.jsonl"
    scenes_file: str = "scenes.jsonl"
    items_files: list[str] = Field(
        default=["items.jsonl"],
        description="every items file: append each on its own (scale-nucleus caps one "
        "asynchronous append at 0x1FFFFFE8 bytes; a file stays below it)",
    )
    scenes_files: list[str] = Field(default=["scenes.jsonl"], description="as items_files")
    items: int
    scenes: int
    exported_at: str


class LabelStudioFile(BaseModel):
    """One kind's tasks: a project with `config` as its labelling config imports `tasks`."""

    kind: MediaKind
    tasks: str
    config: str
    count: int


class LabelStudioExportInfo(BaseModel):
    """`export.json` beside the Label Studio files: one project per kind, and the buckets a
    project's S3 source storage must cover for its `s3://` URIs to resolve."""

    dataset: str
    files: list[LabelStudioFile]
    buckets: list[str]
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
        notes: list[str] = []
        if fmt is ExportFormat.ENCORD_JSON:
            entries = _encord_json(dataset, manifests, stage, tick, notes)
        else:
            sealed = list(groups.sealed_groups(dataset)) if groups is not None else []
            members = {m.object_url for _, group in sealed for m in group}
            items = (i for i in catalog.dataset_items(dataset) if i.object_url not in members)
            if fmt is ExportFormat.ENCORD_CSV:
                entries, refused = _encord_csv(sealed, items, stage, tick)
            elif fmt is ExportFormat.NUCLEUS:
                entries, refused = _nucleus(dataset, sealed, items, stage, tick, update=update)
            elif fmt is ExportFormat.LABEL_STUDIO:
                entries, refused = _label_studio(dataset, sealed, items, stage, tick)
            else:
                entries, refused = _cvat(sealed, items, stage, tick)
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
        files=sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()),
        entries=entries,
        refused=dict(Counter(r.kind for r in refused)),
        update=update if fmt is ExportFormat.NUCLEUS else None,
        notes=notes,
    )


def _encord_json(
    dataset: str, manifests: ManifestFiles, stage: Path, tick: Progress, notes: list[str]
) -> int:
    """Every part byte for byte (each an importable Encord file), and the index. A part
    written before the SDK check still names a section as Encord does not (`pdfs`): it is
    written again with Encord's name, and said so in `notes`."""
    index = manifests.index_body(dataset)
    entries = written = 0
    for number, stored in _parts(dataset, manifests, index):
        body = stored
        name = f"part-{number:05d}.json"
        doc = json.loads(body)
        part = Part.from_encord(doc, sealed=False)
        if encord.has_legacy_sections(doc):
            repaired = json.dumps(part.to_encord(), ensure_ascii=False, separators=(",", ":"))
            body = repaired.encode()
            notes.extend(
                f"{name}: section {old!r} renamed {new!r} (Encord's name)"
                for old, new in encord.LEGACY_SECTIONS.items()
                if old in doc
            )
        (stage / name).write_bytes(body)
        entries += part.entry_count
        written += 1
        tick(written)
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


def _parts(
    dataset: str, manifests: ManifestFiles, index: bytes | None
) -> Iterator[tuple[int, bytes]]:
    """Every part, from the bucket's listing where the reader has one: the index lists the
    sealed parts and the main open one, not the parts writers hold open, and numbers may
    have gaps (manifests/writer.py). Else the index's parts, then on past the last one
    listed until one is missing."""
    if isinstance(manifests, PartListing):
        for number in manifests.part_numbers(dataset):
            body = manifests.part_body(dataset, number)
            if body is not None:
                yield number, body
        return
    known: set[int] = set()
    if index is not None:
        parsed = json.loads(index)
        known = {int(p["number"]) for p in parsed.get("parts", [])}
        known.add(int(parsed.get("open_part", 1)))
    last = max(known, default=0)
    number = 1
    while True:
        body = manifests.part_body(dataset, number)
        if body is None and number > last:
            return
        if body is not None:
            yield number, body
        number += 1


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


class _JsonLines:
    """`items.jsonl`, then `items-00002.jsonl`, ...: each file stays within `limit` bytes, the
    most one scale-nucleus asynchronous append takes (platforms/nucleus.MAX_PAYLOAD_BYTES)."""

    def __init__(self, stage: Path, stem: str, limit: int) -> None:
        self.stage, self.stem, self.limit = stage, stem, limit
        self.files: list[str] = []
        self.size = 0
        self.count = 0
        self._stream: TextIO | None = None

    def write(self, line: str) -> None:
        data = line + "\n"
        size = len(data.encode())
        if self._stream is None or (self.size and self.size + size > self.limit):
            self._next()
        assert self._stream is not None
        self._stream.write(data)
        self.size += size
        self.count += 1

    def _next(self) -> None:
        self._close_stream()
        number = len(self.files) + 1
        name = f"{self.stem}.jsonl" if number == 1 else f"{self.stem}-{number:05d}.jsonl"
        self.files.append(name)
        self._stream = (self.stage / name).open("w", encoding="utf-8")
        self.size = 0

    def close(self) -> None:
        if not self.files:  # an empty file says "none" better than a missing one
            self._next()
        self._close_stream()

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


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
    item_lines = _JsonLines(stage, "items", nucleus.MAX_PAYLOAD_BYTES)
    scene_lines = _JsonLines(stage, "scenes", nucleus.MAX_PAYLOAD_BYTES)
    item_ids, scene_ids = nucleus.ReferenceIds(), nucleus.ReferenceIds()

    def emit(
        url: str, kind: str, result: nucleus.NucleusItem | nucleus.NucleusScene | Refusal
    ) -> None:
        if isinstance(result, Refusal):
            refused.append(result)
            return
        if isinstance(result, nucleus.NucleusScene):
            ids, lines = scene_ids, scene_lines
            line = json.dumps(result.payload(), separators=(",", ":"), ensure_ascii=False)
        else:
            ids, lines, line = item_ids, item_lines, result.model_dump_json()
        repeat = ids.admit(result, url, kind)
        if repeat is not None:
            refused.append(repeat)
        else:
            lines.write(line)

    # Nucleus has scenes, not groups: a sealed sequence is a scene; the frames of an image
    # group (and any frame of a sequence not yet sealed) are items of their own.
    sequences = [(m, g) for m, g in sealed if m.ref.kind is GroupKind.IMAGE_SEQUENCES]
    singles = [i for m, g in sealed if m.ref.kind is not GroupKind.IMAGE_SEQUENCES for i in g]
    try:
        for meta, members in sequences:
            emit(members[0].object_url, meta.ref.kind.value, _sequence_scene(meta, members))
        for count, item in enumerate(itertools.chain(singles, items), 1):
            emit(item.object_url, item.kind.value, nucleus.convert(item))
            tick(count)
    finally:
        item_lines.close()
        scene_lines.close()
    info = NucleusExportInfo(
        dataset=dataset,
        update=update,
        items=item_lines.count,
        scenes=scene_lines.count,
        items_files=item_lines.files,
        scenes_files=scene_lines.files,
        exported_at=utcnow().isoformat(),
    )
    (stage / "export.json").write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return item_lines.count + scene_lines.count, refused


def _with_groups(
    sealed: list[Sealed], items: Iterable[CatalogItem]
) -> Iterable[tuple[CatalogItem, GroupRef | None]]:
    """Every object once: the members of sealed groups (in frame order, with their group),
    then the items in no sealed group."""
    for meta, members in sealed:
        for member in ordered(meta.ref.kind, members):
            yield member, meta.ref
    for item in items:
        yield item, None


def _label_studio(
    dataset: str, sealed: list[Sealed], items: Iterable[CatalogItem], stage: Path, tick: Progress
) -> tuple[int, list[Refusal]]:
    """One tasks file and one labelling config per kind (a Label Studio project labels one
    kind: every task must hold the key of every object tag of its config)."""
    by_kind: dict[MediaKind, list[label_studio.LabelStudioTask]] = {}
    refused: list[Refusal] = []
    for count, (item, group) in enumerate(_with_groups(sealed, items), 1):
        task = label_studio.task_for(item, group)
        if isinstance(task, Refusal):
            refused.append(task)
        else:
            by_kind.setdefault(task.kind, []).append(task)
        tick(count)
    files = []
    for kind, tasks in sorted(by_kind.items()):
        name = label_studio.DATA_KEYS[kind]
        tasks_file, config_file = f"tasks-{name}.json", f"label-config-{name}.xml"
        with (stage / tasks_file).open("w", encoding="utf-8") as stream:
            json.dump([t.payload() for t in tasks], stream, ensure_ascii=False, indent=1)
        (stage / config_file).write_text(label_studio.LABEL_CONFIGS[kind] + "\n", "utf-8")
        files.append(
            LabelStudioFile(kind=kind, tasks=tasks_file, config=config_file, count=len(tasks))
        )
    buckets = sorted({t.meta["bucket"] for tasks in by_kind.values() for t in tasks})
    info = LabelStudioExportInfo(
        dataset=dataset, files=files, buckets=buckets, exported_at=utcnow().isoformat()
    )
    (stage / "export.json").write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return sum(f.count for f in files), refused


def _cvat(
    sealed: list[Sealed], items: Iterable[CatalogItem], stage: Path, tick: Progress
) -> tuple[int, list[Refusal]]:
    """One `manifest.jsonl` per source bucket (`<bucket>/manifest.jsonl`, for that bucket's
    root): every image, group members included; everything else refused."""
    by_bucket: dict[str, list[cvat.ManifestImage]] = {}
    refused: list[Refusal] = []
    for count, (item, _group) in enumerate(_with_groups(sealed, items), 1):
        line = cvat.manifest_image(item)
        if isinstance(line, Refusal):
            refused.append(line)
        else:
            by_bucket.setdefault(item.bucket, []).append(line)
        tick(count)
    for bucket, images in sorted(by_bucket.items()):
        (stage / bucket).mkdir()
        with (stage / bucket / cvat.MANIFEST_FILE).open("w", encoding="utf-8") as stream:
            stream.writelines(cvat.manifest_lines(images))
    return sum(len(images) for images in by_bucket.values()), refused


def _write_refusals(refused: list[Refusal], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(Refusal.model_fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.model_dump() for r in refused)
