"""Real media generated for the tests (ffmpeg through ffmpeg-python, Pillow, pydicom).

Generated once per session into a cache folder; nothing binary is checked in.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import ffmpeg
from PIL import Image

TESTSRC = "testsrc=size=320x240:rate=30000/1001"


def _run(stream: ffmpeg.nodes.OutputStream) -> None:
    stream.overwrite_output().global_args("-v", "error").run()


def video_mp4(path: Path, seconds: float = 2.0, faststart: bool = True) -> Path:
    video = ffmpeg.input(TESTSRC, f="lavfi", t=seconds)
    audio = ffmpeg.input("sine=frequency=440:sample_rate=48000", f="lavfi", t=seconds)
    options = {"vcodec": "libx264", "pix_fmt": "yuv420p", "acodec": "aac", "g": 30}
    if faststart:
        options["movflags"] = "+faststart"
    _run(ffmpeg.output(video, audio, str(path), **options))
    return path


def gop_mp4(path: Path, gop: int, bframes: int, faststart: bool, seconds: float = 8.0) -> Path:
    """H.264 with a fixed GOP (a key frame every `gop` frames) and `bframes` B-frames; long
    enough (over 64 KiB) that a moov at the end is past the probe's first range."""
    video = ffmpeg.input(TESTSRC, f="lavfi", t=seconds)
    options = {"vcodec": "libx264", "pix_fmt": "yuv420p", "g": gop, "bf": bframes}
    if faststart:
        options["movflags"] = "+faststart"
    _run(ffmpeg.output(video, str(path), **options))
    return path


def noisy_mp4(path: Path, faststart: bool, seconds: float = 2.0) -> Path:
    """Noise compresses badly: a few MB, so a moov at the end is far past any first read."""
    video = ffmpeg.input(
        "testsrc2=size=640x360:rate=30000/1001,noise=alls=60:allf=t+u", f="lavfi", t=seconds
    )
    audio = ffmpeg.input("sine=frequency=440:sample_rate=48000", f="lavfi", t=seconds)
    options = {"vcodec": "libx264", "preset": "ultrafast", "pix_fmt": "yuv420p", "acodec": "aac"}
    if faststart:
        options["movflags"] = "+faststart"
    _run(ffmpeg.output(video, audio, str(path), g=30, **options))
    return path


# Frame-timing cases (tests/unit/test_frame_timing_oracle.py): the name says the truth.
# rate -> (lavfi rate, B-frames, GOP); every one H.264 at 160x120 for 2 s.
RATES = {"25": ("25", 3, 12), "ntsc": ("30000/1001", 2, 15), "5994": ("60000/1001", 3, 30)}
# Two rates in one file: 30 fps for the first second, then 15 fps (timestamps edited).
TWO_RATES = "if(lt(N,30),N/30,1+(N-30)/15)/TB"


def _mp4_options(faststart: bool, **options: object) -> dict[str, object]:
    return {"movflags": "+faststart"} | options if faststart else options


def rate_mp4(path: Path, rate: str, faststart: bool, container: str = "mp4") -> Path:
    """Constant `rate` (a key of RATES), with B-frames (so an edit list shifts the start)."""
    lavfi_rate, bframes, gop = RATES[rate]
    video = ffmpeg.input(f"testsrc=size=160x120:rate={lavfi_rate}", f="lavfi", t=2)
    options = {"vcodec": "libx264", "pix_fmt": "yuv420p", "bf": bframes, "g": gop}
    if container == "mp4":
        options = _mp4_options(faststart, **options)
    _run(ffmpeg.output(video, str(path), **options))
    return path


def two_rate_video(path: Path, faststart: bool = True) -> Path:
    """Variable rate by edited timestamps: 30 fps, then 15 fps; B-frames; 1/90000 ticks
    (MP4) or 1 ms (Matroska, by the name's extension)."""
    source = ffmpeg.input("testsrc=size=160x120:rate=30", f="lavfi", t=3)
    video = source.filter("setpts", TWO_RATES)
    options: dict[str, object] = {
        "vcodec": "libx264",
        "pix_fmt": "yuv420p",
        "bf": 2,
        "fps_mode": "vfr",
    }
    if path.suffix == ".mp4":
        options = _mp4_options(faststart, video_track_timescale=90000, **options)
    _run(ffmpeg.output(video, str(path), **options))
    return path


def phone_mov(path: Path) -> Path:
    """A phone-like capture: QuickTime, 1/600 s ticks (as iPhones write), 30 fps with every
    17th frame dropped (its timestamp gap kept), AAC audio beside it."""
    video = ffmpeg.input("testsrc=size=160x120:rate=30", f="lavfi", t=3).filter(
        "select", "not(eq(mod(n,17),5))"
    )
    audio = ffmpeg.input("sine=frequency=440:sample_rate=48000", f="lavfi", t=3)
    options = {
        "vcodec": "libx264",
        "pix_fmt": "yuv420p",
        "bf": 0,
        "acodec": "aac",
        "fps_mode": "passthrough",
        "video_track_timescale": 600,
        "f": "mov",
    }
    _run(ffmpeg.output(video, audio, str(path), **options))
    return path


def delayed_mp4(source: Path, path: Path, seconds: float = 0.5) -> Path:
    """The same stream starting `seconds` late: an empty edit before its (B-frame) edit."""
    _run(ffmpeg.input(str(source), itsoffset=seconds).output(str(path), c="copy"))
    return path


def cut_mp4(source: Path, path: Path, seconds: float = 0.5) -> Path:
    """A stream copy cut between key frames: its edit list hides the frames before the cut
    (stored from the key frame before, never shown)."""
    _run(ffmpeg.input(str(source), ss=seconds).output(str(path), c="copy"))
    return path


def one_frame_mp4(path: Path) -> Path:
    video = ffmpeg.input("testsrc=size=160x120:rate=25", f="lavfi")
    _run(ffmpeg.output(video, str(path), vcodec="libx264", pix_fmt="yuv420p", vframes=1))
    return path


def hour_mp4(path: Path) -> Path:
    """One hour at 10 fps, 32x32: 36,000 frames, a 150 KB moov (faststart, longer than the
    first range), about 2 MB."""
    video = ffmpeg.input("testsrc=size=32x32:rate=10", f="lavfi", t=3600)
    options = {"vcodec": "libx264", "preset": "ultrafast", "pix_fmt": "yuv420p", "g": 100}
    _run(ffmpeg.output(video, str(path), **_mp4_options(True, **options)))
    return path


def long_mkv(path: Path) -> Path:
    """A Matroska file much longer than the probe's first range."""
    video = ffmpeg.input("testsrc=size=320x240:rate=25", f="lavfi", t=20)
    _run(ffmpeg.output(video, str(path), vcodec="libx264", pix_fmt="yuv420p"))
    return path


def live_webm(path: Path) -> Path:
    """A live WebM as browsers' MediaRecorder writes them: the Segment and every Cluster of
    unknown size (FFmpeg's `-live 1` leaves the clusters sized: their size fields are then
    overwritten in place with the all-ones "unknown" of the same width)."""
    video = ffmpeg.input("testsrc=size=160x120:rate=25", f="lavfi", t=1)
    _run(ffmpeg.output(video, str(path), vcodec="libvpx", deadline="realtime", live=1, f="webm"))
    data = bytearray(path.read_bytes())

    def vint(pos: int) -> tuple[int, int]:  # (value without the marker, width)
        width = 9 - data[pos].bit_length()
        raw = int.from_bytes(data[pos : pos + width], "big")
        return raw & ((1 << (7 * width)) - 1), width

    header_size, width = vint(4)
    pos = 4 + width + header_size + 4  # past the EBML header and the Segment's ID
    pos += vint(pos)[1]  # the Segment's (unknown) size
    while pos < len(data):
        id_width = 9 - data[pos].bit_length()
        ident = int.from_bytes(data[pos : pos + id_width], "big")
        at = pos + id_width
        size, width = vint(at)
        if ident == 0x1F43B675:  # Cluster: all ones after the length marker
            data[at : at + width] = ((1 << (7 * width + 1)) - 1).to_bytes(width, "big")
        pos = at + width + size
    path.write_bytes(bytes(data))
    return path


def rotated_mp4(source: Path, path: Path) -> Path:
    """The same stream with a display matrix turning it by 90 degrees (a phone's portrait)."""
    _run(ffmpeg.input(str(source)).output(str(path), c="copy", **{"metadata:s:v": "rotate=90"}))
    return path


def video_webm(path: Path, seconds: float = 1.0) -> Path:
    video = ffmpeg.input("testsrc=size=160x120:rate=25", f="lavfi", t=seconds)
    audio = ffmpeg.input("sine=frequency=440:sample_rate=48000", f="lavfi", t=seconds)
    _run(
        ffmpeg.output(
            video, audio, str(path), vcodec="libvpx", acodec="libopus", deadline="realtime"
        )
    )
    return path


def audio(path: Path, codec: str, seconds: float = 1.0, rate: int = 44100) -> Path:
    source = ffmpeg.input(f"sine=frequency=440:sample_rate={rate}", f="lavfi", t=seconds)
    _run(source.output(str(path), acodec=codec, ac=2))
    return path


def jpeg_with_orientation(orientation: int, size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(out, "PNG")
    return out.getvalue()


def dicom(
    series_uid: str = "1.2.826.0.1.3680043.8.498.1", instance: int = 3, description: str = "chest"
) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.9"
    ds.SeriesInstanceUID = series_uid
    ds.InstanceNumber = instance
    ds.Modality = "CT"
    ds.SeriesDescription = description
    ds.Rows, ds.Columns = 4, 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x00\x01" * 16
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def pdf() -> bytes:
    """A minimal valid one-page PDF, written by hand."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def ffprobe_json(path: Path) -> str:
    """What the real ffprobe prints for a local file (for parser tests)."""
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


# Containers the sniffer must accept, each written by ffmpeg as cameras and tools write it:
# name -> (ffmpeg muxer, video codec, audio codec or "", extra output options).
_CONTAINER_CLIPS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "clip.ts": ("mpegts", "libx264", "aac", {}),
    # AVCHD / Blu-ray: 192-byte packets, a 4-byte timestamp before each sync byte.
    "clip.m2ts": ("mpegts", "libx264", "ac3", {"mpegts_m2ts_mode": "1"}),
    "clip.mpg": ("vob", "mpeg2video", "mp2", {}),
    "clip.mov": ("mov", "libx264", "aac", {}),
    "clip-faststart.mov": ("mov", "libx264", "aac", {"movflags": "+faststart"}),
    "clip.avi": ("avi", "mpeg4", "mp3", {}),
    "clip.flv": ("flv", "flv", "", {}),
    "clip.mkv": ("matroska", "libx264", "flac", {}),
}
# name -> (ffmpeg muxer, audio codec, extra output options).
_CONTAINER_TONES: dict[str, tuple[str, str, dict[str, str]]] = {
    "tone-rf64.wav": ("wav", "pcm_s16le", {"rf64": "always"}),
    "tone.aiff": ("aiff", "pcm_s16be", {}),
    "tone.ogg": ("ogg", "libvorbis", {}),
}


def container_clip(
    path: Path, muxer: str, vcodec: str, acodec: str, options: dict[str, str]
) -> Path:
    video = ffmpeg.input("testsrc=size=160x120:rate=25", f="lavfi", t=1)
    streams = [video]
    codecs: dict[str, str] = {"vcodec": vcodec, "pix_fmt": "yuv420p"}
    if acodec:
        streams.append(ffmpeg.input("sine=frequency=440:sample_rate=48000", f="lavfi", t=1))
        codecs["acodec"] = acodec
    _run(ffmpeg.output(*streams, str(path), f=muxer, **codecs, **options))
    return path


def container_tone(path: Path, muxer: str, acodec: str, options: dict[str, str]) -> Path:
    source = ffmpeg.input("sine=frequency=440:sample_rate=44100", f="lavfi", t=1)
    _run(source.output(str(path), f=muxer, acodec=acodec, ac=2, **options))
    return path


class MediaSet:
    """The session's generated files, by name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        target = self.root / name
        if not target.exists():
            # Made aside and renamed: the folder is shared by parallel test processes, and
            # a file half written must never pass for a made one.
            partial = target.with_name(f".partial-{os.getpid()}-{name}")
            self._make(name, partial)
            os.replace(partial, target)
        return target

    def bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def _make(self, name: str, target: Path) -> None:  # noqa: C901, PLR0912, PLR0915
        if name == "clip.mp4":
            video_mp4(target)
        elif name == "clip-moov-end.mp4":
            video_mp4(target, faststart=False)
        elif name in ("noisy.mp4", "noisy-moov-end.mp4"):
            noisy_mp4(target, faststart="moov-end" not in name)
        elif name.startswith("gop"):  # gop10-bf2.mp4, gop7-bf3-moov-end.mp4
            gop, bframes = name.split(".", maxsplit=1)[0].split("-")[:2]
            gop_mp4(target, int(gop[3:]), int(bframes[2:]), "moov-end" not in name)
        elif name == "rotated.mp4":
            rotated_mp4(self.path("clip.mp4"), target)
        elif name.startswith("rate-"):  # rate-25.mp4, rate-ntsc-moov-end.mp4, rate-ntsc.mkv
            rate = name.removeprefix("rate-").split(".")[0].removesuffix("-moov-end")
            rate_mp4(target, rate, "moov-end" not in name, target.suffix[1:])
        elif name.startswith("vfr-edited"):  # vfr-edited.mp4, vfr-edited-moov-end.mp4, .mkv
            two_rate_video(target, "moov-end" not in name)
        elif name == "vfr-phone.mov":
            phone_mov(target)
        elif name == "bframes-delayed.mp4":
            delayed_mp4(self.path("rate-25.mp4"), target)
        elif name == "bframes-cut.mp4":
            cut_mp4(self.path("rate-25.mp4"), target)
        elif name == "one-frame.mp4":
            one_frame_mp4(target)
        elif name == "hour.mp4":
            hour_mp4(target)
        elif name == "long.mkv":
            long_mkv(target)
        elif name == "live.webm":
            live_webm(target)
        elif name == "clip.webm":
            video_webm(target)
        elif name == "tone.wav":
            audio(target, "pcm_s16le")
        elif name == "tone.mp3":
            audio(target, "libmp3lame")
        elif name == "tone.m4a":
            audio(target, "aac")
        elif name == "tone.flac":
            audio(target, "flac")
        elif name == "portrait.jpg":
            target.write_bytes(jpeg_with_orientation(6))
        elif name == "plain.png":
            target.write_bytes(png())
        elif name == "scan.dcm":
            target.write_bytes(dicom())
        elif name == "doc.pdf":
            target.write_bytes(pdf())
        elif name == "notes.txt":
            target.write_text("hello, labelling world\n", encoding="utf-8")
        elif name == "truncated.mp4":
            target.write_bytes(self.bytes("clip-moov-end.mp4")[:3000])
        elif name == "garbage.mp4":
            target.write_bytes(bytes(range(256)) * 40)
        elif name in _CONTAINER_CLIPS:
            container_clip(target, *_CONTAINER_CLIPS[name])
        elif name in _CONTAINER_TONES:
            container_tone(target, *_CONTAINER_TONES[name])
        elif name == "playlist.mp4":
            target.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", encoding="utf-8")
        else:
            raise KeyError(name)
