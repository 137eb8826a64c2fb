"""`media-ingest evaluate` end to end on CSV trees in tmp_path: no stack, no AWS."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from media_ingest.ops import cli
from media_ingest.ops.evaluate import CSV_COLUMNS
from tests.support.items import VFR_TIMING, video_item

HEADER = "frame,x,y,width,height,Label,created_by"


def write(root: Path, key: str, text: str) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    # evaluate must never look for a stack: any attempt fails the test.
    def no_stack(_: str) -> None:
        raise AssertionError("evaluate looked up a stack")

    monkeypatch.setattr(cli, "stack_outputs", no_stack)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    bench, cand = tmp_path / "benchmark", tmp_path / "candidate"
    write(
        bench,
        "reef-01/localizations/box.csv",
        f"{HEADER}\n0,0.1,0.1,0.2,0.2,fish,1\n0,0.5,0.5,0.2,0.2,crab,1\n1,0.3,0.3,0.1,0.1,fish,1\n",
    )
    write(bench, "reef-01/states/presence.csv", "frame,fish_present\n0,true\n")
    write(
        cand,
        "alice/reef-01/localizations/box.csv",
        f"{HEADER}\n0,0.1,0.1,0.2,0.2,fish,\n0,0.55,0.5,0.2,0.2,fish,\n1,0.4,0.3,0.1,0.1,fish,\n",
    )
    write(cand, "bob/reef-01/localizations/box.csv", f"{HEADER}\n0,0.12,0.1,0.2,0.2,fish,\n")
    return bench, cand


def run(*args: str) -> int:
    return cli.main(["evaluate", *args])


def test_evaluate_writes_iou_results_and_prints_the_summary(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, cand = trees
    out = tmp_path / "out"
    assert run("--benchmark", str(bench), "--candidate", str(cand), "--out", str(out)) == 0
    with (out / "iou_results.csv").open() as f:
        rows = [
            (
                r["media"],
                r["frame"],
                r["annotator"],
                r["label"],
                r["x"],
                r["iou"],
                r["class_score"],
                r["benchmark_label"],
                r["benchmark_x"],
                r["source"],
            )
            for r in csv.DictReader(f)
        ]
    assert rows == [
        (
            "reef-01",
            "0",
            "alice",
            "fish",
            "0.1",
            "1.0",
            "1",
            "fish",
            "0.1",
            "alice/reef-01/localizations/box.csv:2",
        ),
        (
            "reef-01",
            "0",
            "alice",
            "fish",
            "0.55",
            "0.6",
            "0",
            "crab",
            "0.5",
            "alice/reef-01/localizations/box.csv:3",
        ),
        (
            "reef-01",
            "0",
            "bob",
            "fish",
            "0.12",
            "0.8181818181818182",
            "1",
            "fish",
            "0.1",
            "bob/reef-01/localizations/box.csv:2",
        ),
        # touches the benchmark box at x = 0.4: no overlap, no match
        (
            "reef-01",
            "1",
            "alice",
            "fish",
            "0.4",
            "0.0",
            "0",
            "",
            "",
            "alice/reef-01/localizations/box.csv:4",
        ),
    ]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == [
        "annotator",
        "boxes",
        "mean",
        "IoU",
        "IoU>=0.5",
        "class",
        "accuracy",
        "benchmark",
        "boxes",
        "missed",
    ]
    # alice: (1 + 0.6 + 0) / 3; 2 of 3 at IoU >= 0.5; 1 of 3 labels right; frame 1 missed
    assert printed[2].split() == ["alice", "3", "0.533", "66.7%", "33.3%", "3", "1"]
    assert printed[3].split() == ["bob", "1", "0.818", "100.0%", "100.0%", "3", "2"]
    assert printed[4] == f"4 candidate boxes scored: {out / 'iou_results.csv'}"


def test_evaluate_json_gives_the_exact_figures(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, cand = trees
    assert (
        run("--benchmark", str(bench), "--candidate", str(cand), "--out", str(tmp_path), "--json")
        == 0
    )
    alice, bob = json.loads(capsys.readouterr().out)
    assert alice == {
        "annotator": "alice",
        "boxes": 3,
        "mean_iou": 1.6 / 3,
        "good_share": 2 / 3,
        "class_accuracy": 1 / 3,
        "benchmark_boxes": 3,
        "missed": 1,
    }
    assert (bob["mean_iou"], bob["missed"]) == (0.8181818181818182, 2)


def test_evaluate_writes_to_the_current_directory_by_default(
    trees: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, cand = trees
    monkeypatch.chdir(tmp_path)
    assert run("--benchmark", str(bench), "--candidate", str(cand)) == 0
    assert (tmp_path / "iou_results.csv").read_text().count("\n") == 5


def test_an_invalid_csv_exits_2_naming_file_line_and_column(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, cand = trees
    write(cand, "bob/reef-01/localizations/box.csv", f"{HEADER}\n0,0.1,0.1,-0.2,0.2,fish,\n")
    assert run("--benchmark", str(bench), "--candidate", str(cand), "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "media-ingest evaluate: INVALID_ANNOTATION: "
        "bob/reef-01/localizations/box.csv:2: column 'width': "
    )
    assert not (tmp_path / "iou_results.csv").exists()


def test_mixed_units_exit_2(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, cand = trees
    write(cand, "bob/reef-01/localizations/box.csv", f"{HEADER}\n0,12,10,20,20,fish,\n")
    assert run("--benchmark", str(bench), "--candidate", str(cand), "--out", str(tmp_path)) == 2
    assert "MIXED_ANNOTATION_UNITS" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["benchmark", "candidate"])
def test_a_tree_without_localizations_exits_2(
    which: str, trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = dict(zip(("benchmark", "candidate"), trees, strict=True))
    dirs[which] = tmp_path / "empty"
    dirs[which].mkdir()
    assert (
        run(
            "--benchmark",
            str(dirs["benchmark"]),
            "--candidate",
            str(dirs["candidate"]),
            "--out",
            str(tmp_path),
        )
        == 2
    )
    assert f"no <media>/localizations/<type>.csv under the {which}" in capsys.readouterr().err


def test_a_missing_directory_exits_2(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, cand = trees
    assert run("--benchmark", str(tmp_path / "nope"), "--candidate", str(cand)) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_candidate_media_missing_from_the_benchmark_is_warned_about(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, cand = trees
    write(cand, "bob/reef-99/localizations/box.csv", f"{HEADER}\n0,0.1,0.1,0.2,0.2,fish,\n")
    assert run("--benchmark", str(bench), "--candidate", str(cand), "--out", str(tmp_path)) == 0
    assert "no annotations for media 'reef-99'" in capsys.readouterr().err


def test_media_info_keeps_a_variable_rate_video_out_and_says_which_was_compared(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, cand = trees
    info = tmp_path / "items.json"
    info.write_text(
        json.dumps([video_item("cams/reef-01.mp4", timing=VFR_TIMING).model_dump(mode="json")])
    )
    out = tmp_path / "out"
    args = ["--benchmark", str(bench), "--candidate", str(cand), "--out", str(out)]
    assert run(*args, "--media-info", str(info)) == 0
    err = capsys.readouterr().err
    assert "reef-01: not compared: variable frame rate" in err
    assert (out / "iou_results.csv").read_text().splitlines() == [",".join(CSV_COLUMNS)]
    assert run(*args, "--media-info", str(info), "--compare-variable-rate") == 0
    err = capsys.readouterr().err
    assert "reef-01: compared by frame number: variable frame rate, compared as asked" in err
    assert len((out / "iou_results.csv").read_text().splitlines()) == 5  # header + 4 boxes
