"""The hostile and unusual corpus (issue 11): one case per file, each with the outcome the
stack must give it, derived from an independent reader before the stack ever sees it.

The oracles are not the stack's code: Debian's ffprobe (5.1, a different build from the
layer's 8.1) auto-detecting the format of the local file, Pillow reading the header, pydicom
reading the whole file, zipfile and tarfile listing the archive. A case whose premise the
oracle does not confirm fails to build (AssertionError): the corpus cannot drift into
testing what it does not claim. tests/integration/test_corpus.py drops every case through
the deployed stack with memory enforced; tests/unit/test_corpus.py checks the oracles.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from media_ingest.errors import ErrorCode
from tests.support import hostile
from tests.support.media import MediaSet, dicom, jpeg_with_orientation, pdf, png

SYSTEM_FFPROBE = "/usr/bin/ffprobe"
_SHOW = ("-show_format", "-show_streams")


@dataclass(frozen=True)
class Expect:
    """What the stack must make of one object (and, for an archive, of its members)."""

    outcome: str  # registered | failed | archive
    kind: str | None = None  # registered: the media kind
    codes: tuple[ErrorCode, ...] = ()  # failed: the code (alternatives where noted)
    size: tuple[int, int] | None = None  # registered image or video: displayed width, height
    # archive: member path -> its expectation (as a drop of its own)
    members: dict[str, Expect] = field(default_factory=dict)
    # archive: member name (as a failure record prints it) -> refusal code
    refused: dict[str, ErrorCode] = field(default_factory=dict)
    archive_code: ErrorCode | None = None  # archive refused whole


def registered(kind: str, size: tuple[int, int] | None = None) -> Expect:
    return Expect("registered", kind=kind, size=size)


def failed(*codes: ErrorCode) -> Expect:
    return Expect("failed", codes=codes)


@dataclass(frozen=True)
class Case:
    name: str  # the object's name under the corpus prefix (its extension included)
    group: str  # the class of input (memory, exceptions, sniffing, archives, ...)
    data: bytes
    expect: Expect
    premise: str  # what the independent reader said of it
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    sidecar: bytes | None = None  # uploaded first as `<name><SIDECAR_SUFFIX>`
    sse_c: bool = False  # uploaded with a customer-provided key
    existing: dict[str, bytes] = field(default_factory=dict)  # archive: member paths already there
    # registered: client-metadata fields that must be absent, or hold the stack's value
    forged: tuple[str, ...] = ()


# -- oracles --------------------------------------------------------------------------------
@cache
def _ffprobe_version() -> str:
    done = subprocess.run([SYSTEM_FFPROBE, "-version"], capture_output=True, text=True, check=True)
    return done.stdout.split()[2]


def ffprobe_local(data: bytes, suffix: str, forced: str | None = None) -> dict[str, Any] | None:
    """Debian's ffprobe on the bytes as a local file, format auto-detected (or `forced`);
    None if it fails."""
    demuxer = ["-f", forced] if forced else []
    with tempfile.NamedTemporaryFile(suffix=suffix) as file:
        file.write(data)
        file.flush()
        done = subprocess.run(
            [SYSTEM_FFPROBE, "-v", "error", *demuxer, "-of", "json", *_SHOW, file.name],
            capture_output=True,
            check=False,
            timeout=120,
        )
    if done.returncode != 0:
        return None
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _streams(probe: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        s
        for s in probe.get("streams", [])
        if s.get("codec_type") == kind and not (s.get("disposition") or {}).get("attached_pic")
    ]


def pillow_header(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """Pillow's format and size from the header alone (nothing decoded); None if unreadable."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = Image.open(io.BytesIO(data))
            return str(found.format), found.size
    except Exception:
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def pillow_error(data: bytes) -> str | None:
    """The type of what Pillow raises opening the bytes (None: it opens them)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data))
    except Exception as exc:
        return type(exc).__name__
    return None


def pillow_displayed(data: bytes) -> tuple[int, int]:
    """The size a viewer shows: Pillow decodes the (small) image and applies its EXIF."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as found:
        return ImageOps.exif_transpose(found).size


def pydicom_read(data: bytes) -> tuple[Any, str | None]:
    """pydicom's whole-file read (force: preamble or not) and the first identifier access:
    (dataset, None), or (None, the exception type it raised)."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            for keyword in ("SeriesInstanceUID", "Modality", "Rows", "Columns"):
                dataset.get(keyword)
    except Exception as exc:
        return None, type(exc).__name__
    return dataset, None


def _premise(condition: bool, message: str) -> str:
    assert condition, f"corpus premise not confirmed: {message}"
    return message


# -- case builders ----------------------------------------------------------------------------
def _av(name: str, group: str, data: bytes, kind: str) -> Case:
    probe = ffprobe_local(data, Path(name).suffix)
    assert probe is not None, f"{name}: ffprobe cannot read it"
    videos, audios = _streams(probe, "video"), _streams(probe, "audio")
    fmt = probe["format"]["format_name"]
    if kind == "video":
        video = videos[0]
        size = (int(video["width"]), int(video["height"]))
        premise = _premise(
            bool(videos), f"ffprobe {_ffprobe_version()}: {fmt}, {video['codec_name']} {size}"
        )
        return Case(name, group, data, registered("video", size), premise)
    premise = _premise(
        bool(audios) and not videos,
        f"ffprobe {_ffprobe_version()}: {fmt}, {audios[0]['codec_name'] if audios else '-'}",
    )
    return Case(name, group, data, registered("audio"), premise)


def _image(name: str, group: str, data: bytes, displayed: tuple[int, int] | None = None) -> Case:
    found = pillow_header(data)
    assert found is not None, f"{name}: Pillow cannot read the header"
    fmt, size = found
    shown = displayed or size
    return Case(name, group, data, registered("image", shown), f"Pillow: {fmt} {size[0]}x{size[1]}")


def _too_large(name: str, data: bytes) -> Case:
    found = pillow_header(data)
    assert found is not None, name
    (w, h) = found[1]
    premise = _premise(w * h > 1 << 30, f"Pillow: header claims {w}x{h} ({w * h:,} pixels)")
    return Case(name, "memory", data, failed(ErrorCode.IMAGE_TOO_LARGE), premise)


def _text(name: str, group: str, data: bytes, looks_like: str, demuxer: str | None) -> Case:
    """Text that starts like a binary format: Pillow cannot read it, and ffprobe forced to
    the demuxer its first bytes suggest (if one) finds no stream in it."""
    data.decode("utf-8")
    probe = ffprobe_local(data, ".dat", forced=demuxer) if demuxer else None
    media = probe is not None and bool(_streams(probe, "video") or _streams(probe, "audio"))
    forced = f", ffprobe -f {demuxer} finds no stream" if demuxer else ""
    premise = _premise(
        pillow_header(data) is None and not media,
        f"UTF-8 text that starts like {looks_like}; Pillow cannot read it{forced}",
    )
    return Case(name, group, data, registered("text"), premise)


def _dicom_ok(name: str, group: str, data: bytes) -> Case:
    dataset, error = pydicom_read(data)
    assert dataset is not None, f"{name}: pydicom raised {error}"
    premise = f"pydicom: series {dataset.get('SeriesInstanceUID')}, modality {dataset.Modality}"
    return Case(name, group, data, registered("dicom"), premise)


def _dicom_broken(name: str, data: bytes, raised: str, code: ErrorCode) -> Case:
    _, error = pydicom_read(data)
    premise = _premise(error == raised, f"pydicom raises {raised} (got {error})")
    return Case(name, "exceptions", data, failed(code), premise)


# Each build's DICOM files are series of their own: a stack groups DICOM files by series, and
# a series sealed by an earlier run of the corpus would refuse this run's (GROUP_SEALED).
_RUN = str(int.from_bytes(os.urandom(5), "big"))
_SERIES = {"large": 1, "private": 2, "bare": 3, "scan": 4, "zip": 5}


def series(name: str) -> str:
    return f"1.2.826.0.1.3680043.8.498.{_RUN}.{_SERIES[name]}"


# -- the corpus ---------------------------------------------------------------------------------
def corpus(media: MediaSet) -> list[Case]:
    """Every case (about 70), in a stable order. Built once per session (MediaSet caches the
    generated media on disk)."""
    cases = [
        *_memory_cases(media),
        *_exception_cases(),
        *_sniffing_cases(media),
        *_owner_cases(media),
        *_size_cases(),
        *_access_cases(),
        *_archive_cases(media),
    ]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def _memory_cases(media: MediaSet) -> list[Case]:
    bomb = hostile.png_1bit(32_000, 32_000)
    samples = hostile.declare_samples(media.bytes("clip.mp4"), 50_000_000)
    probe = ffprobe_local(samples, ".mp4")
    assert probe is not None
    declared = max(int(s.get("nb_frames") or 0) for s in probe["streams"])
    return [
        _image("png-1bit-32000.png", "memory", bomb),
        _too_large("png-1bit-40000.png", hostile.png_1bit(40_000, 40_000)),
        _too_large("bmp-100000.bmp", hostile.bmp_claiming(100_000, 100_000)),
        _too_large("gif-65535.gif", hostile.gif_claiming(65_535, 65_535)),
        _too_large("jpeg-65500.jpg", hostile.jpeg_claiming(65_500, 65_500)),
        # Refused before ffprobe by issue 16's index check; ffprobe's own limit bounds it too.
        Case(
            "mp4-50M-samples.mp4",
            "memory",
            samples,
            failed(ErrorCode.CORRUPT_MEDIA),
            _premise(
                declared >= 50_000_000,
                f"ffprobe: {len(samples):,} bytes declaring {declared:,} samples per track",
            ),
        ),
        _image("tiff-ifd-after-9mb.tif", "memory", hostile.tiff_ifd_at_end(2000, 1500)),
        _dicom_ok(
            "dicom-20mb-pixels.dcm",
            "memory",
            hostile.dicom_large(20 * 1024 * 1024, 0, series_uid=series("large")),
        ),
        _dicom_ok(
            "dicom-5mb-private-first.dcm",
            "memory",
            hostile.dicom_large(0, 5 * 1024 * 1024, series_uid=series("private")),
        ),
    ]


def _exception_cases() -> list[Case]:
    good = dicom()
    meta = hostile.dicom_file_meta(good)
    avif = hostile.image("AVIF", (64, 48))
    broken_avif = hostile.mutated(
        avif, avif.find(b"meta"), lambda data: pillow_error(data) == "RuntimeError"
    )
    assert broken_avif is not None, "no one-byte change of the AVIF makes Pillow raise"
    long_uid = hostile.dicom_with(
        meta, hostile.dicom_element(0x0020, 0x000E, b"UI", b"1." * 30_000)
    )
    huge_chunk = png()[:33] + struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"k\x00v" * 100
    return [
        _dicom_broken(
            "dicom-nested-3000.dcm",
            hostile.dicom_nested(meta, 3000),
            "RecursionError",
            ErrorCode.CORRUPT_MEDIA,
        ),
        _dicom_broken(
            "dicom-unknown-vr.dcm",
            hostile.dicom_with(meta, hostile.dicom_element(0x0008, 0x0060, b"ZZ", b"CT")),
            "NotImplementedError",
            ErrorCode.CORRUPT_MEDIA,
        ),
        _dicom_broken(
            "dicom-rows-3-bytes.dcm",
            hostile.dicom_with(meta, hostile.dicom_element(0x0028, 0x0010, b"US", b"\x01\x02\x03")),
            "BytesLengthException",
            ErrorCode.CORRUPT_MEDIA,
        ),
        Case(
            "dicom-uid-60kb.dcm",
            "exceptions",
            long_uid,
            failed(ErrorCode.CORRUPT_MEDIA),
            _premise(
                len(str(pydicom_read(long_uid)[0].SeriesInstanceUID)) == 60_000,
                "pydicom reads a 60,000-character SeriesInstanceUID (the standard allows 64)",
            ),
        ),
        Case(
            "avif-broken-item.avif",
            "exceptions",
            broken_avif,
            failed(ErrorCode.PARSER_ERROR, ErrorCode.CORRUPT_MEDIA),
            "Pillow raises RuntimeError opening it (one byte of a valid AVIF's meta changed)",
        ),
        Case(
            "png-2gb-chunk.png",
            "exceptions",
            huge_chunk,
            failed(ErrorCode.CORRUPT_MEDIA),
            _premise(
                pillow_header(huge_chunk) is None,
                "a tEXt chunk declaring 2 GB after IHDR: Pillow cannot read the header",
            ),
        ),
        Case(
            "garbage.bin",
            "exceptions",
            bytes(range(256)) * 8,
            failed(ErrorCode.UNSUPPORTED_FORMAT),
            _premise(
                pillow_header(bytes(range(256)) * 8) is None
                and ffprobe_local(bytes(range(256)) * 8, ".bin") is None,
                "not UTF-8; neither Pillow nor ffprobe reads it",
            ),
        ),
        Case("empty.mp4", "exceptions", b"", failed(ErrorCode.EMPTY_OBJECT), "0 bytes"),
        Case(
            "playlist.mp4",
            "exceptions",
            b"#EXTM3U\n#EXTINF:1,\nhttp://169.254.169.254/latest/meta-data/\nfile:///etc/passwd\n",
            failed(ErrorCode.INDIRECTION_REFUSED),
            "an HLS playlist naming the instance metadata service and a local file",
        ),
        Case(
            "png-truncated.png",
            "exceptions",
            png()[:30],
            failed(ErrorCode.CORRUPT_MEDIA),
            _premise(pillow_header(png()[:30]) is None, "Pillow cannot read the header"),
        ),
    ]


def _sniffing_cases(media: MediaSet) -> list[Case]:
    good = dicom(series_uid=series("bare"))
    meta_len = int.from_bytes(good[140:144], "little")
    bare = good[132:]  # file meta, then the dataset: no preamble, no DICM
    raw = good[144 + meta_len :]  # the dataset alone (explicit VR little endian)
    csv = b"BMI,weight,height\n22.5,70,1.76\n24.1,81,1.83\n"
    id3 = b"ID3,title\n1,intro\n"
    clip = media.bytes("clip.mp4")
    cases = [
        _av("camera.m2ts", "sniffing", media.bytes("clip.m2ts"), "video"),
        _av("stream.ts", "sniffing", media.bytes("clip.ts"), "video"),
        _av("dvd.mpg", "sniffing", media.bytes("clip.mpg"), "video"),
        _av(
            "old-free-first.mov", "sniffing", hostile.without_ftyp(media.bytes("clip.mov")), "video"
        ),
        _av(
            "old-moov-first.mov",
            "sniffing",
            hostile.moov_first_without_ftyp(media.bytes("clip-faststart.mov")),
            "video",
        ),
        _av("long.wav", "sniffing", media.bytes("tone-rf64.wav"), "audio"),
        _av("studio.aiff", "sniffing", media.bytes("tone.aiff"), "audio"),
        _dicom_ok("no-preamble.dcm", "sniffing", bare),
        _dicom_ok("dataset-only.dcm", "sniffing", raw),
        _text("bmi.csv", "sniffing", csv, "a BMP (BM)", None),
        _text("genes.txt", "sniffing", hostile.text_with_ts_syncs(), "MPEG-TS", "mpegts"),
        _text("id3.csv", "sniffing", id3, "an MP3 (ID3)", "mp3"),
        # Formats that already worked, so a fix for the others cannot break them.
        _av("clip.mp4", "sniffing", clip, "video"),
        _av("clip.webm", "sniffing", media.bytes("clip.webm"), "video"),
        _av("clip.mkv", "sniffing", media.bytes("clip.mkv"), "video"),
        _av("clip.avi", "sniffing", media.bytes("clip.avi"), "video"),
        _av("clip.flv", "sniffing", media.bytes("clip.flv"), "video"),
        _av("tone.mp3", "sniffing", media.bytes("tone.mp3"), "audio"),
        _av("tone.flac", "sniffing", media.bytes("tone.flac"), "audio"),
        _av("tone.ogg", "sniffing", media.bytes("tone.ogg"), "audio"),
        _av("tone.wav", "sniffing", media.bytes("tone.wav"), "audio"),
        _image("real.bmp", "sniffing", hostile.image("BMP")),
        _image("real.gif", "sniffing", hostile.image("GIF")),
        _image("real.webp", "sniffing", hostile.image("WEBP")),
        _image("real.avif", "sniffing", hostile.image("AVIF", (64, 48)), (64, 48)),
        _image(
            "portrait.jpg",
            "sniffing",
            jpeg_with_orientation(6, (64, 48)),
            pillow_displayed(jpeg_with_orientation(6, (64, 48))),
        ),
        _image(
            "portrait.png",
            "sniffing",
            hostile.png_with_exif(6, (40, 30)),
            pillow_displayed(hostile.png_with_exif(6, (40, 30))),
        ),
        _dicom_ok("scan.dcm", "sniffing", dicom(series_uid=series("scan"))),
        Case("doc.pdf", "sniffing", pdf(), registered("pdf"), "a PDF header (%PDF-1.4)"),
    ]
    return cases


def _owner_cases(media: MediaSet) -> list[Case]:
    forged_links = json.dumps(
        {"localizations": {"box": {"url": "https://evil.example/box.csv", "rows": 1}}}
    )
    forged = {
        "version_id": "forged-version",
        "audio_codec": "forged",
        "annotations": "forged",
        "media-ingest-annotations": forged_links,
        "media-ingest-source": "forged-archive-etag",
        "owner-note": "kept",
    }
    silent = _av("forged-fields.mp4", "owner", media.bytes("gop10-bf0.mp4"), "video")
    return [
        replace(
            silent,
            premise=silent.premise + " and no audio, uploaded with user metadata naming fields "
            "the stack writes and forged annotation links",
            metadata=forged,
            forged=("version_id", "audio_codec", "annotations"),
        ),
        Case(
            "forged-sidecar.png",
            "owner",
            png((41, 31)),
            registered("image", (41, 31)),
            "a PNG whose sidecar sets $encord, annotations, version_id, key and etag",
            sidecar=json.dumps(
                {
                    "$encord": {"keyframes": [0]},
                    "annotations": {"localizations": {}},
                    "version_id": "v-forged",
                    "key": "other/key.png",
                    "etag": "0" * 32,
                    "owner-note": "kept",
                }
            ).encode(),
            forged=("$encord", "annotations", "version_id", "key", "etag"),
        ),
    ]


def _size_cases() -> list[Case]:
    emoji = json.dumps({"notes": "\U0001f41f" * 50_000}, ensure_ascii=False).encode()
    escaped = len(json.dumps(json.loads(emoji)))
    deep = b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}"
    return [
        Case(
            "emoji-sidecar.png",
            "sizes",
            png((42, 32)),
            failed(ErrorCode.CLIENT_METADATA_TOO_LARGE),
            _premise(
                len(emoji) < 256 * 1024 < escaped,
                f"sidecar of {len(emoji):,} bytes of UTF-8, {escaped:,} as escaped JSON",
            ),
            sidecar=emoji,
        ),
        Case(
            "deep-sidecar.png",
            "sizes",
            png((43, 33)),
            failed(ErrorCode.INVALID_SIDECAR),
            "a sidecar of 2,000 nested arrays (valid JSON)",
            sidecar=deep,
        ),
    ]


def _access_cases() -> list[Case]:
    return [
        Case(
            "customer-key.png",
            "access",
            png((44, 34)),
            failed(ErrorCode.ACCESS_DENIED),
            "uploaded with SSE-C: S3 answers 400 to any read without the uploader's key",
            sse_c=True,
        ),
    ]


def _archive_cases(media: MediaSet) -> list[Case]:
    still = png((45, 35))
    other = png((46, 36))
    clip = media.bytes("clip.mp4")
    cases = []

    data = hostile.zip_method(hostile.zip_of([("ok.png", still), ("big.png", other)]), "big.png", 9)
    cases.append(
        _archive(
            "deflate64.zip",
            data,
            says="zipfile raises NotImplementedError opening big.png (method 9, Deflate64)",
            members={"ok.png": registered("image", (45, 35))},
            refused={"big.png": ErrorCode.ARCHIVE_METHOD_UNSUPPORTED},
            check=lambda: _zip_open_raises(data, "big.png", NotImplementedError),
        )
    )
    data = hostile.zip_method(hostile.zip_of([("ok.png", still), ("z.png", other)]), "z.png", 93)
    cases.append(
        _archive(
            "zstd.zip",
            data,
            says="zipfile raises NotImplementedError opening z.png (method 93, Zstandard)",
            members={"ok.png": registered("image", (45, 35))},
            refused={"z.png": ErrorCode.ARCHIVE_METHOD_UNSUPPORTED},
            check=lambda: _zip_open_raises(data, "z.png", NotImplementedError),
        )
    )
    data = hostile.zip_bad_utf8_name([("ok.png", still), ("caf\u00e9.png", other)], "caf\u00e9.png")
    cases.append(
        _archive(
            "bad-utf8-flag.zip",
            data,
            says="zipfile raises UnicodeDecodeError listing it (a name flagged UTF-8 is Latin-1)",
            archive_code=ErrorCode.ARCHIVE_CORRUPT,
            check=lambda: _zip_list_raises(data, UnicodeDecodeError),
        )
    )
    data = hostile.tar_of(
        [("ok.png", still), ("caf\u00e9.png", other)], encoding="latin-1", tar_format=1
    )
    cases.append(
        _archive(
            "latin1.tar",
            data,
            says="tarfile decodes the Latin-1 name caf\\xe9.png with a surrogate",
            members={"ok.png": registered("image", (45, 35))},
            refused={"caf\\xe9.png": ErrorCode.ARCHIVE_PATH_REFUSED},
            check=lambda: "caf\udce9.png" in _tar_names(data),
        )
    )
    data = hostile.sparse_tar_gz("disk.img", 300 * 1024 * 1024)
    cases.append(
        _archive(
            "sparse.tar.gz",
            data,
            says="tarfile extracts 300 MB from under 200 bytes (a GNU sparse member)",
            archive_code=ErrorCode.ARCHIVE_BOMB,
            check=lambda: _tar_member_bytes(data) == 300 * 1024 * 1024 and len(data) < 200,
        )
    )
    data = hostile.zip_of([("dup.png", still), ("dup.png", other), ("ok.mp4", clip)])
    cases.append(
        _archive(
            "duplicates.zip",
            data,
            says="zipfile lists dup.png twice",
            members={"dup.png": registered("image", (45, 35)), "ok.mp4": registered("video")},
            refused={"dup.png": ErrorCode.ARCHIVE_DUPLICATE_NAME},
            check=lambda: _zip_names(data).count("dup.png") == 2,
        )
    )
    data = hostile.tar_of([("a/x.png", still), ("a/./x.png", other)], mode="w:gz")
    cases.append(
        _archive(
            "duplicates.tar.gz",
            data,
            says="tarfile lists a/x.png and a/./x.png (one path)",
            members={"a/x.png": registered("image", (45, 35))},
            refused={"a/./x.png": ErrorCode.ARCHIVE_DUPLICATE_NAME},
            check=lambda: _tar_names(data) == ["a/x.png", "a/./x.png"],
        )
    )
    data = hostile.zip_of([("ok.png", still), ("clip\u202egnp.exe", other), ("c1\x85.png", other)])
    cases.append(
        _archive(
            "names.zip",
            data,
            says="zipfile lists a name holding U+202E and one holding U+0085",
            members={"ok.png": registered("image", (45, 35))},
            refused={
                "clip\\u202egnp.exe": ErrorCode.ARCHIVE_PATH_REFUSED,
                "c1\\x85.png": ErrorCode.ARCHIVE_PATH_REFUSED,
            },
            check=lambda: "clip\u202egnp.exe" in _zip_names(data),
        )
    )
    data = hostile.zip_of([("taken.png", other), ("new.png", still)])
    cases.append(
        _archive(
            "overwrite.zip",
            data,
            says="zipfile lists taken.png, whose key already holds the owner's file",
            members={"new.png": registered("image", (45, 35))},
            refused={"taken.png": ErrorCode.ARCHIVE_MEMBER_EXISTS},
            check=lambda: _zip_names(data) == ["taken.png", "new.png"],
            existing={"taken.png": b"the owner's own file\n"},
        )
    )
    data = hostile.zeros_zip(200 * 1024 * 1024)
    cases.append(
        _archive(
            "bomb.zip",
            data,
            says="zipfile: zeros.bin declares 200 MB, over 500 times the archive's size",
            archive_code=ErrorCode.ARCHIVE_BOMB,
            check=lambda: _zip_sizes(data)["zeros.bin"] > 500 * len(data),
        )
    )
    data = hostile.zip_with_link(
        [("ok.png", still)], hostile.zip_symlink("link.png", "/etc/passwd")
    )
    cases.append(
        _archive(
            "symlink.zip",
            data,
            says="zipfile: link.png is a Unix symbolic link to /etc/passwd",
            members={"ok.png": registered("image", (45, 35))},
            refused={"link.png": ErrorCode.ARCHIVE_LINK_REFUSED},
            check=lambda: "link.png" in _zip_names(data),
        )
    )
    inner = hostile.zip_of([("x.png", still)])
    data = hostile.tar_of([("ok.png", still), ("inner.bin", inner)], mode="w:gz")
    cases.append(
        _archive(
            "nested.tgz",
            data,
            says="tarfile: inner.bin is a zip archive",
            members={"ok.png": registered("image", (45, 35))},
            refused={"inner.bin": ErrorCode.ARCHIVE_NESTED},
            check=lambda: _tar_names(data) == ["ok.png", "inner.bin"],
        )
    )
    whole = hostile.tar_of([("ok.png", still), ("clip.mp4", clip)], mode="w:gz")
    data = whole[: len(whole) // 2]
    cases.append(
        _archive(
            "truncated.tar.gz",
            data,
            says="tarfile fails to read it to the end",
            archive_code=ErrorCode.ARCHIVE_CORRUPT,
            check=lambda: _tar_fails(data),
        )
    )
    data = hostile.zip_of(
        [
            ("reef/clip.mp4", clip),
            ("reef/still.png", still),
            ("reef/scan.dcm", dicom(series_uid=series("zip"))),
        ]
    )
    cases.append(
        _archive(
            "good.zip",
            data,
            says="zipfile lists a video, an image and a DICOM file",
            members={
                "reef/clip.mp4": registered("video"),
                "reef/still.png": registered("image", (45, 35)),
                "reef/scan.dcm": registered("dicom"),
            },
            check=lambda: _zip_names(data) == ["reef/clip.mp4", "reef/still.png", "reef/scan.dcm"],
        )
    )
    return cases


def _archive(
    name: str,
    data: bytes,
    *,
    check: Callable[[], bool],
    says: str,
    members: dict[str, Expect] | None = None,
    refused: dict[str, ErrorCode] | None = None,
    archive_code: ErrorCode | None = None,
    existing: dict[str, bytes] | None = None,
) -> Case:
    premise = _premise(check(), says)
    expect = Expect(
        "archive", members=members or {}, refused=refused or {}, archive_code=archive_code
    )
    return Case(name, "archives", data, expect, premise, existing=existing or {})


def _zip_names(data: bytes) -> list[str]:
    import zipfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [info.filename for info in zipfile.ZipFile(io.BytesIO(data)).infolist()]


def _zip_sizes(data: bytes) -> dict[str, int]:
    import zipfile

    return {i.filename: i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}


def _zip_open_raises(data: bytes, name: str, error: type[Exception]) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(name) as member:
            member.read()
    except error:
        return True
    return False


def _zip_list_raises(data: bytes, error: type[Exception]) -> bool:
    import zipfile

    try:
        zipfile.ZipFile(io.BytesIO(data))
    except error:
        return True
    return False


def _tar_names(data: bytes) -> list[str]:
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getnames()


def _tar_member_bytes(data: bytes) -> int:
    import tarfile

    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as archive:
        for info in archive:
            member = archive.extractfile(info)
            assert member is not None
            while chunk := member.read(1024 * 1024):
                total += len(chunk)
    return total


def _tar_fails(data: bytes) -> bool:
    try:
        _tar_member_bytes(data)
    except Exception:
        return True
    return False


def ffprobe_available() -> bool:
    return shutil.which(SYSTEM_FFPROBE) is not None


# -- judging what the stack made of the corpus ----------------------------------------------
def member_prefix(key: str) -> str:
    from media_ingest.archives.rules import prefix_of

    return prefix_of(key) + "/"


def judge(cases: list[Case], prefix: str, outcomes: list[Any], failures: list[Any]) -> list[str]:
    """Every way the stack's outcomes (records.Outcome) and failure records (FailureRecord)
    for the corpus dropped under `prefix` differ from the cases' expectations; [] when none.

    Each object must have exactly one outcome; an archive's refused members are failure
    records of the archive naming them; members never land outside their archive's prefix."""
    by_key: dict[str, list[Any]] = {}
    for outcome in outcomes:
        if outcome.key.startswith(prefix):
            by_key.setdefault(outcome.key, []).append(outcome)
    problems: list[str] = []
    expected_keys: set[str] = set()
    for case in cases:
        key = prefix + case.name
        expected_keys.add(key)
        if case.sidecar is not None:
            expected_keys.add(key + SIDECAR_SUFFIX)
        if case.expect.outcome == "archive":
            expected_keys |= {member_prefix(key) + path for path in case.existing}
            expected_keys |= {member_prefix(key) + path for path in case.expect.members}
            problems += _judge_archive(case, key, by_key, failures)
        else:
            problems += _judge_one(case, key, case.expect, by_key.get(key, []))
    problems += [f"{k}: an outcome nobody expected" for k in sorted(set(by_key) - expected_keys)]
    return problems


# What the corpus's stacks name sidecars (tests/integration/conftest.py uses the same).
SIDECAR_SUFFIX = ".meta.json"


def _judge_one(case: Case, key: str, expect: Expect, found: list[Any]) -> list[str]:
    if len(found) != 1:
        return [f"{key}: {len(found)} outcomes ({[o.kind.value for o in found]}), not one"]
    outcome = found[0]
    kind = outcome.kind.value
    code = outcome.failure.error_code if outcome.failure else None
    if kind == "failed" == expect.outcome:
        return [] if code in expect.codes else [f"{key}: failed with {code}, not {expect.codes}"]
    if kind != expect.outcome:
        detail = code.value if code else outcome.detail
        return [f"{key}: {kind} ({detail}), expected {expect.outcome} {expect.codes or ''}"]
    return _judge_item(case, key, expect, outcome.item) if kind == "registered" else []


def _judge_item(case: Case, key: str, expect: Expect, item: Any) -> list[str]:
    problems = []
    if item.kind.value != expect.kind:
        problems.append(f"{key}: registered as {item.kind.value}, expected {expect.kind}")
    shown = item.media.image or item.media.video
    if expect.size is not None and (shown is None or (shown.width, shown.height) != expect.size):
        got = (shown.width, shown.height) if shown else None
        problems.append(f"{key}: size {got}, expected {expect.size}")
    for name in case.forged:
        value = item.media.client_metadata.get(name)
        if value is not None:
            problems.append(f"{key}: owner's {name}={value!r} kept in its client metadata")
    if case.forged and item.media.annotations is not None:
        problems.append(f"{key}: forged annotation links accepted")
    return problems


def _judge_archive(
    case: Case, key: str, by_key: dict[str, list[Any]], failures: list[Any]
) -> list[str]:
    problems = _judge_one(case, key, Expect("archive"), by_key.get(key, []))
    records = [f for f in failures if f.key == key]
    whole = [f for f in records if "#" not in f.event_id]
    members = {f.message.split(": ", 1)[0]: f.error_code for f in records if "#" in f.event_id}
    expect = case.expect
    if expect.archive_code is not None:
        if [f.error_code for f in whole] != [expect.archive_code]:
            problems.append(
                f"{key}: archive failures {[f.error_code for f in whole]}, "
                f"expected [{expect.archive_code}]"
            )
    elif whole:
        problems.append(f"{key}: refused whole ({whole[0].error_code}: {whole[0].message})")
    if members != expect.refused:
        problems.append(f"{key}: members refused {members}, expected {expect.refused}")
    for path, member in expect.members.items():
        member_key = member_prefix(key) + path
        problems += _judge_one(case, member_key, member, by_key.get(member_key, []))
    return problems
