"""Real media generated for the tests (ffmpeg through ffmpeg-python, Pillow, pydicom).

Generated once per session into a cache folder; nothing binary is checked in.
"""

from __future__ import annotations

import io
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
            self._make(name, target)
        return target

    def bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def _make(self, name: str, target: Path) -> None:  # noqa: C901, PLR0912
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
