"""Tator-style annotation CSVs: where they sit in a tree, what a valid row is, the models they
become. Pure (keys and bytes in, models out): it never scores, uploads or touches AWS.

Layout: ``<folders>/<media base name>/localizations/<type>.csv`` and
``<folders>/<media base name>/states/<type>.csv``. The media base name is the directory
holding ``localizations/`` (``clip`` for ``clip.mp4``); ``folders`` are the directories
between the tree's root and it (evaluate reads an annotator from them). Hidden files and
directories and ``__MACOSX`` are skipped (archives made on macOS carry ``._<name>.csv``
resource forks); any other CSV elsewhere is not an annotation and is ignored.

Localization rows: ``frame,x,y,width,height`` plus any attribute columns, kept as strings.
As in Tator, ``x``/``y`` are the left and top edges. ``frame`` is an integer >= 0; the four
coordinates are finite numbers >= 0 (a negative, NaN, infinite or empty value is an error),
at most 10^12 with at most 30 decimal places (bounds that keep exact arithmetic cheap). They
are kept as the exact decimals the file holds, not binary floats: ``0.1 + 0.2`` is ``0.3``,
so boxes that share an edge in the file share it exactly.

Units: decided per file, never per row. A file is ``normalized`` (Tator's convention) when
every x, y, width and height in it lies in [0, 1] (Tator's schema bounds each of the four,
not their sums), and ``pixels`` otherwise. Both are accepted; boxes in different units are
never compared (evaluate raises ``MIXED_ANNOTATION_UNITS``).

Label: the first non-empty value of the ``label``, ``Label`` or ``class`` column (in that
order), else the file's ``<type>``. Tator exports name the file after the localization type
(``box.csv``) and keep the class in an attribute; one-class-per-file drops name the file
after the class (``fish.csv``) and need no column.

Annotator: the first non-empty value of the ``annotator``, ``created_by`` or ``user`` column
(Tator records ``created_by`` on every localization), else none (evaluate falls back to the
directory layout).

State rows: an optional ``frame`` column (empty: the state applies to the whole media) plus
attributes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from media_ingest.errors import AnnotationError, ErrorCode

BOX_COLUMNS = ("x", "y", "width", "height")
LOCALIZATION_COLUMNS = ("frame", *BOX_COLUMNS)
LABEL_COLUMNS = ("label", "Label", "class")
ANNOTATOR_COLUMNS = ("annotator", "created_by", "user")
Kind = Literal["localizations", "states"]
KINDS: tuple[Kind, ...] = ("localizations", "states")


class Units(StrEnum):
    NORMALIZED = "normalized"
    PIXELS = "pixels"


Coordinate = Annotated[
    Decimal, Field(ge=0, le=Decimal("1e12"), decimal_places=30, allow_inf_nan=False)
]


class Box(BaseModel):
    """An axis-aligned box: left and top edges, width and height (one file's units)."""

    model_config = ConfigDict(frozen=True)

    x: Coordinate
    y: Coordinate
    width: Coordinate
    height: Coordinate


class _LocalizationRow(Box):
    frame: int = Field(ge=0)


class _StateRow(BaseModel):
    frame: int | None = Field(default=None, ge=0)


class Localization(BaseModel):
    """One box of one frame of one media, with where it came from."""

    model_config = ConfigDict(frozen=True)

    media: str
    frame: int = Field(ge=0)
    box: Box
    type: str
    label: str
    annotator: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    source: str = Field(description="the file's key relative to the tree's root")
    line: int = Field(ge=1)

    @property
    def origin(self) -> str:
        return f"{self.source}:{self.line}"


class State(BaseModel):
    model_config = ConfigDict(frozen=True)

    media: str
    frame: int | None = None
    type: str
    attributes: dict[str, str] = Field(default_factory=dict)
    source: str
    line: int = Field(ge=1)


class Location(BaseModel):
    """What an annotation file's key says: which media, which kind, which type."""

    model_config = ConfigDict(frozen=True)

    folders: tuple[str, ...]
    media: str
    kind: Kind
    type: str


class LocalizationFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    location: Location
    units: Units | None = Field(description="None when the file has no rows")
    localizations: tuple[Localization, ...]


class StateFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    location: Location
    states: tuple[State, ...]


class Annotations(BaseModel):
    """Every annotation file of a tree, in key order."""

    model_config = ConfigDict(frozen=True)

    localizations: tuple[LocalizationFile, ...] = ()
    states: tuple[StateFile, ...] = ()

    @property
    def media(self) -> set[str]:
        return {f.location.media for f in self.localizations} | {
            f.location.media for f in self.states
        }


def locate(key: str) -> Location | None:
    """The annotation file a key names (``a/b/clip/localizations/box.csv``), or None."""
    parts = PurePosixPath(key).parts
    if len(parts) < 3 or hidden(key):
        return None
    *folders, media, kind, name = parts
    if kind not in KINDS or not name.lower().endswith(".csv") or len(name) == len(".csv"):
        return None
    return Location(folders=tuple(folders), media=media, kind=kind, type=name[: -len(".csv")])


def hidden(key: str) -> bool:
    """Hidden files and directories, and macOS's ``__MACOSX`` resource forks: never content."""
    return any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(key).parts)


def read(files: Iterable[tuple[str, bytes]]) -> Annotations:
    """Parse every annotation file among (key, content) pairs; other keys are ignored."""
    localizations: list[LocalizationFile] = []
    states: list[StateFile] = []
    for key, content in sorted(files):
        location = locate(key)
        if location is None:
            continue
        text = decode(content, key)
        if location.kind == "localizations":
            localizations.append(parse_localizations(text, key, location))
        else:
            states.append(parse_states(text, key, location))
    return Annotations(localizations=tuple(localizations), states=tuple(states))


def read_tree(root: Path) -> Annotations:
    """Every annotation file under a directory (the only function here that reads disk)."""
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    files = (
        (path.relative_to(root).as_posix(), path.read_bytes())
        for path in root.rglob("*")
        if path.is_file() and locate(path.relative_to(root).as_posix()) is not None
    )
    return read(files)


def decode(content: bytes, source: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            ErrorCode.INVALID_ANNOTATION,
            f"not UTF-8 text (byte {exc.start}): save the CSV as UTF-8",
            source=source,
        ) from exc


def parse_localizations(text: str, source: str, location: Location) -> LocalizationFile:
    header, rows = _table(text, source, required=LOCALIZATION_COLUMNS)
    localizations = []
    for line, cells in rows:
        values = dict(zip(header, cells, strict=True))
        data = {c: values[c] for c in LOCALIZATION_COLUMNS}
        row = _validate(_LocalizationRow, data, source, line)
        attributes = {k: v for k, v in values.items() if k not in LOCALIZATION_COLUMNS}
        localizations.append(
            Localization(
                media=location.media,
                frame=row.frame,
                box=Box(x=row.x, y=row.y, width=row.width, height=row.height),
                type=location.type,
                label=_first(attributes, LABEL_COLUMNS) or location.type,
                annotator=_first(attributes, ANNOTATOR_COLUMNS),
                attributes=attributes,
                source=source,
                line=line,
            )
        )
    return LocalizationFile(
        source=source,
        location=location,
        units=units([loc.box for loc in localizations]),
        localizations=tuple(localizations),
    )


def parse_states(text: str, source: str, location: Location) -> StateFile:
    header, rows = _table(text, source, required=())
    states = []
    for line, cells in rows:
        values = dict(zip(header, cells, strict=True))
        row = _validate(_StateRow, {"frame": values.get("frame") or None}, source, line)
        states.append(
            State(
                media=location.media,
                frame=row.frame,
                type=location.type,
                attributes={k: v for k, v in values.items() if k != "frame"},
                source=source,
                line=line,
            )
        )
    return StateFile(source=source, location=location, states=tuple(states))


def units(boxes: Sequence[Box]) -> Units | None:
    """The one unit of a file's boxes: normalized if every coordinate is in [0, 1]."""
    if not boxes:
        return None
    if all(max(b.x, b.y, b.width, b.height) <= 1 for b in boxes):
        return Units.NORMALIZED
    return Units.PIXELS


def _table(
    text: str, source: str, required: Sequence[str]
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line, cells) rows, every row as wide as the header."""
    # Excel starts its UTF-8 CSVs with a byte-order mark, which would glue onto "frame".
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = [name.strip() for name in next((r for r in reader if r), [])]
        if not header:
            raise AnnotationError(
                ErrorCode.INVALID_ANNOTATION, "empty file: no header row", source=source, line=1
            )
        _check_header(header, required, source, line=reader.line_num)
        rows = []
        for cells in reader:
            if not cells:  # a blank line
                continue
            if len(cells) != len(header):
                raise AnnotationError(
                    ErrorCode.INVALID_ANNOTATION,
                    f"{len(cells)} fields, the header has {len(header)}",
                    source=source,
                    line=reader.line_num,
                )
            rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise AnnotationError(
            ErrorCode.INVALID_ANNOTATION,
            f"not valid CSV: {exc}",
            source=source,
            line=reader.line_num,
        ) from exc
    return header, rows


def _check_header(header: list[str], required: Sequence[str], source: str, line: int) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise AnnotationError(
                ErrorCode.INVALID_ANNOTATION,
                "appears twice in the header",
                source=source,
                line=line,
                column=name,
            )
        seen.add(name)
    missing = [c for c in required if c not in seen]
    if missing:
        raise AnnotationError(
            ErrorCode.INVALID_ANNOTATION,
            f"missing from the header (needs {', '.join(required)}; has {', '.join(header)})",
            source=source,
            line=line,
            column=missing[0],
        )


def _validate[M: BaseModel](
    model: type[M], data: Mapping[str, str | None], source: str, line: int
) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0])
        raise AnnotationError(
            ErrorCode.INVALID_ANNOTATION,
            f"{error['msg']} (got {data.get(column)!r})",
            source=source,
            line=line,
            column=column,
        ) from None


def _first(attributes: dict[str, str], columns: Sequence[str]) -> str | None:
    return next((attributes[c] for c in columns if attributes.get(c)), None)
