"""Media for the benchmarks, generated with ffmpeg into the cache folder, and container layouts.

Large files are cheap to make: one short clip (10 s, 720p, ~8 Mbit/s, x264 ultrafast, AAC)
is encoded once, then stream-copied N times with the concat demuxer (`-c copy`): a 1 GB MP4
is 92 copies, ~15 minutes of video, written at disk speed with no re-encoding. Each file
is written under a temporary name and renamed, so an interrupted run leaves no half file.

`layout()` walks a file's top-level structure (MP4 boxes, Matroska elements) to give the
physical limit of a probe: the container's index (moov; SeekHead + Cues) and all of its
metadata (every top-level element that is not media data or padding).
"""

from __future__ import annotations

import io
import math
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bench import log

GENERATION = "v1"  # bump when a recipe changes: cached files are then made again
# ffmpeg arguments written as the command lines they are.
CLIP_RECIPE = shlex.split(
    "-f lavfi -i testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t "
    "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 "
    "-c:v libx264 -preset ultrafast -b:v 8M -maxrate 8M -bufsize 16M -g 60 -pix_fmt yuv420p "
    "-c:a aac -b:a 128k -movflags +faststart -f mp4"
)
TINY_RECIPE = shlex.split(
    "-f lavfi -i testsrc=size=128x96:rate=25 -f lavfi -i sine=frequency=660:sample_rate=44100 "
    "-c:v libx264 -preset ultrafast -force_key_frames expr:gte(t,n_forced*1) -pix_fmt yuv420p "
    "-c:a aac -f segment -segment_time 1 -reset_timestamps 1 -segment_format mp4 "
    "-segment_format_options movflags=+faststart"
)
TINY_POOL = 512
PHOTO_RECIPE = shlex.split(
    "-f lavfi -i testsrc2=size=4000x3000,noise=alls=20:allf=t -frames:v 1 -q:v 2 -f image2"
)


@dataclass(frozen=True)
class MediaFile:
    path: Path
    label: str  # e.g. "MP4 100 MB faststart"
    demuxer: str  # the ffprobe demuxer media_ingest picks for it: "mov" or "matroska"
    layout: str  # "faststart", "moov at end", "cues at end"

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True)
class Layout:
    index_bytes: int  # moov box / Matroska SeekHead + Cues
    metadata_bytes: int  # every top-level box/element that is not media data or padding
    index_at_start: bool


def ffmpeg(*args: str) -> None:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise RuntimeError("ffmpeg is not installed (make setup installs it)")
    subprocess.run([binary, "-v", "error", "-nostdin", "-y", *args], check=True, timeout=900)


class MediaCache:
    """Generated media under `root`, made once and reused by later runs."""

    def __init__(self, root: Path) -> None:
        self.root = root / f"media-{GENERATION}"
        self.root.mkdir(parents=True, exist_ok=True)

    def _make(self, name: str, recipe: list[str]) -> Path:
        """Run ffmpeg with `recipe` (its output path last) unless the file exists."""
        final = self.root / name
        if not final.exists():
            partial = final.with_name(f".partial-{name}")
            log(f"generating {name}")
            ffmpeg(*recipe, str(partial))
            partial.rename(final)
        return final

    def clip(self) -> Path:
        """10 s of 1280x720 30 fps H.264 (noisy, so ~8 Mbit/s is really spent) + AAC."""
        return self._make("clip-720p-10s.mp4", CLIP_RECIPE)

    def photo(self) -> Path:
        """A 12 MP JPEG (4000x3000, noisy: a few MB, as a camera writes)."""
        return self._make("photo-12mp.jpg", PHOTO_RECIPE)

    def _copies(self, target_bytes: int) -> tuple[Path, int]:
        """The concat list that repeats the clip enough times to reach at least target_bytes."""
        clip = self.clip()
        copies = max(1, math.ceil(target_bytes / clip.stat().st_size))
        listing = self.root / f"concat-{copies}.txt"
        listing.write_text(f"file '{clip.name}'\n" * copies)
        return listing, copies

    def mp4(self, target_bytes: int, faststart: bool) -> MediaFile:
        listing, copies = self._copies(target_bytes)
        layout = "faststart" if faststart else "moov at end"
        flags = ["-movflags", "+faststart"] if faststart else []
        name = f"mp4-{copies}x-{'faststart' if faststart else 'moov-end'}.mp4"
        path = self._make(
            name,
            ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", *flags, "-f", "mp4"],
        )
        return MediaFile(path, f"MP4 {_size_label(path)} {layout}", "mov", layout)

    def mkv(self, target_bytes: int) -> MediaFile:
        listing, copies = self._copies(target_bytes)
        path = self._make(
            f"mkv-{copies}x.mkv",
            ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", "-f", "matroska"],
        )
        return MediaFile(path, f"MKV {_size_label(path)} cues at end", "matroska", "cues at end")

    def tiny_videos(self, count: int) -> list[Path]:
        """`count` distinct ~1 s 128x96 MP4s (faststart), from a pool cut out of one encode by
        ffmpeg's segment muxer (the pool holds 512, or `count` if more are wanted)."""
        pool = max(count, TINY_POOL)
        folder = self.root / f"tiny-{pool}"
        if not folder.exists():
            log(f"generating {pool} tiny videos")
            partial = self.root / f".partial-tiny-{pool}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            ffmpeg(*TINY_RECIPE, "-t", str(pool), str(partial / "tiny-%05d.mp4"))
            partial.rename(folder)
        videos = sorted(folder.glob("tiny-*.mp4"))
        if len(videos) < count:
            raise RuntimeError(f"ffmpeg cut {len(videos)} tiny videos, {count} were wanted")
        return videos[:count]


def tiny_png(number: int) -> bytes:
    """A distinct small PNG (64x48, its colours derived from `number`)."""
    from PIL import Image  # noqa: PLC0415 - only the API-call benchmarks need Pillow

    image = Image.new("RGB", (64, 48), (number * 37 % 256, number * 91 % 256, number % 256))
    image.putpixel((number % 64, number // 64 % 48), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _size_label(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


# ---- container layouts --------------------------------------------------------------------


def layout(file: MediaFile) -> Layout:
    return mp4_layout(file.path) if file.demuxer == "mov" else mkv_layout(file.path)


def mp4_layout(path: Path) -> Layout:
    """From the top-level boxes: moov is the index; everything but mdat payload and free."""
    size = path.stat().st_size
    index = metadata = 0
    moov_offset = mdat_offset = None
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4]), header[4:8]
            header_size = 8
            if box_size == 1:
                box_size, header_size = int.from_bytes(header[8:16]), 16
            elif box_size == 0:
                box_size = size - offset
            if kind == b"moov":
                index += box_size
                moov_offset = offset if moov_offset is None else moov_offset
            if kind == b"mdat":
                metadata += header_size
                mdat_offset = offset if mdat_offset is None else mdat_offset
            elif kind not in (b"free", b"skip"):
                metadata += box_size
            offset += max(box_size, header_size)
    at_start = moov_offset is not None and (mdat_offset is None or moov_offset < mdat_offset)
    return Layout(index, metadata, at_start)


_EBML_HEADER, _SEGMENT = 0x1A45DFA3, 0x18538067
_SEEKHEAD, _CUES, _CLUSTER, _VOID = 0x114D9B74, 0x1C53BB6B, 0x1F43B675, 0xEC


def mkv_layout(path: Path) -> Layout:
    """From the Segment's children: SeekHead + Cues are the index; all but Clusters and Void."""
    size = path.stat().st_size
    index = metadata = 0
    cues_offset: int | None = None
    cluster_offset: int | None = None
    with path.open("rb") as f:
        element, data_size, header = _ebml_element(f)
        if element != _EBML_HEADER or data_size is None:
            raise ValueError(f"{path.name} is not a Matroska file")
        metadata += header + data_size
        f.seek(header + data_size)
        element, segment_size, header = _ebml_element(f)
        if element != _SEGMENT:
            raise ValueError(f"{path.name}: no Segment after the EBML header")
        metadata += header
        start = f.tell()
        end = size if segment_size is None else min(size, start + segment_size)
        offset = start
        while offset < end:
            f.seek(offset)
            element, data_size, header = _ebml_element(f)
            total = header + (data_size if data_size is not None else end - offset - header)
            if element == _CLUSTER:
                cluster_offset = offset if cluster_offset is None else cluster_offset
            elif element != _VOID:
                metadata += total
            if element in (_SEEKHEAD, _CUES):
                index += total
            if element == _CUES:
                cues_offset = offset
            offset += total
    at_start = cues_offset is not None and (cluster_offset is None or cues_offset < cluster_offset)
    return Layout(index, metadata, at_start)


def _ebml_element(f: BinaryIO) -> tuple[int, int | None, int]:
    """(element id with its marker bits, data size or None if unknown, header length)."""
    first = f.read(1)[0]
    id_length = 8 - first.bit_length() + 1
    element = int.from_bytes(bytes([first]) + f.read(id_length - 1))
    first = f.read(1)[0]
    size_length = 8 - first.bit_length() + 1
    raw = int.from_bytes(bytes([first & (0xFF >> size_length)]) + f.read(size_length - 1))
    unknown = raw == (1 << (7 * size_length)) - 1
    return element, None if unknown else raw, id_length + size_length
