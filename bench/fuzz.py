"""Benchmark 8: the long fuzzing campaign over every reader of untrusted bytes (issue 11).

Measured: tests/support/fuzz.py's targets (the sniffer, the image and DICOM header readers,
archive extraction, ffprobe's JSON interpretation, sidecars, and issue 16's MP4 index reader
through its public functions), N mutated real files each (the hostile corpus's small files
and ffmpeg's media as seeds), each input under a 2 s and 256 MB budget. Each target runs in
a process of its own, so a reader that kills its process (a segfault in a C decoder) is
counted as a crash, not lost. Figures: inputs tried, crashes (over budget, would be retried,
or killed the process), exceptions that would end as PARSER_ERROR, slowest input, peak
resident memory of the process.

Baseline, the same run: the naive readers the stack used before issue 11 (Pillow's open and
getexif(), pydicom's dcmread, zipfile and tarfile reading every member), catching what that
code caught, on the first tenth of the same inputs: how many would have crashed the function
(an exception nobody caught: a retry loop to the dead-letter queue), and its peak memory.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

from bench import ROOT, Context, log
from bench.report import Section, Table, Target

SEED = 20261129
TIME_BUDGET = 2.0
MEMORY_BUDGET_MB = 256.0
CORPUS_SEED_BYTES = 1024 * 1024  # corpus files up to this size seed the campaign


def run(ctx: Context) -> list[Section]:
    per_target = 2_000 if ctx.quick else 20_000
    section = Section(
        name="fuzz",
        title="8: fuzzing every reader of untrusted bytes, budget per input "
        f"{TIME_BUDGET:g} s and {MEMORY_BUDGET_MB:g} MB",
        measured=f"{per_target:,} mutated real files per target, each target in a process of "
        "its own (tests/support/fuzz.py)",
        baseline="the naive readers the stack used before issue 11, on the first tenth of the "
        "same inputs",
    )
    table = Table(
        "per target",
        [
            "target",
            "inputs",
            "crashes",
            "PARSER_ERROR",
            "slowest ms",
            "peak MB",
            "naive crashes",
            "naive peak MB",
        ],
    )
    totals = {"inputs": 0, "crashes": 0, "parser_errors": 0, "peak_mb": 0.0}
    for name in _target_names(ctx):
        log(f"fuzz: {name}, {per_target:,} inputs")
        ours = _worker(ctx, "ours", name, per_target)
        naive = _worker(ctx, "naive", name, per_target // 10) if name in NAIVE else None
        table.add(
            name,
            f"{ours['tried']:,}",
            ours["crashes"],
            ours["parser_errors"],
            f"{ours['slowest'] * 1000:.0f}",
            f"{ours['peak_mb']:.0f}",
            f"{naive['crashes']} of {naive['tried']:,}" if naive else "n/a",
            f"{naive['peak_mb']:.0f}" if naive else "n/a",
        )
        totals["inputs"] += ours["tried"]
        totals["crashes"] += ours["crashes"]
        totals["parser_errors"] += ours["parser_errors"] if "issue 16" not in name else 0
        totals["peak_mb"] = max(totals["peak_mb"], ours["peak_mb"])
        section.data[name] = {"ours": ours, "naive": naive}
        section.notes += [f"{name}: {finding}" for finding in ours["findings"][:3]]
    section.tables.append(table)
    section.targets.append(
        Target(
            goal="no crash: every input ends as a result or a failure record, within budget",
            figure=f"{totals['crashes']} crashes in {totals['inputs']:,} inputs, "
            f"peak {totals['peak_mb']:.0f} MB",
            met=totals["crashes"] == 0,
        )
    )
    section.targets.append(
        Target(
            goal="every failure a precise code (no PARSER_ERROR) in the readers of issue 11",
            figure=f"{totals['parser_errors']} inputs would end as PARSER_ERROR",
            met=totals["parser_errors"] == 0,
        )
    )
    return [section]


def _target_names(ctx: Context) -> list[str]:
    (ctx.cache / "fuzz-seeds.json").unlink(missing_ok=True)  # this run's seeds, built anew
    done = subprocess.run(
        [sys.executable, "-m", "bench.fuzz", "names", str(ctx.cache)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    names: list[str] = json.loads(done.stdout.splitlines()[-1])
    return names


def _worker(ctx: Context, which: str, name: str, count: int) -> dict[str, Any]:
    """One target's campaign in a fresh process; a process killed by a signal is a crash."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.fuzz", which, str(ctx.cache), name, str(count)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {
            "tried": count,
            "crashes": 1,
            "parser_errors": 0,
            "slowest": time.monotonic() - began,
            "peak_mb": 0.0,
            "findings": [f"the process died ({done.returncode}): {done.stderr[-300:]}"],
        }
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- in the worker process --------------------------------------------------------------------
def _seeds(cache: Path) -> dict[str, list[bytes]]:
    """The seeds by family, built once per run (the first worker saves them for the rest)."""
    saved = cache / "fuzz-seeds.json"
    if saved.exists():
        loaded: dict[str, list[str]] = json.loads(saved.read_text())
        return {family: [bytes.fromhex(h) for h in found] for family, found in loaded.items()}
    from tests.support.corpus import corpus  # noqa: PLC0415
    from tests.support.fuzz import seeds  # noqa: PLC0415
    from tests.support.media import MediaSet  # noqa: PLC0415

    media = MediaSet(cache / "fuzz-media")
    found = seeds(media)
    for case in corpus(media):
        if 0 < len(case.data) <= CORPUS_SEED_BYTES:
            found.setdefault(_family(case.data, case.name), []).append(case.data)
        if case.sidecar is not None:
            found["sidecar"].append(case.sidecar)
    saved.write_text(json.dumps({f: [d.hex() for d in found[f]] for f in found}))
    return found


def _family(data: bytes, name: str) -> str:
    """Which target a corpus file seeds, by what the sniffer makes of it."""
    from media_ingest.errors import MediaError  # noqa: PLC0415
    from media_ingest.probing.sniffer import Family, detect  # noqa: PLC0415

    try:
        found = detect(data[: 64 * 1024], name)
    except MediaError:
        return "other"
    if found.demuxer == "mov":
        return "mp4"
    return {Family.IMAGE: "image", Family.DICOM: "dicom", Family.ARCHIVE: "archive"}.get(
        found.family, "other"
    )


def _ours(cache: Path, name: str, count: int) -> dict[str, Any]:
    from tests.support.fuzz import fuzz, targets  # noqa: PLC0415

    [target] = [t for t in targets(_seeds(cache)) if t.name == name]
    report = fuzz([target], count, SEED, TIME_BUDGET, MEMORY_BUDGET_MB)
    findings = report.crashes + report.parser_errors
    return {
        "tried": report.inputs,
        "crashes": len(report.crashes),
        "parser_errors": len(report.parser_errors),
        "slowest": report.slowest[name],
        "peak_mb": report.peak_mb,
        "findings": sorted({f"{c.kind}: {c.detail}" for c in findings})[:20],
    }


def _naive_image(data: bytes) -> None:
    from PIL import Image  # noqa: PLC0415

    Image.MAX_IMAGE_PIXELS = None
    image = Image.open(io.BytesIO(data))
    image.getexif()


def _naive_dicom(data: bytes) -> None:
    import pydicom  # noqa: PLC0415

    dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "InstanceNumber", "Rows"):
        dataset.get(keyword)


def _naive_archive(data: bytes) -> None:
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    while member.read(1 << 20):
                        pass
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as tar:
        for entry in tar:
            stream = tar.extractfile(entry)
            while stream is not None and stream.read(1 << 20):
                pass


def _naive_caught() -> dict[str, tuple[type[BaseException], ...]]:
    """What the code before issue 11 caught around each reader (anything else escaped)."""
    from PIL import UnidentifiedImageError  # noqa: PLC0415
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415

    return {
        "image_header": (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError),
        "dicom_header": (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError),
        "archives": (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError),
    }


NAIVE = {"image_header": _naive_image, "dicom_header": _naive_dicom, "archives": _naive_archive}


def _naive(cache: Path, name: str, count: int) -> dict[str, Any]:
    import random  # noqa: PLC0415

    from tests.support.fuzz import _inputs, targets  # noqa: PLC0415

    [target] = [t for t in targets(_seeds(cache)) if t.name == name]
    caught = _naive_caught()[name]
    read = NAIVE[name]
    crashes, slowest, findings = 0, 0.0, set()
    # The first inputs of the same campaign (same seed, same generator).
    rng = random.Random(f"{SEED}:{name}")
    tried = 0
    for data in _inputs(rng, target, count):
        tried += 1
        began = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read(data)
        except caught:
            pass
        except Exception as exc:
            crashes += 1
            findings.add(f"{type(exc).__name__}: {str(exc)[:120]}")
        slowest = max(slowest, time.perf_counter() - began)
    return {
        "tried": tried,
        "crashes": crashes,
        "parser_errors": 0,
        "slowest": slowest,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "findings": sorted(findings)[:20],
    }


def main(argv: list[str]) -> None:
    which, cache = argv[0], Path(argv[1])
    if which == "names":
        from tests.support.fuzz import targets  # noqa: PLC0415

        print(json.dumps([t.name for t in targets(_seeds(cache))]))
        return
    name, count = argv[2], int(argv[3])
    if which == "naive":
        # A process of its own, bounded: the naive image reader decodes gigapixel PNGs.
        limit = 4 * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(json.dumps(_naive(cache, name, count)))
    else:
        print(json.dumps(_ours(cache, name, count)))


if __name__ == "__main__":
    import bench  # noqa: F401 - sets the import path and the environment

    main(sys.argv[1:])
