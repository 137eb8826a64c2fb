"""Tator-style annotation CSVs: layout, row validation, labels, units and error locations."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from media_ingest.annotations import (
    Box,
    Location,
    Units,
    locate,
    parse_localizations,
    parse_states,
    read,
    read_tree,
)
from media_ingest.errors import AnnotationError, ErrorCode, MediaError, Stage

KEY = "alice/reef-01/localizations/box.csv"
HEADER = "frame,x,y,width,height"


def parse(text: str, key: str = KEY):  # type: ignore[no-untyped-def]
    location = locate(key)
    assert location is not None
    return parse_localizations(text, key, location)


def error(text: str, key: str = KEY) -> AnnotationError:
    with pytest.raises(AnnotationError) as caught:
        parse(text, key)
    return caught.value


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "reef-01/localizations/fish.csv",
            Location(folders=(), media="reef-01", kind="localizations", type="fish"),
        ),
        (
            "a/b/reef-01/states/presence.csv",
            Location(folders=("a", "b"), media="reef-01", kind="states", type="presence"),
        ),
        (
            "reef-01/localizations/Fish.CSV",
            Location(folders=(), media="reef-01", kind="localizations", type="Fish"),
        ),
    ],
)
def test_locate_reads_media_kind_and_type_from_the_key(key: str, expected: Location) -> None:
    assert locate(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "localizations/fish.csv",  # no media directory
        "reef-01/tracks/fish.csv",  # neither localizations nor states
        "reef-01/localizations/fish.txt",
        "reef-01/localizations/.csv",
        "reef-01/localizations/._fish.csv",  # macOS resource fork
        "__MACOSX/reef-01/localizations/fish.csv",
        ".git/reef-01/localizations/fish.csv",
        "reef-01/localizations/deeper/fish.csv",
    ],
)
def test_locate_ignores_keys_that_are_not_annotation_files(key: str) -> None:
    assert locate(key) is None


def test_a_row_becomes_a_localization_with_exact_coordinates_and_attributes() -> None:
    f = parse(f"{HEADER},Label,created_by,note\n7,0.1,0.20,0.3,0.4,cod,42,near reef\n")
    (loc,) = f.localizations
    assert (loc.media, loc.frame, loc.type, loc.label, loc.annotator) == (
        "reef-01",
        7,
        "box",
        "cod",
        "42",
    )
    assert loc.box == Box(
        x=Decimal("0.1"), y=Decimal("0.2"), width=Decimal("0.3"), height=Decimal("0.4")
    )
    assert str(loc.box.y) == "0.20"  # kept as written
    assert loc.attributes == {"Label": "cod", "created_by": "42", "note": "near reef"}
    assert (loc.source, loc.line, loc.origin) == (KEY, 2, f"{KEY}:2")
    assert f.location.folders == ("alice",)


def test_label_is_the_first_non_empty_label_column_else_the_type() -> None:
    f = parse(
        f"{HEADER},class,Label,label\n"
        "0,1,1,1,1,c,L,l\n"
        "1,1,1,1,1,c,L,\n"
        "2,1,1,1,1,c,,\n"
        "3,1,1,1,1,,,\n"
    )
    assert [loc.label for loc in f.localizations] == ["l", "L", "c", "box"]


def test_annotator_is_the_first_non_empty_annotator_column_else_none() -> None:
    f = parse(
        f"{HEADER},user,created_by,annotator\n0,1,1,1,1,u,c,a\n1,1,1,1,1,u,c,\n"
        "2,1,1,1,1,u,,\n3,1,1,1,1,,,\n"
    )
    assert [loc.annotator for loc in f.localizations] == ["a", "c", "u", None]


def test_blank_lines_bom_and_padding_are_tolerated() -> None:
    f = parse(f"\ufeff{HEADER}\n\n 3 , 0.5 ,0,1,1\n\n")
    (loc,) = f.localizations
    assert (loc.frame, loc.box.x, loc.line) == (3, Decimal("0.5"), 3)


def test_a_header_only_file_is_valid_and_has_no_units() -> None:
    f = parse(f"{HEADER}\n")
    assert f.localizations == () and f.units is None


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["0,0,0,1,1", "1,0.5,0.5,0.5,0.5"], Units.NORMALIZED),
        (["0,0.9,0.9,0.9,0.9"], Units.NORMALIZED),  # each value in [0, 1], not their sums
        (["0,0,0,1,1", "1,0,0,1.5,1"], Units.PIXELS),  # one value above 1 decides the file
        (["0,10,20,30,40"], Units.PIXELS),
    ],
)
def test_units_are_decided_per_file(rows: list[str], expected: Units) -> None:
    assert parse(HEADER + "\n" + "\n".join(rows) + "\n").units is expected


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("-1,0,0,1,1", "frame", "greater than or equal to 0"),
        ("1.5,0,0,1,1", "frame", "valid integer"),
        (",0,0,1,1", "frame", "valid integer"),
        ("0,-0.1,0,1,1", "x", "greater than or equal to 0"),
        ("0,0,-2,1,1", "y", "greater than or equal to 0"),
        ("0,0,0,-1,1", "width", "greater than or equal to 0"),
        ("0,0,0,1,-1", "height", "greater than or equal to 0"),
        ("0,nan,0,1,1", "x", "finite"),
        ("0,0,NaN,1,1", "y", "finite"),
        ("0,0,0,inf,1", "width", "finite"),
        ("0,0,0,1,", "height", "valid decimal"),
        ("0,0,0,1,abc", "height", "valid decimal"),
        ("0,0,0,1e13,1", "width", "less than or equal to"),
        ("0,0,0,1e-40,1", "width", "decimal places"),
    ],
)
def test_an_invalid_value_names_file_line_and_column(row: str, column: str, fragment: str) -> None:
    exc = error(f"{HEADER}\n0,0,0,1,1\n{row}\n")
    assert exc.code is ErrorCode.INVALID_ANNOTATION
    assert (exc.source, exc.line, exc.column) == (KEY, 3, column)
    assert str(exc).startswith(f"{KEY}:3: column {column!r}: ")
    assert fragment in str(exc)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("", 1, None, "empty file"),
        ("frame,x,y,width\n0,0,0,1\n", 1, "height", "missing from the header"),
        ("frame,x,y,height\n", 1, "width", "missing from the header"),
        ("\n\nframe,x,y,width\n", 3, "height", "missing from the header"),
        ("frame,x,y,width,height,x\n", 1, "x", "appears twice"),
        (f"{HEADER}\n0,0,0,1\n", 2, None, "4 fields, the header has 5"),
        (f"{HEADER}\n0,0,0,1,1\n0,0,0,1,1,extra\n", 3, None, "6 fields, the header has 5"),
    ],
)
def test_an_invalid_table_names_file_and_line(
    text: str, line: int, column: str | None, fragment: str
) -> None:
    exc = error(text)
    assert (exc.code, exc.line, exc.column) == (ErrorCode.INVALID_ANNOTATION, line, column)
    assert fragment in str(exc)


def test_annotation_errors_are_permanent_media_errors_of_the_annotation_stage() -> None:
    exc = error(f"{HEADER}\n0,0,0,-1,1\n")
    assert isinstance(exc, MediaError)
    assert exc.stage is Stage.ANNOTATION


def test_states_take_an_optional_frame_and_keep_attributes() -> None:
    key = "reef-01/states/presence.csv"
    location = locate(key)
    assert location is not None
    f = parse_states("frame,fish_present\n,yes\n4,no\n", key, location)
    assert [(s.frame, s.attributes, s.line) for s in f.states] == [
        (None, {"fish_present": "yes"}, 2),
        (4, {"fish_present": "no"}, 3),
    ]
    assert parse_states("event\nstart\n", key, location).states[0].frame is None
    with pytest.raises(AnnotationError) as caught:
        parse_states("frame,x\n-3,a\n", key, location)
    assert (caught.value.line, caught.value.column) == (2, "frame")


def test_read_parses_only_annotation_keys_in_key_order() -> None:
    files = [
        ("b/clip/localizations/box.csv", b"frame,x,y,width,height\n0,0,0,1,1\n"),
        ("a/clip/localizations/box.csv", b"frame,x,y,width,height\n"),
        ("a/clip/states/s.csv", b"frame\n1\n"),
        ("notes.csv", b"not,an,annotation\n"),
        ("__MACOSX/clip/localizations/._box.csv", b"\x00\x05\x16\x07 binary"),
    ]
    tree = read(files)
    assert [f.source for f in tree.localizations] == [
        "a/clip/localizations/box.csv",
        "b/clip/localizations/box.csv",
    ]
    assert [f.source for f in tree.states] == ["a/clip/states/s.csv"]
    assert tree.media == {"clip"}


def test_read_rejects_text_that_is_not_utf8() -> None:
    with pytest.raises(AnnotationError) as caught:
        read([("clip/localizations/box.csv", b"frame,x,y,width,height\n0,\xff,0,1,1\n")])
    assert caught.value.code is ErrorCode.INVALID_ANNOTATION
    assert "not UTF-8" in str(caught.value)


def test_read_tree_finds_files_under_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "bob" / "reef-02" / "localizations"
    target.mkdir(parents=True)
    (target / "fish.csv").write_text("frame,x,y,width,height\n2,10,10,5,5\n")
    (tmp_path / "README.csv").write_text("ignored\n")
    tree = read_tree(tmp_path)
    (f,) = tree.localizations
    assert f.source == "bob/reef-02/localizations/fish.csv"
    assert f.units is Units.PIXELS
    assert f.localizations[0].label == "fish"


def test_read_tree_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a directory"):
        read_tree(tmp_path / "nope")
