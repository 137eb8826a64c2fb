"""Running ffprobe on untrusted objects, and reading its JSON into `VideoInfo` / `AudioInfo`.

The runner is the only code that starts ffprobe. It opens exactly one URL with exactly
one demuxer (chosen from the content's magic bytes), over network protocols only, with
bounded probe size, I/O timeout and wall time, so a playlist or concat list can never
make it read local files or call other hosts. The process itself runs under an address
space, CPU time and output size limit (a 43 KB MP4 declaring tens of millions of samples
made ffprobe take 640 MB), and no longer than the invocation has left. The presigned URL
never leaves this module in a log line or an error message.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from media_ingest.deadline import Deadline
from media_ingest.errors import ErrorCode, MediaError, TransientError
from media_ingest.media import AudioInfo, MediaKind, VideoInfo

# The demuxer names ffprobe knows each container by; -format_whitelist takes these.
DEMUXER_WHITELIST: dict[str, str] = {
    "mov": "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska": "matroska,webm",
    "avi": "avi",
    "mpegts": "mpegts",
    "flv": "flv",
    "ogg": "ogg",
    "wav": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "aac": "aac",
    "mpeg": "mpeg",
    "aiff": "aiff",
}
NETWORK_PROTOCOLS = "https,tls,tcp,http"
PROBE_SIZE_BYTES = 5_000_000
ANALYZE_MICROSECONDS = 5_000_000
IO_TIMEOUT_MICROSECONDS = 15_000_000
# Every read a bounded range on one kept-alive connection (ffprobe >= 8.1, the layer's).
# Without them, each seek is an open-ended `Range: bytes=N-` on a new connection: the
# server streams until ffprobe hangs up (what it bills includes what was in flight), and
# ffprobe 8.1's soft seek back from the end of a moov-at-end MP4 tries to reuse the
# connection it asked to close, fails, and reads no packets at all (no pixel format, no
# container bit rate; tests/unit/test_ffprobe.py).
REQUEST_BYTES = 256 * 1024
HTTP_OPTIONS = ("-multiple_requests", "1", "-request_size", str(REQUEST_BYTES))
_STDERR_LIMIT = 400
# ffprobe's JSON for real media is a few KB; more is a hostile file's thousands of streams or
# tags, and parsing it would cost the function many times its size.
OUTPUT_BYTES = 8 * 1024 * 1024
# What the rest of a message needs after its probe (catalog, manifest append), and the least
# time worth starting a probe with: a probe that cannot finish with this much left of the
# invocation is not started. Each at most this share of the invocation, so a function with
# a short timeout still probes.
DEADLINE_RESERVE_SECONDS = 15.0
MIN_PROBE_SECONDS = 5.0
DEADLINE_SHARE = 0.2
# Bounds of what a probe may report: past them a value is the file's invention.
MAX_DIMENSION = 1 << 16
MAX_FRAME_RATE = 1_000_000
MAX_SECONDS = 10**9


def ffprobe_args(
    binary: str,
    url: str,
    demuxer: str,
    ca_file: str | None = None,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """The full ffprobe command line for one object.

    ffprobe does not verify TLS certificates unless told to (`-tls_verify` defaults to 0),
    so https URLs get `-tls_verify 1` with an explicit CA bundle. `headers` go with every
    request (the If-Match a presigned URL was signed with).
    """
    if demuxer not in DEMUXER_WHITELIST:
        raise ValueError(f"no ffprobe demuxer allowed for {demuxer!r}")
    tls = (
        ["-tls_verify", "1", "-ca_file", ca_file or default_ca_file()]
        if url.startswith("https:")
        else []
    )
    lines = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if any(c in "\r\n" for c in "".join(f"{n}{v}" for n, v in (headers or {}).items())):
        raise ValueError("a header name or value holds a line break")
    return [
        binary,
        # Warnings too: only they name the HTTP status of a refused read (412 when If-Match
        # fails), which the error line reduces to "4XX Client Error".
        "-v",
        "warning",
        "-hide_banner",
        "-protocol_whitelist",
        NETWORK_PROTOCOLS,
        "-format_whitelist",
        DEMUXER_WHITELIST[demuxer],
        "-f",
        demuxer,
        "-probesize",
        str(PROBE_SIZE_BYTES),
        "-analyzeduration",
        str(ANALYZE_MICROSECONDS),
        "-rw_timeout",
        str(IO_TIMEOUT_MICROSECONDS),
        *HTTP_OPTIONS,
        *(["-headers", lines] if lines else []),
        *tls,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        url,
    ]


def default_ca_file() -> str:
    """The system CA bundle (Amazon Linux, then Debian), else the one botocore ships."""
    for candidate in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"):
        if os.path.exists(candidate):
            return candidate
    from botocore.httpsession import DEFAULT_CA_BUNDLE  # noqa: PLC0415

    return str(DEFAULT_CA_BUNDLE)


@dataclass(frozen=True)
class FfprobeRunner:
    """Runs ffprobe as a bounded subprocess (ffmpeg-python's probe() cannot be bounded)."""

    binary: str = "ffprobe"
    timeout_seconds: float = 60.0
    ca_file: str | None = None
    # Address space (virtual memory) of the ffprobe process: probing real 8K video takes
    # under 50 MB resident; past the limit an allocation fails and ffprobe gives up.
    memory_mb: int = 256
    cpu_seconds: int = 20
    # The invocation's deadline (shared with the batch runner); None: only timeout_seconds.
    deadline: Deadline | None = None

    def run(self, url: str, demuxer: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        # Resolved on our PATH (a layer's /opt/bin on Lambda): ffprobe itself runs with an
        # empty environment, where a bare name would only be looked up in /bin:/usr/bin.
        binary = shutil.which(self.binary)
        if binary is None:
            raise TransientError(
                ErrorCode.AWS_TRANSIENT, f"ffprobe binary {self.binary!r} is not installed"
            )
        args = ffprobe_args(binary, url, demuxer, self.ca_file, headers)
        timeout, cut = self._timeout()
        cpu_before = _children_cpu()
        # Output to files, not pipes: what ffprobe prints is bounded by RLIMIT_FSIZE, and
        # only its bounded head is ever read into memory.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                done = subprocess.run(
                    args,
                    stdout=out,
                    stderr=err,
                    timeout=timeout,
                    check=False,
                    env={},
                    # setrlimit in the child before exec: subprocess has no option for it.
                    preexec_fn=self._limit,
                )
            except subprocess.TimeoutExpired as exc:
                if cut:
                    raise TransientError(
                        ErrorCode.INVOCATION_DEADLINE,
                        "the invocation ran out of time during the probe; retried",
                    ) from exc
                raise MediaError(
                    ErrorCode.PROBE_TIMEOUT, f"ffprobe did not finish in {timeout:g} s"
                ) from exc
            except OSError as exc:  # the sandbox could not start a process: not the object
                raise TransientError(
                    ErrorCode.AWS_TRANSIENT, f"ffprobe could not start: {exc}"
                ) from exc
            out.seek(0, os.SEEK_END)
            if out.tell() >= OUTPUT_BYTES:  # RLIMIT_FSIZE stopped it, or is about to
                raise MediaError(
                    ErrorCode.PROBE_RESOURCE_LIMIT,
                    f"ffprobe's output would exceed {OUTPUT_BYTES:,} bytes",
                )
            # Killed by SIGXCPU, or exited on it (ffprobe handles it), or SIGKILLed after:
            # either way it used its CPU time (as the kernel counts it, in ticks).
            if done.returncode == -signal.SIGXCPU or (
                _children_cpu() - cpu_before >= self.cpu_seconds - 0.05
            ):
                raise MediaError(
                    ErrorCode.PROBE_RESOURCE_LIMIT,
                    f"ffprobe used more than its {self.cpu_seconds} s of CPU time",
                )
            if done.returncode != 0:
                raise self._failure(done.returncode, redact(_tail(err), url))
            out.seek(0)
            return parse_output(out.read())

    def _timeout(self) -> tuple[float, bool]:
        """The wall time this probe may take, and whether the deadline cut it short."""
        if self.deadline is None:
            return self.timeout_seconds, False
        share = self.deadline.total * DEADLINE_SHARE
        left = self.deadline.remaining() - min(DEADLINE_RESERVE_SECONDS, share)
        if left < min(MIN_PROBE_SECONDS, share):
            raise TransientError(
                ErrorCode.INVOCATION_DEADLINE,
                f"{max(left, 0):.0f} s left in this invocation, too little to probe; retried",
            )
        return min(self.timeout_seconds, left), left < self.timeout_seconds

    def _limit(self) -> None:
        """In the child, before exec: the bounds of one ffprobe process."""
        memory = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        # SIGXCPU at the soft limit (ffprobe exits on it), SIGKILL a second later if not.
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_BYTES, OUTPUT_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def _failure(self, returncode: int, stderr: str) -> MediaError | TransientError:
        """What a non-zero exit means: memory refused, a crash, or what ffprobe said."""
        if "Cannot allocate memory" in stderr or "out of memory" in stderr.lower():
            return MediaError(
                ErrorCode.PROBE_RESOURCE_LIMIT,
                f"ffprobe needed more than its {self.memory_mb} MB of memory",
            )
        if returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
            error = MediaError(
                ErrorCode.PARSER_ERROR, f"ffprobe died of signal {-returncode} {name}".strip()
            )
            error.parser = "ffprobe"
            return error
        return classify_failure(stderr)


def parse_output(output: bytes) -> dict[str, Any]:
    """ffprobe's printed JSON, which must be an object (interpret reads it)."""
    try:
        parsed = json.loads(output)
    except (ValueError, RecursionError) as exc:
        raise MediaError(ErrorCode.CORRUPT_MEDIA, "ffprobe printed no JSON") from exc
    if not isinstance(parsed, dict):
        raise MediaError(ErrorCode.CORRUPT_MEDIA, "ffprobe printed no JSON object")
    return parsed


def _children_cpu() -> float:
    """CPU seconds of the waited-for children so far (the runner's ffprobe processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(stream: Any, size: int = 4096) -> str:
    """The last `size` bytes a stream (a file ffprobe wrote) holds, decoded."""
    stream.seek(0, os.SEEK_END)
    stream.seek(max(stream.tell() - size, 0))
    return str(stream.read().decode("utf-8", "replace"))


_ANY_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def redact(text: str, url: str) -> str:
    """ffprobe's messages without the presigned URL (it carries a credential and signature)
    or any other URL, however ffprobe quoted or cut it."""
    return _ANY_URL.sub("<url>", text.replace(url, "<object>"))


_TRANSIENT_MARKS = (
    "Server returned 5",
    "Connection refused",
    "Connection timed out",
    "timed out",
    "Server returned 403",
    "Network is unreachable",
)


def classify_failure(stderr: str) -> MediaError | TransientError:
    """Tell a broken object from a network problem by what ffprobe said."""
    detail = " ".join(stderr.split())[-_STDERR_LIMIT:] or "ffprobe failed without a message"
    if "Server returned 404" in stderr:
        return MediaError(ErrorCode.OBJECT_NOT_FOUND, "object vanished while probing")
    if "HTTP error 412" in stderr:  # If-Match: the object was overwritten
        return MediaError(
            ErrorCode.OBJECT_CHANGED,
            "object was overwritten before it was probed; its newer event registers it",
        )
    if any(mark in stderr for mark in _TRANSIENT_MARKS):
        return TransientError(ErrorCode.AWS_TRANSIENT, f"ffprobe could not read: {detail}")
    return MediaError(ErrorCode.CORRUPT_MEDIA, f"ffprobe could not read the media: {detail}")


def interpret(probe: dict[str, Any]) -> tuple[MediaKind, VideoInfo | None, AudioInfo | None]:
    """Turn ffprobe's JSON into our metadata; decides video vs audio by the streams.

    Every value is checked for its type and range before use: ffprobe prints what the file
    says (a `rotate` tag is any text the file holds, a rate any fraction), so nothing here
    may assume a number is a number."""
    streams = _dicts(probe.get("streams"))
    fmt = _mapping(probe.get("format"))
    videos = [s for s in streams if s.get("codec_type") == "video" and not _attached_picture(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    audio = _audio_info(audios[0], fmt) if audios else None
    if videos:
        return MediaKind.VIDEO, _video_info(videos[0], fmt, audio), audio
    if audio is not None:
        return MediaKind.AUDIO, None, audio
    raise MediaError(ErrorCode.NO_MEDIA_STREAMS, "container holds no video or audio stream")


def _attached_picture(stream: dict[str, Any]) -> bool:
    return bool(_mapping(stream.get("disposition")).get("attached_pic"))


def frame_rate(stream: dict[str, Any]) -> Fraction | None:
    """avg_frame_rate is the true rate of variable-rate streams; r_frame_rate is the fallback."""
    for field in ("avg_frame_rate", "r_frame_rate"):
        value = _fraction(stream.get(field))
        if value:
            return value
    return None


def rotation(stream: dict[str, Any]) -> int:
    """Clockwise display rotation in degrees, from the display matrix or the old `rotate` tag."""
    for side in _dicts(stream.get("side_data_list")):
        if "rotation" in side:
            # ffprobe reports the matrix's counter-clockwise angle: -90 means turn 90 clockwise.
            angle = _finite(side["rotation"])
            return -round(angle) % 360 if angle is not None else 0
    angle = _finite(_mapping(stream.get("tags")).get("rotate"))
    return round(angle) % 360 if angle is not None else 0


def _video_info(stream: dict[str, Any], fmt: dict[str, Any], audio: AudioInfo | None) -> VideoInfo:
    rate = frame_rate(stream)
    if rate is None:
        raise MediaError(ErrorCode.CORRUPT_MEDIA, "video stream has no frame rate")
    coded_w, coded_h = _int(stream.get("width")) or 0, _int(stream.get("height")) or 0
    if not (0 < coded_w <= MAX_DIMENSION and 0 < coded_h <= MAX_DIMENSION):
        raise MediaError(ErrorCode.CORRUPT_MEDIA, "video stream has no picture size")
    turn = rotation(stream)
    width, height = (coded_h, coded_w) if turn in (90, 270) else (coded_w, coded_h)
    sar = _text(stream.get("sample_aspect_ratio"))
    return VideoInfo(
        fps=round(float(rate), 3),
        fps_fraction=f"{rate.numerator}/{rate.denominator}",
        duration=_duration(stream, fmt),
        width=width,
        height=height,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=turn,
        codec=_text(stream.get("codec_name")) or "unknown",
        bit_rate=_int(fmt.get("bit_rate")) or _int(stream.get("bit_rate")),
        pixel_format=_text(stream.get("pix_fmt")),
        sample_aspect_ratio=sar if sar and sar not in ("1:1", "0:1") else None,
        audio_codec=audio.codec if audio else None,
    )


def _audio_info(stream: dict[str, Any], fmt: dict[str, Any]) -> AudioInfo:
    return AudioInfo(
        duration=_duration(stream, fmt),
        sample_rate=_int(stream.get("sample_rate")) or 0,
        channels=_int(stream.get("channels")) or 0,
        codec=_text(stream.get("codec_name")) or "unknown",
        bit_rate=_int(stream.get("bit_rate")) or _int(fmt.get("bit_rate")),
        bit_depth=(
            _int(stream.get("bits_per_raw_sample"))
            or _int(stream.get("bits_per_sample"))
            or _SAMPLE_FORMAT_BITS.get((_text(stream.get("sample_fmt")) or "").rstrip("p"))
        ),
    )


# Decoded sample width of compressed codecs (AAC and MP3 decode to planar float: 32 bits).
_SAMPLE_FORMAT_BITS = {"u8": 8, "s16": 16, "s32": 32, "flt": 32, "dbl": 64, "s64": 64}


def _duration(stream: dict[str, Any], fmt: dict[str, Any]) -> float | None:
    for value in (fmt.get("duration"), stream.get("duration")):
        seconds = _finite(value)
        if seconds is not None and 0 <= seconds <= MAX_SECONDS:
            return round(seconds, 6)
    return None


def _fraction(value: object) -> Fraction | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    n, d = _int(num), _int(den)
    return Fraction(n, d) if n and d and n / d <= MAX_FRAME_RATE else None


def _int(value: object) -> int | None:
    """A positive integer under 2^53 (as ffprobe prints numbers: ints or decimal strings)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 15:
        return None
    number = int(text)
    return number if number > 0 else None


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(str(value)[:64])
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _text(value: object) -> str | None:
    """A short name (codec, pixel format, aspect ratio): ffprobe's, so never long."""
    return value[:64] if isinstance(value, str) and value else None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
