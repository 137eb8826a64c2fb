"""IoU and annotator evaluation: exact edge cases, properties, matching, ties and summaries."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_ingest.annotations import Annotations, Box, read
from media_ingest.errors import AnnotationError, ErrorCode
from media_ingest.ops.evaluate import (
    CSV_COLUMNS,
    best_match,
    evaluate,
    iou,
    media_rates,
    to_csv,
)
from tests.support.items import UNKNOWN_TIMING, VFR_TIMING, image_item, video_item

HEADER = "frame,x,y,width,height,label"


def box(x: str | float, y: str | float, w: str | float, h: str | float) -> Box:
    return Box(x=Decimal(str(x)), y=Decimal(str(y)), width=Decimal(str(w)), height=Decimal(str(h)))


def tree(files: dict[str, str]) -> Annotations:
    return read([(key, text.encode()) for key, text in files.items()])


# --- IoU: the edge cases, exactly --------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (box(0, 0, 1, 1), box(0, 0, 1, 1), 1.0),  # identical
        (box("0.1", "0.2", "0.3", "0.4"), box("0.1", "0.2", "0.3", "0.4"), 1.0),
        (box(0, 0, 1, 1), box(2, 2, 1, 1), 0.0),  # apart
        (box(0, 0, 1, 1), box(1, 0, 1, 1), 0.0),  # touching at an edge
        (box(0, 0, 1, 1), box(0, 1, 1, 1), 0.0),
        (box(0, 0, 1, 1), box(1, 1, 1, 1), 0.0),  # touching at a corner
        # 0.1 + 0.2 is exactly 0.3 here; in binary floats these boxes overlap by 1e-17
        (box("0.1", 0, "0.2", 1), box("0.3", 0, "0.1", 1), 0.0),
        (box(0, 0, 2, 2), box(1, 0, 2, 2), 1 / 3),  # half of each overlaps
        (box(0, 0, 4, 4), box(1, 1, 2, 2), 0.25),  # contained
        (box("0.50", "0.50", "0.20", "0.20"), box("0.55", "0.50", "0.20", "0.20"), 0.6),
    ],
)
def test_iou_is_exact_on_the_edge_cases(a: Box, b: Box, expected: float) -> None:
    assert iou(a, b) == expected
    assert iou(b, a) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (box(1, 1, 0, 0), box(1, 1, 0, 0), 1.0),  # the same point
        (box(1, 1, 0, 5), box(1, 1, 0, 5), 1.0),  # the same vertical segment
        (box(1, 1, 0, 0), box(1, 1, 0, 1), 0.0),  # a point on a segment: different boxes
        (box(1, 1, 0, 0), box(0, 0, 2, 2), 0.0),  # a point inside a box covers no area
        (box(0, 0, 2, 0), box(0, 0, 2, 2), 0.0),  # a segment on a box's edge
        (box(1, 1, 0, 0), box(2, 2, 0, 0), 0.0),
    ],
)
def test_zero_area_boxes_match_only_themselves(a: Box, b: Box, expected: float) -> None:
    assert iou(a, b) == expected
    assert iou(b, a) == expected


# --- IoU: properties ---------------------------------------------------------------------

coordinate = st.decimals(min_value=0, max_value=1000, places=3)
boxes = st.builds(Box, x=coordinate, y=coordinate, width=coordinate, height=coordinate)
sized = st.builds(
    Box,
    x=coordinate,
    y=coordinate,
    width=st.decimals(min_value="0.001", max_value=1000, places=3),
    height=st.decimals(min_value="0.001", max_value=1000, places=3),
)


def _reference(a: Box, b: Box) -> Fraction:
    """The textbook formula on exact fractions, for boxes of positive area."""
    ax, ay, aw, ah = (Fraction(v) for v in (a.x, a.y, a.width, a.height))
    bx, by, bw, bh = (Fraction(v) for v in (b.x, b.y, b.width, b.height))
    w = max(Fraction(0), min(ax + aw, bx + bw) - max(ax, bx))
    h = max(Fraction(0), min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


@given(boxes, boxes)
def test_iou_is_symmetric_and_between_0_and_1(a: Box, b: Box) -> None:
    value = iou(a, b)
    assert value == iou(b, a)
    assert 0.0 <= value <= 1.0


@given(sized, sized)
def test_iou_is_the_exact_ratio_rounded_once(a: Box, b: Box) -> None:
    assert iou(a, b) == float(_reference(a, b))


@given(sized)
def test_iou_of_a_box_with_itself_is_1(a: Box) -> None:
    assert iou(a, a) == 1.0


@given(boxes)
def test_iou_of_any_box_with_an_equal_copy_is_1(a: Box) -> None:
    assert iou(a, a.model_copy()) == 1.0


@given(sized, sized, st.decimals(min_value=0, max_value=10, places=3))
def test_iou_of_boxes_apart_is_0(a: Box, b: Box, gap: Decimal) -> None:
    right = b.model_copy(update={"x": a.x + a.width + gap})
    below = b.model_copy(update={"y": a.y + a.height + gap})
    assert iou(a, right) == 0.0
    assert iou(a, below) == 0.0


@given(sized, sized)
def test_iou_is_unchanged_by_scaling_both_boxes(a: Box, b: Box) -> None:
    def scaled(c: Box) -> Box:
        return Box(x=c.x * 10, y=c.y * 10, width=c.width * 10, height=c.height * 10)

    assert iou(scaled(a), scaled(b)) == iou(a, b)


# --- matching ----------------------------------------------------------------------------


def _locs(text: str, key: str = "clip/localizations/box.csv"):  # type: ignore[no-untyped-def]
    return tree({key: text}).localizations[0].localizations


def test_best_match_takes_the_highest_iou_and_its_label() -> None:
    bench = _locs(f"{HEADER}\n0,0,0,10,10,crab\n0,1,0,10,10,fish\n0,50,50,5,5,fish\n")
    (cand,) = _locs(f"{HEADER}\n0,1,0,10,10,fish\n", "a/clip/localizations/box.csv")
    m = best_match(cand, "a", bench)
    assert (m.iou, m.benchmark, m.class_score) == (1.0, bench[1], 1)


def test_best_match_with_a_different_label_scores_0() -> None:
    bench = _locs(f"{HEADER}\n0,0,0,10,10,crab\n")
    (cand,) = _locs(f"{HEADER}\n0,0,0,10,5,fish\n")
    m = best_match(cand, "a", bench)
    assert (m.iou, m.benchmark, m.class_score) == (0.5, bench[0], 0)


def test_no_overlap_means_no_match_even_with_the_same_label() -> None:
    bench = _locs(f"{HEADER}\n0,0,0,10,10,fish\n")
    (cand,) = _locs(f"{HEADER}\n0,10,0,10,10,fish\n")  # touches the benchmark box
    m = best_match(cand, "a", bench)
    assert (m.iou, m.benchmark, m.class_score) == (0.0, None, 0)
    assert best_match(cand, "a", []).benchmark is None


def test_ties_go_to_the_same_label_then_to_the_first_benchmark_box() -> None:
    # Two benchmark boxes at the same IoU (mirror images around the candidate).
    bench = _locs(f"{HEADER}\n0,0,0,10,10,crab\n0,10,0,10,10,fish\n0,10,0,10,10,fish\n")
    (cand,) = _locs(f"{HEADER}\n0,5,0,10,10,fish\n")
    m = best_match(cand, "a", bench)
    assert m.benchmark == bench[1] and m.class_score == 1
    (other,) = _locs(f"{HEADER}\n0,5,0,10,10,eel\n")
    assert best_match(other, "a", bench).benchmark == bench[0]  # no label wins: the first
    assert best_match(other, "a", list(reversed(bench))).benchmark == bench[2]


# --- evaluation over trees ---------------------------------------------------------------

BENCHMARK = {
    "reef/localizations/box.csv": f"{HEADER}\n0,0,0,10,10,fish\n0,20,0,10,10,crab\n"
    "1,0,0,10,10,fish\n",
    "cove/localizations/box.csv": f"{HEADER}\n0,0,0,4,4,eel\n",
}


def test_evaluate_matches_by_media_and_frame_and_summarizes_per_annotator() -> None:
    candidate = tree(
        {
            # alice: exact fish, a crab called fish at half overlap, frame 1 missed
            "alice/reef/localizations/box.csv": f"{HEADER}\n0,0,0,10,10,fish\n0,20,0,10,5,fish\n",
            # bob: frame 1's box in frame 0 (wrong frame: overlaps nothing there)
            "bob/reef/localizations/box.csv": f"{HEADER}\n0,40,40,10,10,fish\n",
            # bob's cove: a box of frame 0 that matches the eel
            "bob/cove/localizations/box.csv": f"{HEADER}\n0,0,0,4,2,eel\n",
        }
    )
    result = evaluate(tree(BENCHMARK), candidate, root_name="candidates")
    rows = [
        (
            m.candidate.media,
            m.candidate.frame,
            m.annotator,
            m.iou,
            m.class_score,
            m.benchmark.origin if m.benchmark else None,
        )
        for m in result.matches
    ]
    assert rows == [
        ("cove", 0, "bob", 0.5, 1, "cove/localizations/box.csv:2"),
        ("reef", 0, "alice", 1.0, 1, "reef/localizations/box.csv:2"),
        ("reef", 0, "alice", 0.5, 0, "reef/localizations/box.csv:3"),
        ("reef", 0, "bob", 0.0, 0, None),
    ]
    alice, bob = result.summaries
    assert alice.model_dump() == {
        "annotator": "alice",
        "boxes": 2,
        "mean_iou": 0.75,
        "good_share": 1.0,
        "class_accuracy": 0.5,
        "benchmark_boxes": 3,
        "missed": 1,
    }
    assert bob.model_dump() == {
        "annotator": "bob",
        "boxes": 2,
        "mean_iou": 0.25,
        "good_share": 0.5,
        "class_accuracy": 0.5,
        "benchmark_boxes": 4,
        "missed": 3,
    }
    assert result.unknown_media == ()


def test_annotator_column_wins_over_the_folder_and_the_root_name_is_the_last_resort() -> None:
    candidate = tree(
        {
            "reef/localizations/box.csv": f"{HEADER},created_by\n0,0,0,10,10,fish,17\n"
            "1,0,0,10,10,fish,\n",
            "team/reef/localizations/other.csv": f"{HEADER},annotator\n0,20,0,10,10,crab,carol\n",
        }
    )
    result = evaluate(tree(BENCHMARK), candidate, root_name="round-3")
    assert sorted((m.annotator, m.candidate.frame) for m in result.matches) == [
        ("17", 0),
        ("carol", 0),
        ("round-3", 1),
    ]
    # "team" submitted a file (reef) but no box of its own: it is scored, with nothing found.
    team = next(s for s in result.summaries if s.annotator == "team")
    assert (team.boxes, team.mean_iou, team.benchmark_boxes, team.missed) == (0, None, 3, 3)


def test_an_empty_candidate_file_counts_every_benchmark_box_of_its_media_as_missed() -> None:
    candidate = tree({"dave/cove/localizations/box.csv": f"{HEADER}\n"})
    (dave,) = evaluate(tree(BENCHMARK), candidate, root_name="x").summaries
    assert (dave.boxes, dave.benchmark_boxes, dave.missed) == (0, 1, 1)


def test_media_the_benchmark_lacks_is_reported_and_scores_0() -> None:
    candidate = tree({"erin/wreck/localizations/box.csv": f"{HEADER}\n0,0,0,10,10,fish\n"})
    result = evaluate(tree(BENCHMARK), candidate, root_name="x")
    assert result.unknown_media == ("wreck",)
    assert [m.iou for m in result.matches] == [0.0]


def test_pixels_are_never_compared_with_normalized_coordinates() -> None:
    candidate = tree({"frank/reef/localizations/box.csv": f"{HEADER}\n0,0,0,0.5,0.5,fish\n"})
    with pytest.raises(AnnotationError) as caught:
        evaluate(tree(BENCHMARK), candidate, root_name="x")
    assert caught.value.code is ErrorCode.MIXED_ANNOTATION_UNITS
    assert caught.value.source == "frank/reef/localizations/box.csv"
    assert "reef/localizations/box.csv are in pixels" in str(caught.value)


def test_iou_results_csv_has_one_row_per_candidate_box() -> None:
    candidate = tree(
        {"alice/reef/localizations/box.csv": f"{HEADER}\n0,20,0,10,5,fish\n0,40,40,1,1,fish\n"}
    )
    text = to_csv(evaluate(tree(BENCHMARK), candidate, root_name="x").matches)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        [
            "reef",
            "0",
            "alice",
            "fish",
            "20",
            "0",
            "10",
            "5",
            "0.5",
            "0",
            "alice/reef/localizations/box.csv:2",
            "crab",
            "20",
            "0",
            "10",
            "10",
            "reef/localizations/box.csv:3",
        ],
        [
            "reef",
            "0",
            "alice",
            "fish",
            "40",
            "40",
            "1",
            "1",
            "0.0",
            "0",
            "alice/reef/localizations/box.csv:3",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
    ]


# --- variable frame rate: not compared by frame number, and said so ----------------------


def two_media() -> tuple[Annotations, Annotations]:
    bench = tree(
        {
            "reef-01/localizations/box.csv": f"{HEADER}\n0,0,0,1,1,fish\n",
            "phone/localizations/box.csv": f"{HEADER}\n0,0,0,1,1,fish\n",
        }
    )
    cand = tree(
        {
            "alice/reef-01/localizations/box.csv": f"{HEADER}\n0,0,0,1,1,fish\n",
            "alice/phone/localizations/box.csv": f"{HEADER}\n0,0,0,1,1,fish\n",
        }
    )
    return bench, cand


def test_a_variable_rate_media_is_not_compared_by_frame_number() -> None:
    bench, cand = two_media()
    result = evaluate(bench, cand, "root", rates={"phone": True, "reef-01": False})
    assert [m.candidate.media for m in result.matches] == ["reef-01"]
    assert result.refused_media == ("phone",)
    bases = {b.media: b.basis for b in result.bases}
    assert bases["phone"].startswith("not compared: variable frame rate")
    assert bases["reef-01"] == "compared by frame number: constant frame rate"
    [alice] = result.summaries
    assert (alice.boxes, alice.benchmark_boxes, alice.missed) == (1, 1, 0)  # phone left out


def test_comparing_a_variable_rate_anyway_says_so() -> None:
    bench, cand = two_media()
    result = evaluate(bench, cand, "root", rates={"phone": True}, compare_variable=True)
    assert len(result.matches) == 2 and result.refused_media == ()
    bases = {b.media: b.basis for b in result.bases}
    assert bases["phone"] == (
        "compared by frame number: variable frame rate, compared as asked: both sets number "
        "decoded frames"
    )
    assert bases["reef-01"].endswith(
        "frame rate unknown (not in --media-info, or not read from its container)"
    )
    plain = evaluate(bench, cand, "root")
    assert {b.basis for b in plain.bases} == {
        "compared by frame number: frame rate not checked (no --media-info)"
    }


def test_media_rates_come_from_video_items_by_base_name() -> None:
    items = [
        video_item("cams/reef-01.mp4"),
        video_item("phones/phone.mov", timing=VFR_TIMING),
        video_item("other/phone.mp4"),  # the same base name, constant: variable wins
        video_item("x/odd.mkv", timing=UNKNOWN_TIMING),
        video_item("y/odd.mp4"),  # unknown and constant: unknown
        image_item("reef-02.jpg"),
    ]
    assert media_rates(items) == {"reef-01": False, "phone": True, "odd": None}
