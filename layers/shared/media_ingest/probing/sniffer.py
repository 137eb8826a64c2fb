"""Media kind detection from content (magic bytes of the first range), checked against the name.

The extension never decides what a file is; a disagreement between the two is reported as
an error, and indirection formats (playlists, concat lists) are refused before any prober
sees them. Every accepted container names exactly one ffprobe demuxer (forced with -f).
Magic numbers of two or three bytes are confirmed by the structure after them (a BMP's DIB
header size, MPEG-TS sync bytes packet after packet), so text that happens to start with
them (`BMI,weight` in a CSV; a `G` at bytes 0 and 188) stays text. Pure: takes bytes and a
key, returns a `Detection` or raises `MediaError`.
"""

from __future__ import annotations

import re
import struct
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
        (
            *("mp4", "m4v", "mov", "qt", "mkv", "webm", "avi", "ts", "mts", "m2ts", "m2t"),
            *("flv", "ogv", "3gp", "mpg", "mpeg", "vob", "m2p", "ps"),
        ),
        Family.AV,
    ),
    **dict.fromkeys(
        (
            *("mp3", "wav", "flac", "aac", "m4a", "ogg", "oga", "opus", "wma"),
            *("rf64", "bwf", "aif", "aiff", "aifc"),
        ),
        Family.AUDIO,
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
    for sniffer in (
        _sniff_iso,
        _sniff_riff,
        _sniff_fixed,
        _sniff_quicktime,
        _sniff_mpeg_streams,
        _sniff_bare_dicom,
        _sniff_mpeg_audio,
        _sniff_text,
    ):
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
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Detection(Family.AUDIO, "aiff", "audio/aiff", "aiff")
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        # WAV past 4 GB (EBU RF64, ITU BW64): ffprobe's wav demuxer reads both.
        return Detection(Family.AUDIO, "wav", "audio/wav", "wav")
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
    (0, b"OggS\x00", Detection(Family.AV, "ogg", "audio/ogg", "ogg")),
    (0, b"fLaC", Detection(Family.AUDIO, "flac", "audio/flac", "flac")),
    (0, b"\xff\xd8\xff", Detection(Family.IMAGE, "jpeg", "image/jpeg")),
    (0, b"\x89PNG\r\n\x1a\n", Detection(Family.IMAGE, "png", "image/png")),
    (0, b"GIF87a", Detection(Family.IMAGE, "gif", "image/gif")),
    (0, b"GIF89a", Detection(Family.IMAGE, "gif", "image/gif")),
    (0, b"II*\x00", Detection(Family.IMAGE, "tiff", "image/tiff")),
    (0, b"MM\x00*", Detection(Family.IMAGE, "tiff", "image/tiff")),
    (128, b"DICM", Detection(Family.DICOM, "dicom", "application/dicom")),
    (0, b"%PDF-", Detection(Family.PDF, "pdf", "application/pdf")),
    (0, b"PK\x03\x04", Detection(Family.ARCHIVE, "zip", "application/zip")),
    (0, b"\x1f\x8b\x08", Detection(Family.ARCHIVE, "gzip", "application/gzip")),
    (257, b"ustar", Detection(Family.ARCHIVE, "tar", "application/x-tar")),
    (0, b"7z\xbc\xaf\x27\x1c", Detection(Family.ARCHIVE, "7z", "application/x-7z-compressed")),
)


# The size of a BMP's DIB header (BITMAPCOREHEADER ... BITMAPV5HEADER): what makes `BM`
# at byte 0 a bitmap rather than text (`BMI,weight,...`).
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def _sniff_fixed(head: bytes, _key: str) -> Detection | None:
    for offset, magic, found in _FIXED:
        if head[offset : offset + len(magic)] == magic:
            if found.container == "matroska" and b"webm" in head[:64]:
                return Detection(Family.AV, "webm", "video/webm", "matroska")
            return found
    if head[:3] == b"ID3" and len(head) >= 10 and head[3] in (2, 3, 4) and head[4] != 0xFF:
        return Detection(Family.AUDIO, "mp3", "audio/mpeg", "mp3")
    if head[:2] == b"BM" and len(head) >= 18 and _u32le(head, 14) in _BMP_DIB_SIZES:
        return Detection(Family.IMAGE, "bmp", "image/bmp")
    return None


# Top-level atoms a QuickTime file may start with when it has no `ftyp` (files written
# before ISO BMFF existed, and some cameras and editors still): `wide` and `free` pad before
# `mdat`, `pnot` is a preview.
_QT_FIRST = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"junk"}
_QT_TOP = _QT_FIRST | {b"ftyp", b"uuid", b"PICT", b"meta"}
_QT_MOOV_CHILDREN = {b"mvhd", b"cmov", b"prfl", b"trak", b"udta", b"iods", b"meta"}


def _sniff_quicktime(head: bytes, _key: str) -> Detection | None:
    """A QuickTime movie without `ftyp`: a chain of known top-level atoms from byte 0."""
    if head[4:8] not in _QT_FIRST:
        return None
    pos = 0
    while pos + 8 <= len(head):
        size, kind = _u32be(head, pos), head[pos + 4 : pos + 8]
        if kind not in _QT_TOP:
            return None
        if kind == b"moov" and head[pos + 12 : pos + 16] not in _QT_MOOV_CHILDREN:
            return None
        if kind in (b"moov", b"mdat") or size == 0:  # 0: the atom runs to the end
            break
        if size == 1:  # a 64-bit size follows
            size = int.from_bytes(head[pos + 8 : pos + 16], "big")
        if size < 8:
            return None
        pos += size
    return Detection(Family.AV, "mov", "video/quicktime", "mov")


# MPEG-TS packets: 188 bytes; 192 with a 4-byte timestamp first (Blu-ray and AVCHD camera
# .MTS/.M2TS); 204 with Reed-Solomon bytes last (DVB). ffprobe's mpegts demuxer finds which.
_TS_LAYOUTS = ((188, 0), (192, 4), (204, 0))
_TS_SYNCS = 5


def _sniff_mpeg_streams(head: bytes, _key: str) -> Detection | None:
    for packet, offset in _TS_LAYOUTS:
        count = min(_TS_SYNCS, (len(head) - offset) // packet)
        if count >= 3 and all(head[offset + i * packet] == 0x47 for i in range(count)):
            return Detection(Family.AV, "mpegts", "video/mp2t", "mpegts")
    # An MPEG program stream (DVD .VOB, .MPG): a pack header, MPEG-2 ('01' marker bits)
    # or MPEG-1 ('0010').
    if (
        head[:4] == b"\x00\x00\x01\xba"
        and len(head) > 4
        and (head[4] & 0xC0 == 0x40 or head[4] & 0xF0 == 0x20)
    ):
        return Detection(Family.AV, "mpeg", "video/mpeg", "mpeg")
    return None


# Value representations whose explicit-VR element header has a 4-byte length.
_DICOM_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN"}
_DICOM_LONG_VRS |= {b"UR", b"UT", b"UV"}
_DICOM_VR = re.compile(rb"[A-Z]{2}")


def _sniff_bare_dicom(head: bytes, _key: str) -> Detection | None:
    """DICOM without its 128-byte preamble and `DICM`: the file starts with an element of
    the meta (0002) or identifying (0008) group, little endian, explicit or implicit VR; the
    second element must follow in the same group, with a higher tag."""
    tags: list[tuple[int, int]] = []
    pos = 0
    for _ in range(2):
        if pos + 8 > len(head):
            return None
        group, element = struct.unpack_from("<HH", head, pos)
        if group not in (0x0002, 0x0008) or (tags and (group, element) <= tags[-1]):
            return None
        tags.append((group, element))
        vr = head[pos + 4 : pos + 6]
        if _DICOM_VR.fullmatch(vr) and vr in _DICOM_LONG_VRS:
            pos += 12 + _u32le(head, pos + 8)
        elif _DICOM_VR.fullmatch(vr):
            pos += 8 + struct.unpack_from("<H", head, pos + 6)[0]
        else:  # implicit VR: a 4-byte length
            pos += 8 + _u32le(head, pos + 4)
    return Detection(Family.DICOM, "dicom", "application/dicom")


def _u32le(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "little")


def _u32be(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


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
