"""Backfill on LocalStack: a pre-filled bucket of 2,000 objects, some already registered,
enqueued by `media-ingest backfill`, interrupted once (SIGINT) and resumed."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from media_ingest.ops.status import manifest_parts
from media_ingest.records import OutcomeKind
from tests.integration.conftest import ROOT, Deployed, legacy_bucket

OBJECTS = 2000
FIRST = 300


def backfill(deployed: Deployed, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/media-ingest"), "--stack", deployed.name, "backfill", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def ctrl_c_reaches_children() -> Iterator[None]:
    """Commands started here take Ctrl-C as in a terminal, however the tests were started.

    A shell without job control starts background commands with SIGINT ignored; children
    inherit an ignored signal, and Python then installs no KeyboardInterrupt handler, so the
    SIGINT this test sends would be dropped (CI starts the suite that way). A handled signal
    is reset to the default in a child, and Python turns the default into KeyboardInterrupt.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_backfill_of_a_prefilled_bucket_interrupted_and_resumed(
    deployed: Deployed, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    # A bucket the stack was deployed to read (ExtraSourceBucketArns): backfill refuses any
    # other. No notifications: only backfill reaches these objects.
    bucket = legacy_bucket(deployed.name)
    with contextlib.suppress(deployed.s3.exceptions.BucketAlreadyOwnedByYou):
        deployed.s3.create_bucket(Bucket=bucket)
    # Keys unique to this run: outcomes are waited for by key.
    keys = [f"old media {run_id}/{i:04d}.txt" for i in range(OBJECTS)]
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(lambda k: deployed.s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys)
        )
    deployed.s3.put_object(Bucket=bucket, Key=f"old media {run_id}/.DS_Store", Body=b"junk")
    source = f"s3://{bucket}/old media {run_id}/"

    # Some of the bucket is registered before the real backfill starts.
    first = backfill(
        deployed, source, "--limit", str(FIRST), "--state", str(tmp_path / "first.json"), "--json"
    )
    code, out, err = finish(first)
    assert code == 0, err
    # ".DS_Store" sorts first: it is listed and ignored, the other 299 are enqueued.
    assert json.loads(out)["counts"] == {
        "listed": FIRST,
        "enqueued": FIRST - 1,
        "ignored": 1,
        "registered": 0,
    }
    deployed.wait(set(sorted(keys)[: FIRST - 1]), timeout=300)

    # The full run, interrupted part way (a slow rate leaves time to interrupt it).
    state = tmp_path / "state.json"
    proc = backfill(deployed, source, "--state", str(state), "--rate", "150", "--json")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (state.exists() and _listed(state) > FIRST + 200):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130, err
    assert "run the same command again to resume" in err
    saved = json.loads(state.read_text())
    assert not saved["done"] and FIRST < saved["counts"]["listed"] < OBJECTS + 1

    code, out, err = finish(backfill(deployed, source, "--state", str(state), "--json"))
    assert code == 0, err
    assert "resuming" in err
    done = json.loads(out)
    assert done["done"]
    counts = done["counts"]
    assert counts["listed"] == OBJECTS + 1 and counts["ignored"] == 1
    assert counts["registered"] >= FIRST - 1  # those were skipped, not enqueued again
    assert counts["registered"] + counts["enqueued"] == OBJECTS

    # The bucket is the stack's for every run: this run's objects are those under its prefix.
    prefix = f"old media {run_id}/"
    outcomes = deployed.wait(set(keys), timeout=600)
    per_key = {o.key for o in outcomes if o.bucket == bucket}
    assert per_key == set(keys)
    assert {o.kind for o in outcomes if o.bucket == bucket} == {OutcomeKind.REGISTERED}
    items = [
        i for i in deployed.reader().items() if i.bucket == bucket and i.key.startswith(prefix)
    ]
    assert len(items) == OBJECTS and len({i.key for i in items}) == OBJECTS

    # Every URL once in the manifests, whatever the interruption re-sent.
    urls: list[str] = []
    for part in manifest_parts(deployed.outputs):
        body = deployed.s3.get_object(Bucket=deployed.outputs.ManifestBucketName, Key=part.key)
        urls += [e["objectUrl"] for e in json.loads(body["Body"].read()).get("text", [])]
    mine = [u for u in urls if f"{bucket}.s3" in u and f"/old%20media%20{run_id}/" in u]
    assert len(mine) == OBJECTS and len(set(mine)) == OBJECTS

    # Once more from the top: everything is known, nothing is enqueued.
    code, out, err = finish(
        backfill(deployed, source, "--restart", "--state", str(state), "--json")
    )
    assert code == 0, err
    again = json.loads(out)["counts"]
    assert (again["enqueued"], again["registered"]) == (0, OBJECTS)


def _listed(state: Path) -> int:
    try:
        return int(json.loads(state.read_text())["counts"]["listed"])
    except (ValueError, KeyError):  # caught mid-replace
        return 0
