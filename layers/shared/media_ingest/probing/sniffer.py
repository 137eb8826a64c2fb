"""Media kind detection from content (magic bytes of the first range), checked against the name.

The extension never decides what a file is; a disagreement between the two is reported as
an error, and indirection formats (playlists, concat lists) are refused before any prober
sees them. Pure: takes bytes and a key, returns a `Detection` or raises `MediaError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from media_ingest.errors import ErrorCode, MediaError


class Family(StrEnum):
    """What the content can be before probing: audio/video containers hold either."""

    AV = "av"
    AUDIO = "audio"
    IMAGE = "image"
    DICOM = "dicom"
    PDF = "pdf"
    TEXT = "text"
    ARCHIVE = "archive"


@dataclass(frozen=True)
class Detection:
    family: Family
    container: str
    mime_type: str
    # The only ffprobe demuxer allowed to open this object (forced with -f).
    demuxer: str | None = None


# Extension -> family the name claims. Unknown extensions claim nothing.
_EXTENSION_FAMILY: dict[str, Family] = {
    **dict.fromkeys(
        ("mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "flv", "ogv", "3gp"),
        Family.AV,
    ),
    **dict.fromkeys(
        ("mp3", "wav", "flac", "aac", "m4a", "ogg", "oga", "opus", "wma"), Family.AUDIO
    ),
    **dict.fromkeys(
        ("jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff", "avif", "heic"), Family.IMAGE
    ),
    "dcm": Family.DICOM,
    "dicom": Family.DICOM,
    "pdf": Family.PDF,
    **dict.fromkeys(("txt", "csv", "json", "jsonl", "md", "xml", "html", "tsv"), Family.TEXT),
    **dict.fromkeys(("zip", "tar", "gz", "tgz"), Family.ARCHIVE),
}

_TEXT_MIME = {
    "csv": "text/csv",
    "json": "application/json",
    "jsonl": "application/jsonl",
    "md": "text/markdown",
    "xml": "application/xml",
    "html": "text/html",
    "tsv": "text/tab-separated-values",
}

_ISO_IMAGE_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}
_ISO_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"F4A "}
_INDIRECTION = (
    (re.compile(rb"^\s*#EXTM3U"), "an HLS/M3U playlist"),
    (re.compile(rb"^\s*ffconcat\s+version"), "an ffconcat list"),
    (re.compile(rb"^\s*(<\?xml[^>]*>\s*)?<MPD[\s>]"), "a DASH manifest"),
    (re.compile(rb"^\s*(<\?xml[^>]*>\s*)?<smil[\s>]", re.I), "a SMIL playlist"),
    (re.compile(rb"^\s*\[playlist\]", re.I), "a PLS playlist"),
    (re.compile(rb"^\s*<asx[\s>]", re.I), "an ASX playlist"),
    (re.compile(rb"^v=0\r?\n"), "an SDP session description"),
)


def extension(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def detect(head: bytes, key: str) -> Detection:
    """Decide what the object is from its first bytes, and check the name agrees."""
    for pattern, what in _INDIRECTION:
        if pattern.match(head[:1024]):
            raise MediaError(
                ErrorCode.INDIRECTION_REFUSED,
                f"content is {what}, which points at other resources; it is never opened",
            )
    found = _sniff(head, key)
    if found is None:
        raise MediaError(ErrorCode.UNSUPPORTED_FORMAT, "content matches no supported format")
    claimed = _EXTENSION_FAMILY.get(extension(key))
    if claimed is not None and not _compatible(claimed, found.family):
        raise MediaError(
            ErrorCode.KIND_MISMATCH,
            f"name says {claimed.value} (.{extension(key)}) but content is "
            f"{found.container} ({found.family.value})",
        )
    return found


def is_archive(head: bytes) -> bool:
    """Whether content (its first bytes) is an archive of any container, whatever its name."""
    found = _sniff(head, "")
    return found is not None and found.family is Family.ARCHIVE


def _compatible(claimed: Family, found: Family) -> bool:
    if claimed == found:
        return True
    # An audio container may hold video and the other way round; the probe decides.
    return {claimed, found} <= {Family.AV, Family.AUDIO}


def _sniff(head: bytes, key: str) -> Detection | None:
    for sniffer in (_sniff_iso, _sniff_riff, _sniff_fixed, _sniff_mpeg_audio, _sniff_text):
        found = sniffer(head, key)
        if found is not None:
            return found
    return None


def _sniff_iso(head: bytes, _key: str) -> Detection | None:
    if head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand in _ISO_IMAGE_BRANDS:
        return Detection(Family.IMAGE, "heif", _ISO_IMAGE_BRANDS[brand])
    if brand in _ISO_AUDIO_BRANDS:
        return Detection(Family.AV, "mp4", "audio/mp4", "mov")
    if brand == b"qt  ":
        return Detection(Family.AV, "mov", "video/quicktime", "mov")
    if brand.startswith(b"3g"):
        return Detection(Family.AV, "3gp", "video/3gpp", "mov")
    return Detection(Family.AV, "mp4", "video/mp4", "mov")


def _sniff_riff(head: bytes, _key: str) -> Detection | None:
    if head[:4] != b"RIFF":
        return None
    form = head[8:12]
    if form == b"AVI ":
        return Detection(Family.AV, "avi", "video/x-msvideo", "avi")
    if form == b"WAVE":
        return Detection(Family.AUDIO, "wav", "audio/wav", "wav")
    if form == b"WEBP":
        return Detection(Family.IMAGE, "webp", "image/webp")
    return None


_FIXED: tuple[tuple[int, bytes, Detection], ...] = (
    (0, b"\x1a\x45\xdf\xa3", Detection(Family.AV, "matroska", "video/x-matroska", "matroska")),
    (0, b"FLV\x01", Detection(Family.AV, "flv", "video/x-flv", "flv")),
    (0, b"OggS", Detection(Family.AV, "ogg", "audio/ogg", "ogg")),
    (0, b"fLaC", Detection(Family.AUDIO, "flac", "audio/flac", "flac")),
    (0, b"ID3", Detection(Family.AUDIO, "mp3", "audio/mpeg", "mp3")),
    (0, b"\xff\xd8\xff", Detection(Family.IMAGE, "jpeg", "image/jpeg")),
    (0, b"\x89PNG\r\n\x1a\n", Detection(Family.IMAGE, "png", "image/png")),
    (0, b"GIF87a", Detection(Family.IMAGE, "gif", "image/gif")),
    (0, b"GIF89a", Detection(Family.IMAGE, "gif", "image/gif")),
    (0, b"BM", Detection(Family.IMAGE, "bmp", "image/bmp")),
    (0, b"II*\x00", Detection(Family.IMAGE, "tiff", "image/tiff")),
    (0, b"MM\x00*", Detection(Family.IMAGE, "tiff", "image/tiff")),
    (128, b"DICM", Detection(Family.DICOM, "dicom", "application/dicom")),
    (0, b"%PDF-", Detection(Family.PDF, "pdf", "application/pdf")),
    (0, b"PK\x03\x04", Detection(Family.ARCHIVE, "zip", "application/zip")),
    (0, b"\x1f\x8b", Detection(Family.ARCHIVE, "gzip", "application/gzip")),
    (257, b"ustar", Detection(Family.ARCHIVE, "tar", "application/x-tar")),
    (0, b"7z\xbc\xaf\x27\x1c", Detection(Family.ARCHIVE, "7z", "application/x-7z-compressed")),
)


def _sniff_fixed(head: bytes, _key: str) -> Detection | None:
    for offset, magic, found in _FIXED:
        if head[offset : offset + len(magic)] == magic:
            if found.container == "matroska" and b"webm" in head[:64]:
                return Detection(Family.AV, "webm", "video/webm", "matroska")
            return found
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return Detection(Family.AV, "mpegts", "video/mp2t", "mpegts")
    return None


def _sniff_mpeg_audio(head: bytes, key: str) -> Detection | None:
    if len(head) < 2 or head[0] != 0xFF:
        return None
    if head[1] & 0xF6 == 0xF0:  # ADTS sync word, layer 0
        return Detection(Family.AUDIO, "aac", "audio/aac", "aac")
    if head[1] & 0xE0 == 0xE0 and extension(key) == "mp3":
        return Detection(Family.AUDIO, "mp3", "audio/mpeg", "mp3")
    return None


def _sniff_text(head: bytes, key: str) -> Detection | None:
    if not head or b"\x00" in head:
        return None
    sample = head[:4096]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the range is still text.
        if exc.start < len(sample) - 3:
            return None
    mime = _TEXT_MIME.get(extension(key), "text/plain")
    return Detection(Family.TEXT, "text", mime)
