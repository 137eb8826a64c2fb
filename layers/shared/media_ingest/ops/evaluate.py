"""Annotation QA: each candidate box against the benchmark boxes of its media and frame (best
IoU, class score), and a summary per annotator. Pure: annotation models in, results out.

IoU is computed in exact rational arithmetic on the boxes' decimal coordinates (the digits in
the CSV) and rounded to a float once, so the edge cases are exact, not approximately so:
identical boxes 1.0, disjoint boxes 0.0, boxes touching at an edge or a corner 0.0 (the
intersection has no area), and the result is symmetric. A zero-area box (width or height 0)
has IoU 1.0 with the very same box (equal x, y, width and height) and 0.0 with any other: it
covers no area to overlap, and the rule never divides by zero.

Matching: a candidate box is compared with every benchmark box of the same media (base
name) and frame. Its match is the benchmark box with the highest IoU, if that IoU is above 0;
ties go to a box with the candidate's label, then to the first in benchmark order (file key,
line). A box that overlaps nothing has IoU 0, no match and class score 0. The class score is
1 when the match has the candidate's label, else 0.

Annotator: a row's ``annotator``/``created_by``/``user`` column (annotations.py), else the
first directory under the candidate root (``<candidate>/<annotator>/<media>/...``), else,
for media directly under the root, the candidate directory's own name.

Summary per annotator: boxes, mean IoU, the share of boxes with IoU >= 0.5, class accuracy
(mean class score), the benchmark boxes in the media the annotator submitted (a media
counts as submitted when it has a box of theirs or a file of theirs, even an empty one), and
of those the ones missed: matched by none of the annotator's boxes.

Variable frame rate: boxes are compared by frame number, and on a variable-rate video two
tools can mean different pictures by one number. Decoders (FFmpeg, Encord) number the
frames a player shows; tools that seek by time turn a time into a number with an average
rate (Label Studio's video tag takes a frame rate; so do frame-extraction scripts). On a
constant-rate video both agree; on a variable-rate one they drift apart by every dropped or
repeated frame, so a correct box would score as wrong. A CSV does not say which numbering
made it, and Tator-style rows carry no timestamp to map by, so frames cannot be matched by
time here. The media of a variable-rate video (known from the catalog: `media_rates`) is
therefore **not compared**, and the result says so (`MediaBasis`), unless the caller says
both sets number decoded frames (`compare_variable`), which is then what the result says.
A media whose rate is not known is compared by frame number, and says that too.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from media_ingest.annotations import Annotations, Box, Localization, LocalizationFile
from media_ingest.archives.rules import media_base
from media_ingest.errors import AnnotationError, ErrorCode
from media_ingest.records import CatalogItem

IOU_GOOD = 0.5
CSV_COLUMNS = (
    "media",
    "frame",
    "annotator",
    "label",
    "x",
    "y",
    "width",
    "height",
    "iou",
    "class_score",
    "source",
    "benchmark_label",
    "benchmark_x",
    "benchmark_y",
    "benchmark_width",
    "benchmark_height",
    "benchmark_source",
)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two axis-aligned boxes (exact; see the module's rules)."""
    if 0 in (a.width, a.height, b.width, b.height):
        return 1.0 if a == b else 0.0
    ax, ay, aw, ah = (Fraction(v) for v in (a.x, a.y, a.width, a.height))
    bx, by, bw, bh = (Fraction(v) for v in (b.x, b.y, b.width, b.height))
    overlap_w = min(ax + aw, bx + bw) - max(ax, bx)
    overlap_h = min(ay + ah, by + bh) - max(ay, by)
    if overlap_w <= 0 or overlap_h <= 0:
        return 0.0
    inter = overlap_w * overlap_h
    return float(inter / (aw * ah + bw * bh - inter))


class Match(BaseModel):
    """One candidate box's result: its best IoU and the benchmark box that gave it."""

    model_config = ConfigDict(frozen=True)

    annotator: str
    candidate: Localization
    iou: float
    benchmark: Localization | None
    class_score: int


class AnnotatorSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    annotator: str
    boxes: int
    mean_iou: float | None
    good_share: float | None  # share of boxes with IoU >= IOU_GOOD
    class_accuracy: float | None
    benchmark_boxes: int
    missed: int


class MediaBasis(BaseModel):
    """How one candidate media's boxes were compared, in words a report can print."""

    model_config = ConfigDict(frozen=True)

    media: str
    compared: bool
    basis: str


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    matches: tuple[Match, ...]
    summaries: tuple[AnnotatorSummary, ...]
    unknown_media: tuple[str, ...]  # candidate media the benchmark has no file for
    # Every candidate media, in name order: compared by frame number, or not (and why).
    bases: tuple[MediaBasis, ...] = ()

    @property
    def refused_media(self) -> tuple[str, ...]:
        return tuple(b.media for b in self.bases if not b.compared)


# Media base name (clip for clip.mp4) -> variable frame rate (True, False, None: unknown).
type MediaRates = Mapping[str, bool | None]


def media_rates(items: Iterable[CatalogItem]) -> dict[str, bool | None]:
    """Each video's base name (as annotation trees name media) and whether its frame rate is
    variable. Two videos of one name: variable if either is, unknown if either is unknown."""
    rates: dict[str, bool | None] = {}
    for item in items:
        if item.media.video is None:
            continue
        name = media_base(item.key)[1]
        rate = item.media.video.variable_rate
        if name in rates:
            known = rates[name]
            rate = True if True in (known, rate) else (None if None in (known, rate) else False)
        rates[name] = rate
    return rates


def basis(media: str, rates: MediaRates | None, compare_variable: bool) -> MediaBasis:
    """Whether `media` is compared by frame number, and the sentence that says why."""
    variable = rates.get(media) if rates is not None else None
    if variable and not compare_variable:
        return MediaBasis(
            media=media,
            compared=False,
            basis="not compared: variable frame rate, where frame numbers of different tools "
            "can mean different pictures (compare anyway with --compare-variable-rate)",
        )
    if variable:
        why = "variable frame rate, compared as asked: both sets number decoded frames"
    elif variable is False:
        why = "constant frame rate"
    elif rates is None:
        why = "frame rate not checked (no --media-info)"
    else:
        why = "frame rate unknown (not in --media-info, or not read from its container)"
    return MediaBasis(media=media, compared=True, basis=f"compared by frame number: {why}")


def best_match(box: Localization, annotator: str, benchmark: Iterable[Localization]) -> Match:
    """The benchmark box with the highest IoU above 0 (ties: same label, then first)."""
    best: Localization | None = None
    best_rank = (0.0, False)
    for other in benchmark:
        rank = (iou(box.box, other.box), other.label == box.label)
        if rank[0] > 0 and (best is None or rank > best_rank):
            best, best_rank = other, rank
    return Match(
        annotator=annotator,
        candidate=box,
        iou=best_rank[0],
        benchmark=best,
        class_score=int(best is not None and best.label == box.label),
    )


def evaluate(
    benchmark: Annotations,
    candidate: Annotations,
    root_name: str,
    rates: MediaRates | None = None,
    compare_variable: bool = False,
) -> Evaluation:
    """Score every candidate box; `root_name` is the annotator of files directly under it.

    `rates` (media_rates of the catalog) decides which media are compared by frame number
    (see the module's rules); None: not known, every media is compared and says so."""
    bases = {
        media: basis(media, rates, compare_variable)
        for media in sorted({f.location.media for f in candidate.localizations})
    }
    frames: dict[tuple[str, int], list[Localization]] = defaultdict(list)
    for file in benchmark.localizations:
        for box in file.localizations:
            if bases.get(box.media, _COMPARED).compared:
                frames[(box.media, box.frame)].append(box)
    submitted: dict[str, set[str]] = defaultdict(set)
    matches = []
    for file in candidate.localizations:
        media = file.location.media
        if not bases[media].compared:
            continue
        _check_units(file, benchmark.localizations)
        folder_annotator = file.location.folders[0] if file.location.folders else root_name
        submitted[folder_annotator].add(media)
        for box in file.localizations:
            annotator = box.annotator or folder_annotator
            submitted[annotator].add(media)
            matches.append(best_match(box, annotator, frames.get((media, box.frame), ())))
    matches.sort(
        key=lambda m: (
            m.candidate.media,
            m.candidate.frame,
            m.annotator,
            m.candidate.source,
            m.candidate.line,
        )
    )
    summaries = [
        summarize(
            name,
            [m for m in matches if m.annotator == name],
            [b for bs in frames.values() for b in bs if b.media in media],
        )
        for name, media in sorted(submitted.items())
    ]
    unknown = sorted({f.location.media for f in candidate.localizations} - benchmark.media)
    return Evaluation(
        matches=tuple(matches),
        summaries=tuple(summaries),
        unknown_media=tuple(unknown),
        bases=tuple(bases.values()),
    )


_COMPARED = MediaBasis(media="", compared=True, basis="")


def summarize(
    annotator: str, matches: Sequence[Match], benchmark: Sequence[Localization]
) -> AnnotatorSummary:
    """One annotator's figures from their matches and the benchmark boxes in their media."""
    n = len(matches)
    matched = {m.benchmark.origin for m in matches if m.benchmark is not None}
    return AnnotatorSummary(
        annotator=annotator,
        boxes=n,
        mean_iou=math.fsum(m.iou for m in matches) / n if n else None,
        good_share=sum(m.iou >= IOU_GOOD for m in matches) / n if n else None,
        class_accuracy=sum(m.class_score for m in matches) / n if n else None,
        benchmark_boxes=len(benchmark),
        missed=sum(b.origin not in matched for b in benchmark),
    )


def to_csv(matches: Iterable[Match]) -> str:
    """iou_results.csv: one row per candidate box; coordinates as the input wrote them, IoU as
    the shortest decimal that reads back as the same float."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for m in matches:
        c, b = m.candidate, m.benchmark
        matched = (b.label, *_coords(b.box), b.origin) if b else ("",) * 6
        writer.writerow(
            (
                c.media,
                c.frame,
                m.annotator,
                c.label,
                *_coords(c.box),
                repr(m.iou),
                m.class_score,
                c.origin,
                *matched,
            )
        )
    return out.getvalue()


def _coords(box: Box) -> tuple[str, str, str, str]:
    return str(box.x), str(box.y), str(box.width), str(box.height)


def _check_units(file: LocalizationFile, benchmark: Sequence[LocalizationFile]) -> None:
    """Refuse to compare pixels with normalized coordinates: every IoU would be meaningless."""
    for other in benchmark:
        if (
            other.location.media == file.location.media
            and None not in (file.units, other.units)
            and file.units != other.units
        ):
            raise AnnotationError(
                ErrorCode.MIXED_ANNOTATION_UNITS,
                f"its boxes are in {file.units} but the benchmark's {other.source} are in "
                f"{other.units}: convert one of them",
                source=file.source,
            )
