"""Frame timing through the real ingest handler on moto, with generated media: a variable
frame rate is registered with its timing and without an average fps as fact; the index is
read at no extra GET for faststart files and one for moov at the end; an index no object
could hold, and a reference movie, are refused before ffprobe trusts them."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from media_ingest.adapters.objects import S3Objects
from media_ingest.errors import ErrorCode
from media_ingest.events import ObjectEvent
from media_ingest.media import FrameRateMode
from media_ingest.probing.ffprobe import FfprobeRunner
from media_ingest.wiring import build_runner
from tests.handlers.conftest import Stack
from tests.handlers.test_ingest_handler import kinds
from tests.support.http import serve
from tests.support.media import MediaSet
from tests.support.mp4_boxes import dref, find, replace, url


def entries_by_key(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        entry["clientMetadata"]["key"]: entry
        for part in stack.manifest_parts()
        for entry in part.get("videos", [])
    }


def test_a_variable_rate_video_is_registered_without_an_average_fps_as_fact(
    stack: Stack, media: MediaSet, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {"phone/vfr.mov": "vfr-phone.mov", "cams/ntsc.mp4": "rate-ntsc.mp4"}
    bodies = [stack.body(key, media.bytes(name)) for key, name in names.items()]
    capsys.readouterr()
    assert stack.deliver(*bodies) == {"batchItemFailures": []}
    assert kinds(stack) == {"registered": 2}  # a variable rate is never a failure
    items = {i.key: i.media.video for i in stack.reader.items()}
    phone, ntsc = items["phone/vfr.mov"], items["cams/ntsc.mp4"]
    assert phone is not None and phone.timing is not None and phone.variable_rate
    assert (phone.timing.frame_count, phone.timing.rate_mode) == (85, FrameRateMode.VARIABLE)
    assert ntsc is not None and ntsc.variable_rate is False

    entries = entries_by_key(stack)
    vfr, cfr = entries["phone/vfr.mov"], entries["cams/ntsc.mp4"]
    assert "videoMetadata" not in vfr  # Encord synchronises the frames itself
    client = vfr["clientMetadata"]
    assert {k: client[k] for k in ("frame_count", "frame_rate_mode")} == {
        "frame_count": 85,
        "frame_rate_mode": "variable",
    }
    assert (client["frame_duration_min"], client["frame_duration_max"]) == (0.033333, 0.066667)
    assert "fps_fraction" not in client and client["avg_fps_fraction"] == phone.fps_fraction
    assert cfr["videoMetadata"]["fps"] == 29.97  # proven constant: Encord may trust it
    assert cfr["clientMetadata"]["frame_rate_mode"] == "constant"
    assert cfr["clientMetadata"]["frame_count"] == 60
    assert cfr["clientMetadata"]["fps_fraction"] == "30000/1001"
    # One VariableFrameRateVideos count, in the invocation's embedded metrics.
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    counts = [m["VariableFrameRateVideos"] for m in emitted if "VariableFrameRateVideos" in m]
    assert counts in ([1], [[1]])  # one value, or a list of one (EMF allows both)


def test_the_parameter_forces_video_metadata_for_every_video(stack: Stack, media: MediaSet) -> None:
    runner = build_runner(stack.settings.model_copy(update={"encord_video_metadata": "always"}))
    body = stack.body("phone/vfr.mov", media.bytes("vfr-phone.mov"))
    assert stack.deliver(body, runner=runner) == {"batchItemFailures": []}
    entry = entries_by_key(stack)["phone/vfr.mov"]
    item = stack.reader.items()[0].media.video
    assert item is not None and entry["videoMetadata"]["fps"] == item.fps
    assert entry["clientMetadata"]["frame_rate_mode"] == "variable"  # said either way


def test_unknown_timing_keeps_video_metadata_only_when_asked(stack: Stack, media: MediaSet) -> None:
    body = stack.body("long/clip.mkv", media.bytes("long.mkv"))
    assert stack.deliver(body) == {"batchItemFailures": []}
    entry = entries_by_key(stack)["long/clip.mkv"]
    assert "videoMetadata" not in entry and "frame_rate_mode" not in entry["clientMetadata"]
    assert "every cluster" in entry["clientMetadata"]["frame_timing_unknown"]
    runner = build_runner(
        stack.settings.model_copy(update={"encord_video_metadata": "unless-variable"})
    )
    again = stack.body("long/again.mkv", media.bytes("long.mkv"))
    assert stack.deliver(again, runner=runner) == {"batchItemFailures": []}
    assert "videoMetadata" in entries_by_key(stack)["long/again.mkv"]


def test_the_index_costs_no_get_for_faststart_and_one_for_moov_at_the_end(
    stack: Stack, media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, int, int]] = []
    real_read_at = S3Objects.read_at

    def counting(self: S3Objects, event: ObjectEvent, start: int, length: int) -> bytes:
        reads.append((event.key, start, length))
        return real_read_at(self, event, start, length)

    monkeypatch.setattr(S3Objects, "read_at", counting)
    names = ["gop10-bf2.mp4", "gop10-bf2-moov-end.mp4", "vfr-edited.mp4"]
    assert stack.deliver(*(stack.body(n, media.bytes(n)) for n in names)) == {
        "batchItemFailures": []
    }
    late = media.bytes("gop10-bf2-moov-end.mp4")
    moov_at = late.index(b"moov") - 4
    # KeyFrames off (the default): the moov-at-end file costs one GET at its moov, which
    # comes whole with it; the faststart files nothing.
    assert reads == [("gop10-bf2-moov-end.mp4", moov_at, len(late) - moov_at)]
    timings = {i.key: i.media.video.timing for i in stack.reader.items() if i.media.video}
    assert all(t is not None and t.frame_count for t in timings.values())


def test_an_index_claiming_more_samples_than_bytes_never_reaches_ffprobe(
    stack: Stack, media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []
    real_run = FfprobeRunner.run

    def watched(
        self: FfprobeRunner, url: str, demuxer: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        probed.append(url.split("?", 1)[0])
        return real_run(self, url, demuxer, headers)

    monkeypatch.setattr(FfprobeRunner, "run", watched)
    data = bytearray(media.bytes("rate-25-moov-end.mp4"))
    at = find(bytes(data), [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"])
    struct.pack_into(">II", data, at + 12, 1, 30_000_000)  # 30M samples of one byte
    bodies = [
        stack.body("bad/huge.mp4", bytes(data)),
        stack.body("ok/fine.mp4", media.bytes("rate-25-moov-end.mp4")),
    ]
    assert stack.deliver(*bodies) == {"batchItemFailures": []}
    [failure] = stack.reader.failures()
    assert (failure.key, failure.error_code) == ("bad/huge.mp4", ErrorCode.CORRUPT_MEDIA)
    assert "declares 30,000,000 samples, more than the object's" in failure.message
    assert [u.rsplit("/", 2)[-2:] for u in probed] == [["ok", "fine.mp4"]]
    assert kinds(stack) == {"failed": 1, "registered": 1}


def test_a_reference_movie_is_refused_and_its_reference_never_fetched(
    stack: Stack, media: MediaSet
) -> None:
    with serve({"/take1.mov": media.bytes("vfr-phone.mov")}) as (canary, served):
        external = dref(url(f"{canary}/take1.mov".encode(), self_contained=False))
        path = [b"moov", b"trak", b"mdia", b"minf", b"dinf"]
        data = replace(media.bytes("vfr-phone.mov"), path, external)
        assert stack.deliver(stack.body("edit/reference.mov", data)) == {"batchItemFailures": []}
        assert served.requests == []
    [failure] = stack.reader.failures()
    assert failure.error_code is ErrorCode.INDIRECTION_REFUSED
    assert "samples are in another file" in failure.message and "take1.mov" in failure.message
    assert stack.reader.items() == []
