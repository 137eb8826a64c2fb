"""Grouping through the real handlers (ingest and sweeper) on moto, with real media."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from media_ingest.errors import ErrorCode
from media_ingest.groups.sealing import GroupSealer
from media_ingest.records import utcnow
from media_ingest.wiring import build_sealer
from tests.handlers.conftest import FakeContext, Stack, load_function
from tests.support import media as generate
from tests.support.media import MediaSet

URL = "https://drop.s3.us-east-1.amazonaws.com/"


def group_entries(stack: Stack, section: str = "image_groups") -> list[dict[str, Any]]:
    return [e for part in stack.manifest_parts() for e in part.get(section, [])]


def urls(entry: dict[str, Any]) -> list[str]:
    numbered = sorted(
        (int(k.removeprefix("objectUrl_")), v)
        for k, v in entry.items()
        if k.startswith("objectUrl_")
    )
    assert [n for n, _ in numbered] == list(range(len(numbered)))
    return [v for _, v in numbered]


def kinds(stack: Stack) -> Counter[str]:
    outcomes, in_progress = stack.reader.ledger()
    assert in_progress == 0
    return Counter(o.kind.value for o in outcomes)


def sweeper(stack: Stack, now: datetime) -> tuple[Any, GroupSealer]:
    sealer = build_sealer(stack.settings)
    sealer.clock = lambda: now
    return load_function("sweeper"), sealer


def sweep(stack: Stack, now: datetime) -> dict[str, Any]:
    app, sealer = sweeper(stack, now)
    result: dict[str, Any] = app.lambda_handler({}, FakeContext(), sealer=sealer)
    return result


FRAMES = ["f10.png", "f2.png", "f1.png", "f9.png", "f100.png"]
ORDER = ["f1.png", "f2.png", "f9.png", "f10.png", "f100.png"]


@pytest.fixture
def png(media: MediaSet) -> bytes:
    return media.bytes("plain.png")


def test_interleaved_frames_and_markers_make_one_ordered_entry_each(
    grouped: Stack, png: bytes
) -> None:
    keys = [f"frames/cam 1/{n}" for n in FRAMES] + [f"seq/run7/{n}" for n in FRAMES]
    random.Random(6).shuffle(keys)
    bodies = [grouped.body(k, png) for k in keys]
    assert grouped.deliver(*bodies[:4]) == {"batchItemFailures": []}
    assert grouped.deliver(*bodies[4:7])["batchItemFailures"] == []
    assert group_entries(grouped) == []  # no marker yet, quiet period not over
    # The markers arrive in the same batch as the last frames, one of them before them:
    # a marker seals at the end of its batch, so those frames are members.
    markers = [grouped.body("seq/run7/_SEALED", b""), grouped.body("frames/cam 1/_SEALED", b"")]
    assert grouped.deliver(markers[0], *bodies[7:], markers[1]) == {"batchItemFailures": []}

    entries = {e["title"]: e for e in group_entries(grouped)}
    assert set(entries) == {"cam 1", "run7"}
    group, sequence = entries["cam 1"], entries["run7"]
    assert group["createVideo"] is False and sequence["createVideo"] is True
    assert urls(group) == [f"{URL}frames/cam%201/{n}" for n in ORDER]
    assert urls(sequence) == [f"{URL}seq/run7/{n}" for n in ORDER]
    assert group["clientMetadata"]["files"] == 5
    [part] = grouped.manifest_parts()
    # Members have no entry of their own; Encord has no image_sequences key.
    assert set(part) == {"image_groups", "skip_duplicate_urls"}
    assert len(grouped.reader.items()) == 10  # every frame is catalogued, once
    assert kinds(grouped) == {"registered": 10, "marker": 2}  # one outcome per event
    outcomes = grouped.reader.ledger()[0]
    assert {o.dataset for o in outcomes} == {"main"}
    assert {o.group for o in outcomes} == {
        "main|image_groups|frames/cam 1",
        "main|image_sequences|seq/run7",
    }


@pytest.fixture
def sealed(grouped: Stack, png: bytes) -> tuple[Stack, list[str]]:
    """Two groups whose frames all arrived (interleaved, shuffled) before their markers."""
    keys = [f"frames/g1/{n}" for n in FRAMES] + [f"seq/s1/{n}" for n in FRAMES]
    random.Random(3).shuffle(keys)
    bodies = [grouped.body(k, png) for k in keys]
    markers = [grouped.body("frames/g1/_SEALED", b""), grouped.body("seq/s1/_SEALED", b"")]
    assert grouped.deliver(*bodies[:5])["batchItemFailures"] == []
    assert grouped.deliver(*bodies[5:], markers[0])["batchItemFailures"] == []
    assert grouped.deliver(markers[1])["batchItemFailures"] == []
    return grouped, [*bodies, *markers]


def test_markers_seal_groups_in_natural_order(sealed: tuple[Stack, list[str]]) -> None:
    stack, _ = sealed
    entries = {e["title"]: e for e in group_entries(stack)}
    assert urls(entries["g1"]) == [f"{URL}frames/g1/{n}" for n in ORDER]
    assert urls(entries["s1"]) == [f"{URL}seq/s1/{n}" for n in ORDER]
    assert (entries["g1"]["createVideo"], entries["s1"]["createVideo"]) == (False, True)
    assert kinds(stack) == {"registered": 10, "marker": 2}
    assert len(stack.reader.items()) == 10


def test_redelivered_members_and_markers_change_nothing(sealed: tuple[Stack, list[str]]) -> None:
    stack, bodies = sealed
    before = stack.manifest_parts()
    assert stack.deliver(*bodies[:6], receive_count=2)["batchItemFailures"] == []
    assert stack.deliver(*bodies[6:], receive_count=3)["batchItemFailures"] == []
    assert stack.manifest_parts() == before
    assert kinds(stack) == {"registered": 10, "marker": 2}


def test_a_frame_after_the_seal_is_a_group_sealed_failure(
    sealed: tuple[Stack, list[str]], png: bytes
) -> None:
    stack, _ = sealed
    before = stack.manifest_parts()
    assert stack.deliver(stack.body("frames/g1/f11.png", png)) == {"batchItemFailures": []}
    [failure] = stack.failure_messages()
    assert (failure.key, failure.error_code) == ("frames/g1/f11.png", ErrorCode.GROUP_SEALED)
    assert "already sealed" in failure.message
    assert stack.manifest_parts() == before  # no new group, no entry of its own
    assert "frames/g1/f11.png" not in {i.key for i in stack.reader.items()}
    assert kinds(stack) == {"registered": 10, "marker": 2, "failed": 1}
    # A second marker for the sealed group is an outcome too, and writes nothing.
    assert stack.deliver(stack.body("frames/g1/_SEALED", b"again"))["batchItemFailures"] == []
    assert stack.manifest_parts() == before


def test_a_video_under_a_group_prefix_is_refused(grouped: Stack, media: MediaSet) -> None:
    assert grouped.deliver(grouped.body("frames/g2/clip.mp4", media.bytes("clip.mp4"))) == {
        "batchItemFailures": []
    }
    [failure] = grouped.failure_messages()
    assert failure.error_code is ErrorCode.GROUP_MEMBER_KIND


def test_the_sweeper_seals_groups_after_the_quiet_period(grouped: Stack, png: bytes) -> None:
    keys = [f"seq/quiet/{n}" for n in FRAMES]
    assert grouped.deliver(*(grouped.body(k, png) for k in keys))["batchItemFailures"] == []
    now = utcnow()
    assert sweep(grouped, now + timedelta(seconds=60))["sealed"] == 0
    assert group_entries(grouped) == []
    result = sweep(grouped, now + timedelta(seconds=grouped.settings.group_quiet_seconds + 5))
    assert (result["sealed"], result["written"]) == (1, 1)
    [entry] = group_entries(grouped)
    assert entry["createVideo"] is True
    assert urls(entry) == [f"{URL}seq/quiet/{n}" for n in ORDER]
    # Nothing left to do: a later sweep writes nothing again.
    later = sweep(grouped, now + timedelta(hours=1))
    assert (later["sealed"], later["written"]) == (0, 0)
    assert len(group_entries(grouped)) == 1


def test_a_sealed_group_whose_write_failed_is_finished_by_the_sweeper(
    grouped: Stack, png: bytes
) -> None:
    keys = [f"frames/crash/{n}" for n in FRAMES]
    assert grouped.deliver(*(grouped.body(k, png) for k in keys))["batchItemFailures"] == []
    marker = grouped.body("frames/crash/_SEALED", b"")
    sealer = grouped.runner.sealer
    assert sealer is not None

    def crash(*_: object, **__: object) -> int:
        raise RuntimeError("died before the manifest write")

    original = sealer.manifests.append
    sealer.manifests.append = crash  # type: ignore[method-assign]
    try:
        failed = grouped.deliver(marker)["batchItemFailures"]
    finally:
        sealer.manifests.append = original  # type: ignore[method-assign]
    assert len(failed) == 1 and group_entries(grouped) == []
    result = sweep(grouped, utcnow())
    assert (result["sealed"], result["written"]) == (0, 1)
    [entry] = group_entries(grouped)
    assert urls(entry) == [f"{URL}frames/crash/{n}" for n in ORDER]
    # The marker's redelivery replays its outcome and finds the group written.
    assert grouped.deliver(marker, receive_count=2) == {"batchItemFailures": []}
    assert len(group_entries(grouped)) == 1


def test_dicom_files_of_two_series_make_two_series_in_instance_order(grouped: Stack) -> None:
    series = {"1.2.826.0.1.3680043.8.498.100": "head", "1.2.826.0.1.3680043.8.498.200": ""}
    files = [
        (uid, number, f"scans/{'ab'[i]}-{k}.dcm")
        for i, uid in enumerate(series)
        for k, number in enumerate(random.Random(i).sample(range(1, 30), 4))
    ]
    random.Random(9).shuffle(files)
    bodies = [
        grouped.body(key, generate.dicom(uid, number, description=series[uid]))
        for uid, number, key in files
    ]
    assert grouped.deliver(*bodies[:4])["batchItemFailures"] == []
    assert grouped.deliver(*bodies[4:])["batchItemFailures"] == []
    assert group_entries(grouped, "dicom_series") == []  # series have no marker: quiet period
    sweep(grouped, utcnow() + timedelta(seconds=grouped.settings.group_quiet_seconds + 5))
    entries = {
        e["clientMetadata"]["series_instance_uid"]: e
        for e in group_entries(grouped, "dicom_series")
    }
    assert set(entries) == set(series)
    for uid, description in series.items():
        expected = sorted((n, key) for u, n, key in files if u == uid)
        assert urls(entries[uid]) == [URL + key for _, key in expected]
        assert entries[uid]["title"] == (description or uid)
    assert len(grouped.reader.items()) == 8
