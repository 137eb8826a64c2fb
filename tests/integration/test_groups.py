"""Grouping through S3 notification -> SQS -> Lambda on LocalStack: frames, a marker, one entry.

The session stack is deployed with GroupRoutes (tests/integration/conftest.py), so keys under
`it-sequences/<title>/` are frames of image sequence <title>.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from media_ingest.errors import ErrorCode
from media_ingest.records import OutcomeKind
from tests.integration.conftest import GROUP_QUIET_SECONDS, Deployed
from tests.support import encord_oracle
from tests.support import media as generate
from tests.support.media import MediaSet

FRAMES = ["f1.png", "f2.png", "f9.png", "f10.png", "f100.png"]


def _entry(
    deployed: Deployed, title: str, timeout: float = 120, section: str = "image_groups"
) -> dict[str, Any]:
    """The `section` entry titled `title` in the default dataset's manifest (bounded)."""
    bucket = deployed.outputs.ManifestBucketName
    prefix = f"{deployed.outputs.ManifestPrefix}default/part-"
    deadline = time.monotonic() + timeout
    while True:
        listed = deployed.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        for obj in listed:
            part = json.loads(deployed.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            encord_oracle.assert_loads(part)
            found = [e for e in part.get(section, []) if e.get("title") == title]
            if found:
                assert len(found) == 1, f"group {title} written twice in {obj['Key']}"
                return dict(found[0])
        if time.monotonic() > deadline:
            raise TimeoutError(f"no manifest entry titled {title!r} after {timeout:g}s")
        time.sleep(2)


def _urls(entry: dict[str, Any]) -> list[str]:
    return [entry[f"objectUrl_{i}"] for i in range(sum(k.startswith("objectUrl_") for k in entry))]


def test_frames_and_a_marker_make_one_ordered_sequence(deployed: Deployed, media: MediaSet) -> None:
    title = f"run-{uuid.uuid4().hex[:8]}"
    folder = f"it-sequences/{title}/"
    png = media.bytes("plain.png")
    shuffled = random.sample(FRAMES, len(FRAMES))
    frames = {deployed.drop(folder + name, png) for name in shuffled}
    # Every frame has its outcome before the marker is dropped: S3 does not order events,
    # and a frame delivered after its group's seal is (rightly) a GROUP_SEALED failure.
    outcomes = deployed.wait(frames)
    assert {o.kind for o in outcomes} == {OutcomeKind.REGISTERED}
    assert all(o.group for o in outcomes)  # members: their entry is the group's

    marker = deployed.drop(folder + "_SEALED", b"")
    [sealed] = deployed.wait({marker})
    assert sealed.kind is OutcomeKind.MARKER

    entry = _entry(deployed, title)
    assert entry["createVideo"] is True
    assert [url.rsplit("/", 1)[-1] for url in _urls(entry)] == FRAMES
    assert all(f"/{folder}" in url for url in _urls(entry))
    assert entry["clientMetadata"]["files"] == len(FRAMES)

    late = deployed.drop(folder + "f11.png", png)
    [refused] = deployed.wait({late})
    assert refused.kind is OutcomeKind.FAILED
    assert refused.failure is not None and refused.failure.error_code is ErrorCode.GROUP_SEALED
    assert _urls(_entry(deployed, title)) == _urls(entry)  # unchanged, and still only one


def test_an_image_group_is_written_with_create_video_false(
    deployed: Deployed, media: MediaSet
) -> None:
    title = f"cam-{uuid.uuid4().hex[:8]}"
    folder = f"it-groups/{title}/"
    frames = {deployed.drop(folder + name, media.bytes("plain.png")) for name in ("b.png", "a.png")}
    assert {o.kind for o in deployed.wait(frames)} == {OutcomeKind.REGISTERED}
    [sealed] = deployed.wait({deployed.drop(folder + "_SEALED", b"")})
    assert sealed.kind is OutcomeKind.MARKER
    entry = _entry(deployed, title)
    assert entry["createVideo"] is False
    assert [url.rsplit("/", 1)[-1] for url in _urls(entry)] == ["a.png", "b.png"]


def test_a_dicom_series_is_sealed_by_the_scheduled_sweeper(deployed: Deployed) -> None:
    # No marker: the series is sealed by the sweeper (EventBridge, every minute) once it has
    # had no new file for GroupQuietSeconds, and lists its files by InstanceNumber.
    uid = f"1.2.826.0.1.3680043.8.498.{uuid.uuid4().int % 10**12}"
    title = f"series-{uid.rsplit('.', 1)[-1]}"
    p = deployed.prefix()
    numbers = random.sample(range(1, 50), 4)
    keys = {
        deployed.drop(f"{p}scan-{i}.dcm", generate.dicom(uid, number, description=title)): number
        for i, number in enumerate(numbers)
    }
    outcomes = deployed.wait(set(keys))
    assert {o.kind for o in outcomes} == {OutcomeKind.REGISTERED}
    entry = _entry(deployed, title, timeout=GROUP_QUIET_SECONDS + 180, section="dicom_series")
    in_order = sorted(keys, key=keys.__getitem__)
    assert [url.rsplit("/", 1)[-1] for url in _urls(entry)] == [
        k.rsplit("/", 1)[-1] for k in in_order
    ]
    assert entry["clientMetadata"]["series_instance_uid"] == uid
