from __future__ import annotations

import json
import shutil
from types import SimpleNamespace
from typing import Any

import pytest

from media_ingest.deadline import Deadline
from media_ingest.errors import ErrorCode, MediaError, TransientError
from media_ingest.media import MediaKind
from media_ingest.probing import ffprobe as ffprobe_module
from media_ingest.probing.ffprobe import (
    DEADLINE_RESERVE_SECONDS,
    FfprobeRunner,
    classify_failure,
    ffprobe_args,
    interpret,
    rotation,
)
from tests.support.hostile import declare_samples
from tests.support.http import serve
from tests.support.media import MediaSet, ffprobe_json

SIGNED = "https://drop.s3.us-east-1.amazonaws.com/k.mp4?X-Amz-Signature=secret"


def test_one_forced_demuxer_network_protocols_and_bounds() -> None:
    args = ffprobe_args("ffprobe", SIGNED, "mov", ca_file="/ca.pem")
    assert args[args.index("-f") + 1] == "mov"
    assert args[args.index("-format_whitelist") + 1] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert args[args.index("-protocol_whitelist") + 1] == "https,tls,tcp,http"
    assert "file" not in args[args.index("-protocol_whitelist") + 1].split(",")
    assert args[args.index("-tls_verify") + 1] == "1"
    assert args[args.index("-ca_file") + 1] == "/ca.pem"
    assert int(args[args.index("-rw_timeout") + 1]) > 0
    assert int(args[args.index("-probesize") + 1]) > 0
    assert args[-1] == SIGNED


def test_plain_http_needs_no_tls_options() -> None:
    assert "-tls_verify" not in ffprobe_args("ffprobe", "http://127.0.0.1/x", "mov")


def test_unknown_demuxer_is_refused() -> None:
    with pytest.raises(ValueError, match="hls"):
        ffprobe_args("ffprobe", SIGNED, "hls")


def _probe(media: MediaSet, name: str) -> dict[str, Any]:
    probe: dict[str, Any] = json.loads(ffprobe_json(media.path(name)))
    return probe


def test_ntsc_frame_rate_is_exact(media: MediaSet) -> None:
    kind, video, audio = interpret(_probe(media, "clip.mp4"))
    assert kind is MediaKind.VIDEO and video is not None and audio is not None
    assert video.fps_fraction == "30000/1001"
    assert video.fps == 29.97
    assert (video.width, video.height, video.rotation) == (320, 240, 0)
    assert video.codec == "h264" and video.audio_codec == "aac"
    assert video.duration == pytest.approx(2.0, abs=0.1)
    assert audio.sample_rate == 48000


def test_rotated_video_reports_displayed_size(media: MediaSet) -> None:
    _, video, _ = interpret(_probe(media, "rotated.mp4"))
    assert video is not None
    assert video.rotation in (90, 270)
    assert (video.width, video.height) == (240, 320)
    assert (video.coded_width, video.coded_height) == (320, 240)


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, 90),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, 270),
        ({"side_data_list": [{"rotation": -180}]}, 180),
        ({"tags": {"rotate": "90"}}, 90),
        ({}, 0),
    ],
)
def test_rotation_is_clockwise_degrees(stream: dict[str, Any], expected: int) -> None:
    # A phone's portrait video carries rotate=90 (old tag) or a matrix ffprobe prints as -90.
    assert rotation(stream) == expected


@pytest.mark.parametrize(
    ("name", "codec", "rate", "depth"),
    [
        ("tone.wav", "pcm_s16le", 44100, 16),
        ("tone.mp3", "mp3", 44100, 32),
        ("tone.flac", "flac", 44100, 16),
        ("tone.m4a", "aac", 44100, 32),
    ],
)
def test_audio_only_files_are_audio(
    media: MediaSet, name: str, codec: str, rate: int, depth: int
) -> None:
    kind, video, audio = interpret(_probe(media, name))
    assert kind is MediaKind.AUDIO and video is None and audio is not None
    assert (audio.codec, audio.sample_rate, audio.channels, audio.bit_depth) == (
        codec,
        rate,
        2,
        depth,
    )
    assert audio.duration == pytest.approx(1.0, abs=0.1)


def test_no_streams_is_an_error() -> None:
    with pytest.raises(MediaError) as caught:
        interpret({"streams": [{"codec_type": "data"}], "format": {}})
    assert caught.value.code is ErrorCode.NO_MEDIA_STREAMS


def test_variable_frame_rate_uses_the_average() -> None:
    stream = {
        "codec_type": "video",
        "width": 2,
        "height": 2,
        "avg_frame_rate": "24000/1001",
        "r_frame_rate": "90000/1",
    }
    _, video, _ = interpret({"streams": [stream], "format": {"duration": "1.0"}})
    assert video is not None and video.fps_fraction == "24000/1001"


def test_runner_reads_over_http_with_ranges(media: MediaSet) -> None:
    body = media.bytes("clip-moov-end.mp4")
    with serve({"/clip.mp4": body}) as (base, served):
        probe = FfprobeRunner(timeout_seconds=30).run(f"{base}/clip.mp4", "mov")
    kind, video, _ = interpret(probe)
    assert kind is MediaKind.VIDEO and video is not None and video.fps == 29.97
    assert served.requests, "ffprobe must have read from the server"


@pytest.mark.parametrize("announce_close", [True, False], ids=["strict-server", "lax-server"])
@pytest.mark.parametrize(
    "name", ["noisy-moov-end.mp4", "noisy.mp4", "clip-moov-end.mp4", "clip.webm"]
)
def test_over_http_the_probe_says_what_it_says_of_the_local_file(
    media: MediaSet, name: str, announce_close: bool
) -> None:
    """Everything, not only size and rate, whatever the server does with `Connection: close`.

    With ffprobe 8.1's default open-ended requests, a server that closed without saying so
    made its soft seek back from a moov at the end fail: no packets read, no pixel format,
    no container bit rate, and no error."""
    demuxer = "matroska" if name.endswith(".webm") else "mov"
    with serve({"/o": media.bytes(name)}, announce_close) as (base, served):
        over_http = interpret(FfprobeRunner(timeout_seconds=30).run(f"{base}/o", demuxer))
    local = interpret(_probe(media, name))
    assert over_http == local
    assert over_http[1] is not None and over_http[1].pixel_format == "yuv420p"
    # Bounded ranges only: never an open-ended `bytes=N-`.
    assert served.ranges and all(r.partition("-")[2] for r in served.ranges)


def test_runner_refuses_a_disguised_container(media: MediaSet) -> None:
    with (
        serve({"/clip.mp4": media.bytes("clip.webm")}) as (base, _),
        pytest.raises(MediaError) as caught,
    ):
        FfprobeRunner(timeout_seconds=30).run(f"{base}/clip.mp4", "mov")
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA
    assert base not in caught.value.message  # the URL never leaks into errors


def test_runner_cannot_open_local_files(media: MediaSet) -> None:
    with pytest.raises(MediaError) as caught:
        FfprobeRunner(timeout_seconds=30).run(str(media.path("clip.mp4")), "mov")
    assert "not on whitelist" in caught.value.message


def test_runner_timeout_is_a_clear_error(tmp_path: Any) -> None:
    slow = tmp_path / "slow-ffprobe"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    with pytest.raises(MediaError) as caught:
        FfprobeRunner(binary=str(slow), timeout_seconds=0.5).run("http://127.0.0.1/x", "mov")
    assert caught.value.code is ErrorCode.PROBE_TIMEOUT


def test_failure_reasons_never_carry_the_presigned_url(tmp_path: Any) -> None:
    url = "https://drop.s3.amazonaws.com/k.mp4?X-Amz-Credential=AKIAX%2Fus&X-Amz-Signature=abc"
    noisy = tmp_path / "ffprobe"
    noisy.write_text(
        "#!/bin/sh\n"
        f"echo '[https @ 0x1] Opening {url} for reading' >&2\n"
        f"echo \"[mov @ 0x2] moov atom not found ('{url[:60]}...')\" >&2\n"
        "exit 1\n"
    )
    noisy.chmod(0o755)
    with pytest.raises(MediaError) as caught:
        FfprobeRunner(binary=str(noisy)).run(url, "mov")
    assert caught.value.code is ErrorCode.CORRUPT_MEDIA
    assert "X-Amz" not in caught.value.message and "s3.amazonaws.com" not in caught.value.message


def test_missing_binary_is_transient() -> None:
    with pytest.raises(TransientError):
        FfprobeRunner(binary="/nonexistent/ffprobe").run("http://127.0.0.1/x", "mov")


def test_failures_are_classified() -> None:
    assert classify_failure("Server returned 404 Not Found").code is ErrorCode.OBJECT_NOT_FOUND
    assert isinstance(classify_failure("Connection refused"), TransientError)
    assert classify_failure("moov atom not found").code is ErrorCode.CORRUPT_MEDIA


def test_binary_is_found_on_the_functions_path(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Lambda ffprobe is /opt/bin/ffprobe via PATH; the probe's empty environment must not
    make it fall back to /usr/bin."""
    fake = tmp_path / "ffprobe"
    fake.write_text('#!/bin/sh\necho \'{"streams": [], "format": {"marker": "layer"}}\'\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert FfprobeRunner().run("http://127.0.0.1/x", "mov")["format"] == {"marker": "layer"}


# -- bounded ffprobe, pinned reads (issue 11) -----------------------------------------------
def _script(tmp_path: Any, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_ffprobe_runs_under_an_address_space_limit(tmp_path: Any, media: MediaSet) -> None:
    """A 36 KB MP4 declaring 50 million samples per track took ffprobe 640 MB resident; under
    the limit its allocations fail and its peak stays under the limit, whatever it reports."""
    report = tmp_path / "peak"
    real = shutil.which("ffprobe")
    # /usr/bin/time reports ffprobe's own peak; the limit is set on the wrapper and inherited.
    wrapper = _script(tmp_path, "ffprobe", f'exec /usr/bin/time -f %M -o {report} {real} "$@"\n')
    bomb = declare_samples(media.bytes("clip.mp4"), 50_000_000)
    with serve({"/bomb.mp4": bomb}) as (base, _):
        try:
            FfprobeRunner(binary=wrapper, timeout_seconds=60, memory_mb=256).run(
                f"{base}/bomb.mp4", "mov"
            )
        except MediaError as error:
            assert error.code in (ErrorCode.PROBE_RESOURCE_LIMIT, ErrorCode.CORRUPT_MEDIA)
    peak_mb = int(report.read_text().split()[-1]) / 1024
    assert peak_mb < 256, f"ffprobe peaked at {peak_mb:.0f} MB"


def test_ffprobe_over_its_cpu_time_is_a_resource_limit(tmp_path: Any) -> None:
    spin = _script(tmp_path, "spin", "while :; do :; done\n")
    with pytest.raises(MediaError) as caught:
        FfprobeRunner(binary=spin, timeout_seconds=30, cpu_seconds=1).run(
            "http://127.0.0.1/x", "mov"
        )
    assert caught.value.code is ErrorCode.PROBE_RESOURCE_LIMIT
    assert "CPU" in caught.value.message


def test_ffprobe_output_is_bounded_before_it_is_read(tmp_path: Any) -> None:
    # 9 MB of JSON, as thousands of streams or tags would print.
    noisy = _script(tmp_path, "noisy", "head -c 9437184 /dev/zero | tr '\\0' ' '\n")
    with pytest.raises(MediaError) as caught:
        FfprobeRunner(binary=noisy).run("http://127.0.0.1/x", "mov")
    assert caught.value.code is ErrorCode.PROBE_RESOURCE_LIMIT


def test_a_crash_of_ffprobe_names_it(tmp_path: Any) -> None:
    crash = _script(tmp_path, "crash", "kill -SEGV $$\n")
    with pytest.raises(MediaError) as caught:
        FfprobeRunner(binary=crash).run("http://127.0.0.1/x", "mov")
    assert caught.value.code is ErrorCode.PARSER_ERROR and caught.value.parser == "ffprobe"
    assert "SIGSEGV" in caught.value.message


def test_every_request_carries_the_if_match_the_url_was_signed_with(media: MediaSet) -> None:
    body = media.bytes("clip-moov-end.mp4")
    with serve({"/clip.mp4": body}, etag="v1") as (base, served):
        FfprobeRunner(timeout_seconds=30).run(f"{base}/clip.mp4", "mov", {"If-Match": '"v1"'})
    assert len(served.headers) > 1  # ranged reads of a moov at the end
    assert all(h.get("If-Match") == '"v1"' for h in served.headers)


def test_an_object_overwritten_before_ffprobe_reads_it_is_changed(media: MediaSet) -> None:
    with (
        serve({"/clip.mp4": media.bytes("clip.mp4")}, etag="v2") as (base, _),
        pytest.raises(MediaError) as caught,
    ):
        FfprobeRunner(timeout_seconds=30).run(f"{base}/clip.mp4", "mov", {"If-Match": '"v1"'})
    assert caught.value.code is ErrorCode.OBJECT_CHANGED


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        ffprobe_args("ffprobe", SIGNED, "mov", headers={"If-Match": '"a"\r\nX-Other: 1'})


class _Left:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


@pytest.mark.parametrize(
    ("left", "timeout", "cut"),
    # The reserve for the rest of the message: 15 s, or a fifth of a short invocation.
    [(600.0, 60.0, False), (60.0, 48.0, True), (15.0, 12.0, True)],
)
def test_the_probe_timeout_is_what_the_invocation_has_left(
    left: float, timeout: float, cut: bool
) -> None:
    deadline = Deadline()
    deadline.start(_Left(left))
    got, was_cut = FfprobeRunner(timeout_seconds=60, deadline=deadline)._timeout()
    assert (round(got), was_cut) == (round(timeout), cut)


def test_no_probe_starts_that_the_invocation_cannot_finish(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("media_ingest.deadline.time", SimpleNamespace(monotonic=lambda: clock[0]))
    deadline = Deadline()
    deadline.start(_Left(180))
    clock[0] += 180 - (DEADLINE_RESERVE_SECONDS + 1)  # late in the batch: 16 s left
    never = _script(tmp_path, "never", "touch started\n")
    with pytest.raises(TransientError) as caught:
        FfprobeRunner(binary=never, deadline=deadline).run("http://127.0.0.1/x", "mov")
    assert caught.value.code is ErrorCode.INVOCATION_DEADLINE
    assert not (tmp_path / "started").exists()


def test_a_probe_cut_short_by_the_deadline_is_retried_not_the_objects_fault(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ffprobe_module, "DEADLINE_RESERVE_SECONDS", 0.0)
    monkeypatch.setattr(ffprobe_module, "MIN_PROBE_SECONDS", 0.1)
    deadline = Deadline()
    deadline.start(_Left(0.5))
    slow = _script(tmp_path, "slow", "sleep 5\n")
    with pytest.raises(TransientError) as caught:
        FfprobeRunner(binary=slow, timeout_seconds=60, deadline=deadline).run(
            "http://127.0.0.1/x", "mov"
        )
    assert caught.value.code is ErrorCode.INVOCATION_DEADLINE
