"""Every outcome of the core issue through S3 notification -> SQS -> Lambda on LocalStack."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from media_ingest.errors import ErrorCode
from media_ingest.ops.status import manifest_parts
from media_ingest.records import FailureRecord, OutcomeKind
from tests.integration.conftest import SIDECAR_SUFFIX, Deployed
from tests.support import encord_oracle
from tests.support.media import MediaSet


def test_media_of_every_kind_is_registered_with_metadata(
    deployed: Deployed, media: MediaSet
) -> None:
    p = deployed.prefix()
    names = ["rotated.mp4", "clip.webm", "tone.flac", "portrait.jpg", "scan.dcm", "doc.pdf"]
    keys = {deployed.drop(p + n, media.bytes(n)) for n in names}
    outcomes = deployed.wait(keys)
    assert Counter(o.kind for o in outcomes) == {OutcomeKind.REGISTERED: 6}
    items = {i.key: i for i in deployed.reader().items() if i.key in keys}
    video = items[p + "rotated.mp4"].media.video
    assert video is not None and (video.fps, video.width, video.height) == (29.97, 240, 320)
    image = items[p + "portrait.jpg"].media.image
    assert image is not None and (image.width, image.height) == (48, 64)
    assert items[p + "scan.dcm"].media.dicom is not None
    # KeyFrames=on: the video's entry lists its key frames, read from the MP4 index.
    entry = _video_entry(deployed, p + "rotated.mp4")
    keyframes = entry["clientMetadata"]["$encord"]["keyframes"]
    assert keyframes[0] == 0 and keyframes == sorted(set(keyframes))
    listed = json.loads(deployed.cli("items", "--json"))
    assert keys <= {i["key"] for i in listed}


def test_owner_metadata_from_user_metadata_tags_and_a_sidecar(
    deployed: Deployed, media: MediaSet
) -> None:
    p = deployed.prefix()
    sidecar = p + "clip.mp4" + SIDECAR_SUFFIX
    deployed.drop(sidecar, json.dumps({"site": "reef-2", "weather": {"sky": "clear"}}).encode())
    deployed.s3.put_object(
        Bucket=deployed.outputs.DropBucketName,
        Key=p + "clip.mp4",
        Body=media.bytes("clip.mp4"),
        Metadata={"camera": "cam-7", "site": "reef-1"},
        Tagging="shift=night&site=reef-1b",
    )
    outcomes = deployed.wait({p + "clip.mp4", sidecar})
    kinds = {o.key: o.kind for o in outcomes}
    assert kinds == {p + "clip.mp4": OutcomeKind.REGISTERED, sidecar: OutcomeKind.IGNORED}
    client = _video_entry(deployed, p + "clip.mp4")["clientMetadata"]
    # The sidecar wins over tags, tags over user metadata; the stack's own fields win over all.
    assert (client["camera"], client["shift"], client["site"]) == ("cam-7", "night", "reef-2")
    assert client["weather"] == {"sky": "clear"} and client["key"] == p + "clip.mp4"


def test_duplicate_corrupt_and_ignored(deployed: Deployed, media: MediaSet) -> None:
    p = deployed.prefix()
    clip = deployed.drop(p + "clip.mp4", media.bytes("clip.mp4"))
    bad = deployed.drop(p + "bad.mp4", media.bytes("truncated.mp4"))
    junk = deployed.drop(p + ".DS_Store", b"junk")
    first = deployed.wait({clip, bad, junk})
    assert {o.key: o.kind for o in first} == {
        clip: OutcomeKind.REGISTERED,
        bad: OutcomeKind.FAILED,
        junk: OutcomeKind.IGNORED,
    }
    deployed.drop(clip, media.bytes("clip-moov-end.mp4"))  # the same URL again
    both = deployed.wait_count(clip, 2)
    assert sorted(o.kind for o in both) == [
        OutcomeKind.DUPLICATE,
        OutcomeKind.REGISTERED,
    ]
    assert [i.key for i in deployed.reader().items()].count(clip) == 1
    failures = [f for f in deployed.reader().failures() if f.key == bad]
    assert [f.error_code for f in failures] == [ErrorCode.CORRUPT_MEDIA]
    queued = _drain_failures(deployed)
    assert any(r.key == bad and r.error_code is ErrorCode.CORRUPT_MEDIA for r in queued)


def _video_entry(deployed: Deployed, title: str, timeout: float = 60) -> dict[str, Any]:
    """The `videos` entry titled `title` (the batch's append follows its outcomes by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        for part in manifest_parts(deployed.outputs):
            body = deployed.s3.get_object(Bucket=deployed.outputs.ManifestBucketName, Key=part.key)
            for entry in json.loads(body["Body"].read()).get("videos", []):
                if entry["title"] == title:
                    return dict(entry)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no videos entry titled {title!r} after {timeout:g} s")
        time.sleep(2)


def _drain_failures(deployed: Deployed) -> list[FailureRecord]:
    records = []
    for _ in range(20):
        got = deployed.sqs.receive_message(
            QueueUrl=deployed.outputs.FailureQueueUrl, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not got:
            break
        records += [FailureRecord.model_validate_json(m["Body"]) for m in got]
    return records


def test_keys_with_spaces_plus_and_unicode(deployed: Deployed, media: MediaSet) -> None:
    p = deployed.prefix()
    key = deployed.drop(p + "my clip+1 ✓ été.png", media.bytes("plain.png"))
    [outcome] = deployed.wait({key})
    assert outcome.kind is OutcomeKind.REGISTERED
    assert outcome.object_url is not None and " " not in outcome.object_url
    assert outcome.object_url.endswith("my%20clip%2B1%20%E2%9C%93%20%C3%A9t%C3%A9.png")


def test_a_hundred_files_at_once_are_all_accounted_for(deployed: Deployed, media: MediaSet) -> None:
    p = deployed.prefix()
    png = media.bytes("plain.png")
    keys = {deployed.drop(f"{p}{i:03d}.png", png) for i in range(100)}
    outcomes = deployed.wait(keys, timeout=600)
    assert Counter(o.kind for o in outcomes) == {OutcomeKind.REGISTERED: 100}
    urls = []
    for part in json.loads(deployed.cli("manifests", "--json")):
        body = deployed.s3.get_object(Bucket=deployed.outputs.ManifestBucketName, Key=part["key"])
        doc = json.loads(body["Body"].read())
        encord_oracle.assert_loads(doc)  # every part of the session stack, by the encord SDK
        urls += [e["objectUrl"] for e in doc.get("images", [])]
    mine = [u for u in urls if f"/{p}" in u]
    assert len(mine) == 100 and len(set(mine)) == 100


def test_nothing_reached_the_dead_letter_queue_and_status_adds_up(deployed: Deployed) -> None:
    status = json.loads(deployed.cli("status", "--json"))
    queues = {q["name"]: q for q in status["queues"]}
    assert queues["dead-letter"]["visible"] == 0  # the s3:TestEvent was consumed, not dead-lettered
    assert status["events"] == sum(status["outcomes"].values()) + status["in_progress"]
