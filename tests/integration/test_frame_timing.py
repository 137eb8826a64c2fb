"""Frame timing on the deployed stack (S3 notification -> SQS -> Lambda on LocalStack): a
variable-rate phone video is registered, its Encord entry carries no `videoMetadata` and
its frame timing in `clientMetadata`; an index no object could hold and a reference movie
are refused before ffprobe runs."""

from __future__ import annotations

import json
import struct

from media_ingest.errors import ErrorCode
from media_ingest.records import OutcomeKind
from tests.integration.conftest import Deployed
from tests.integration.test_stack import _video_entry
from tests.support.media import MediaSet
from tests.support.mp4_boxes import dref, find, replace, url


def test_a_variable_rate_video_reaches_the_manifest_without_video_metadata(
    deployed: Deployed, media: MediaSet
) -> None:
    p = deployed.prefix()
    phone = deployed.drop(p + "phone.mov", media.bytes("vfr-phone.mov"))
    ntsc = deployed.drop(p + "ntsc.mp4", media.bytes("rate-ntsc-moov-end.mp4"))
    outcomes = deployed.wait({phone, ntsc})
    assert {o.key: o.kind for o in outcomes} == {
        phone: OutcomeKind.REGISTERED,
        ntsc: OutcomeKind.REGISTERED,
    }
    vfr = _video_entry(deployed, phone)
    assert "videoMetadata" not in vfr
    client = vfr["clientMetadata"]
    assert {
        k: client[k]
        for k in ("frame_count", "frame_rate_mode", "frame_duration_min", "frame_duration_max")
    } == {
        "frame_count": 85,
        "frame_rate_mode": "variable",
        "frame_duration_min": 0.033333,
        "frame_duration_max": 0.066667,
    }
    assert "fps_fraction" not in client and "avg_fps_fraction" in client
    cfr = _video_entry(deployed, ntsc)
    assert cfr["videoMetadata"]["fps"] == 29.97
    assert (cfr["clientMetadata"]["frame_rate_mode"], cfr["clientMetadata"]["frame_count"]) == (
        "constant",
        60,
    )
    variable = json.loads(deployed.cli("items", "--vfr", "--json"))
    assert phone in {i["key"] for i in variable} and ntsc not in {i["key"] for i in variable}


def test_an_impossible_index_and_a_reference_movie_fail_precisely(
    deployed: Deployed, media: MediaSet
) -> None:
    p = deployed.prefix()
    hostile = bytearray(media.bytes("rate-25-moov-end.mp4"))
    at = find(bytes(hostile), [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"])
    struct.pack_into(">II", hostile, at + 12, 1, 30_000_000)  # 30M one-byte samples
    external = dref(url(b"file:///Volumes/Capture/take1.mov", self_contained=False))
    path = [b"moov", b"trak", b"mdia", b"minf", b"dinf"]
    reference = replace(media.bytes("vfr-phone.mov"), path, external)
    keys = {
        deployed.drop(p + "huge.mp4", bytes(hostile)),
        deployed.drop(p + "reference.mov", reference),
    }
    outcomes = deployed.wait(keys)
    assert {o.kind for o in outcomes} == {OutcomeKind.FAILED}
    failures = {f.key: f for f in deployed.reader().failures() if f.key in keys}
    huge, ref = failures[p + "huge.mp4"], failures[p + "reference.mov"]
    assert huge.error_code is ErrorCode.CORRUPT_MEDIA
    assert "declares 30,000,000 samples" in huge.message
    assert ref.error_code is ErrorCode.INDIRECTION_REFUSED
    assert "/Volumes/Capture/take1.mov" in ref.message
