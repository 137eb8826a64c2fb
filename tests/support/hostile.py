"""Hostile and unusual files, built byte by byte: what attackers craft and what odd but real
tools write. Pure builders (bytes in, bytes out); tests/support/corpus.py decides, with an
independent reader, what the stack must make of each.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator

from PIL import Image


# -- images -------------------------------------------------------------------------------
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_1bit(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG of any size: 32000x32000 is 125 KB, 128 MB once decoded."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )


def png_with_exif(orientation: int, size: tuple[int, int] = (40, 30)) -> bytes:
    """A PNG whose eXIf chunk (before its image data, as Pillow writes it) turns it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(out, "PNG", exif=exif.tobytes())
    return out.getvalue()


def image(fmt: str, size: tuple[int, int] = (40, 30), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(out, fmt, **options)
    return out.getvalue()


def tiff_ifd_at_end(width: int, height: int) -> bytes:
    """An uncompressed RGB TIFF with its strip first and its only IFD last, as libtiff and
    many scanners write: the header says where the IFD is, megabytes in."""
    pixels = bytes(range(256)) * (width * height * 3 // 256 + 1)
    pixels = pixels[: width * height * 3]
    ifd_at = 8 + len(pixels) + len(pixels) % 2
    short, long_ = 3, 4
    tags = [
        (256, long_, width),
        (257, long_, height),
        (258, short, 8),
        (259, short, 1),
        (262, short, 2),
        (273, long_, 8),
        (277, short, 3),
        (278, long_, height),
        (279, long_, len(pixels)),
    ]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        packed = struct.pack("<I", value) if kind == long_ else struct.pack("<HH", value, 0)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_at) + pixels + b"\x00" * (len(pixels) % 2) + ifd


def bmp_claiming(width: int, height: int) -> bytes:
    """A BITMAPINFOHEADER claiming any size, with 16 bytes of pixels."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    body = header + b"\x00" * 16
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, 54) + body


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF89a whose logical screen and one image claim any size (one pixel of data)."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A baseline JPEG header (SOF0) claiming any size; no scan follows."""
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def mutated(data: bytes, start: int, predicate: object) -> bytes | None:
    """The first one-byte change of `data` at or after `start` (to 0x00, then 0xff) that
    `predicate(bytes) -> bool` accepts: finds a hostile variant an oracle recognises."""
    assert callable(predicate)
    for index in range(start, len(data)):
        for value in (0x00, 0xFF):
            if data[index] == value:
                continue
            candidate = data[:index] + bytes([value]) + data[index + 1 :]
            if predicate(candidate):
                return candidate
    return None


# -- DICOM (explicit VR little endian after a standard file meta) -------------------------
_LONG_VRS = {b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"OD", b"OL", b"UC", b"UR"}
UNDEFINED = 0xFFFFFFFF


def dicom_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def dicom_file_meta(good: bytes) -> bytes:
    """The preamble, `DICM` and group 0002 of a file pydicom wrote (explicit VR LE)."""
    (length,) = struct.unpack_from("<I", good, 140)
    return good[: 144 + length]


def dicom_nested(meta: bytes, depth: int) -> bytes:
    """Sequences of undefined length nested `depth` deep (pydicom recurses per level)."""
    sq = struct.pack("<HH2sHI", 0x0008, 0x1115, b"SQ", 0, UNDEFINED)
    item, item_end = (
        struct.pack("<HHI", 0xFFFE, 0xE000, UNDEFINED),
        struct.pack("<HHI", 0xFFFE, 0xE00D, 0),
    )
    seq_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    inner = b""
    for _ in range(depth):
        inner = item + sq + inner + seq_end + item_end
    return meta + sq + inner + seq_end


def _uid(uid: str) -> bytes:
    """A UI value: ASCII, padded with a NUL to an even length."""
    raw = uid.encode()
    return raw + b"\x00" * (len(raw) % 2)


def dicom_with(meta: bytes, *elements: bytes) -> bytes:
    return meta + b"".join(elements)


def dicom_large(
    pixel_bytes: int, private_bytes: int, series_uid: str = "1.2.826.0.1.3680043.8.498.6"
) -> bytes:
    """A valid CT image (explicit VR LE) with `pixel_bytes` of pixel data at its end and a
    private OB element of `private_bytes` before its identifiers (0 = none)."""
    from tests.support.media import dicom

    meta = dicom_file_meta(dicom())
    side = max(int((pixel_bytes // 2) ** 0.5), 2)
    elements = [
        dicom_element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\x00"),
        dicom_element(0x0008, 0x0018, b"UI", b"1.2.826.0.1.3680043.8.498.5\x00"),
        dicom_element(0x0008, 0x0060, b"CS", b"CT"),
    ]
    if private_bytes:
        elements += [
            dicom_element(0x0009, 0x0010, b"LO", b"ACME 1.0"),
            dicom_element(0x0009, 0x1001, b"OB", b"\x5a" * private_bytes),
        ]
    elements += [
        dicom_element(0x0020, 0x000D, b"UI", b"1.2.826.0.1.3680043.8.498.9\x00"),
        dicom_element(0x0020, 0x000E, b"UI", _uid(series_uid)),
        dicom_element(0x0020, 0x0013, b"IS", b"1 "),
        dicom_element(0x0028, 0x0002, b"US", struct.pack("<H", 1)),
        dicom_element(0x0028, 0x0004, b"CS", b"MONOCHROME2 "),
        dicom_element(0x0028, 0x0010, b"US", struct.pack("<H", side)),
        dicom_element(0x0028, 0x0011, b"US", struct.pack("<H", side)),
        dicom_element(0x0028, 0x0100, b"US", struct.pack("<H", 16)),
        dicom_element(0x0028, 0x0101, b"US", struct.pack("<H", 16)),
        dicom_element(0x0028, 0x0102, b"US", struct.pack("<H", 15)),
        dicom_element(0x0028, 0x0103, b"US", struct.pack("<H", 0)),
        dicom_element(0x7FE0, 0x0010, b"OW", b"\x01\x00" * (side * side)),
    ]
    return dicom_with(meta, *elements)


# -- ISO BMFF / QuickTime -----------------------------------------------------------------
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def boxes(
    data: bytes | bytearray, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(offset, size, type) of every box under [start, end), containers walked into."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        if size < 8:
            return
        yield pos, size, kind
        if kind in _CONTAINERS:
            yield from boxes(data, pos + 8, min(pos + size, end))
        pos += size


def declare_samples(mp4: bytes, count: int) -> bytes:
    """The same MP4 with every track's sample tables declaring `count` samples: stsz a
    constant size, stts one run (the file does not grow)."""
    data = bytearray(mp4)
    for pos, _, kind in list(boxes(data)):
        if kind == b"stsz":
            struct.pack_into(">II", data, pos + 12, 100, count)
        elif kind == b"stts":
            struct.pack_into(">I", data, pos + 16, count)
    return bytes(data)


def without_ftyp(mov: bytes, stand_in: bytes = b"free") -> bytes:
    """A QuickTime movie whose first atom is not `ftyp` (its type renamed: offsets stay)."""
    assert mov[4:8] == b"ftyp"
    return mov[:4] + stand_in + mov[8:]


def moov_first_without_ftyp(mov: bytes) -> bytes:
    """A fast-start movie with its `ftyp` cut out (moov first, as QuickTime wrote before
    ISO BMFF): every chunk offset moved back by the bytes removed."""
    assert mov[4:8] == b"ftyp"
    cut = struct.unpack_from(">I", mov, 0)[0]
    data = bytearray(mov[cut:])
    for pos, _, kind in list(boxes(data)):
        if kind == b"stco":
            (entries,) = struct.unpack_from(">I", data, pos + 12)
            for i in range(entries):
                at = pos + 16 + 4 * i
                struct.pack_into(">I", data, at, struct.unpack_from(">I", data, at)[0] - cut)
        elif kind == b"co64":
            (entries,) = struct.unpack_from(">I", data, pos + 12)
            for i in range(entries):
                at = pos + 16 + 8 * i
                struct.pack_into(">Q", data, at, struct.unpack_from(">Q", data, at)[0] - cut)
    assert data[4:8] == b"moov", "expected a fast-start movie (moov right after ftyp)"
    return bytes(data)


# -- text that looks like binary at a glance ----------------------------------------------
def text_with_ts_syncs() -> bytes:
    """Text with `G` at bytes 0 and 188 (what the old MPEG-TS sniff took as two packets)."""
    line = "Gene,count,notes\n"
    body = line + "x" * (188 - len(line) - 1) + "\n" + "Gamma,2,ok\n" + "y," * 300 + "\n"
    data = body.encode()
    assert data[0] == data[188] == ord("G")
    return data


# -- archives -----------------------------------------------------------------------------
def zip_of(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name, data) in order; names may repeat (zipfile warns, and writes both)."""
    import warnings

    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(out, "w", method) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return out.getvalue()


def zip_method(data: bytes, name: str, method: int) -> bytes:
    """The zip with member `name`'s compression method set to `method` in both headers (9:
    Deflate64, as Windows Explorer and 7-Zip write past 2 GB; 93: Zstandard)."""
    out = bytearray(data)
    encoded = name.encode()
    for found in re.finditer(rb"PK\x03\x04", out):
        at = found.start()
        (length,) = struct.unpack_from("<H", out, at + 26)
        if out[at + 30 : at + 30 + length] == encoded:
            struct.pack_into("<H", out, at + 8, method)
    for found in re.finditer(rb"PK\x01\x02", out):
        at = found.start()
        (length,) = struct.unpack_from("<H", out, at + 28)
        if out[at + 46 : at + 46 + length] == encoded:
            struct.pack_into("<H", out, at + 10, method)
    return bytes(out)


def zip_bad_utf8_name(members: list[tuple[str, bytes]], flagged: str) -> bytes:
    """A zip whose member `flagged` (non-ASCII, UTF-8-flagged as zipfile writes it) has
    its name bytes replaced by Latin-1 ones of the same length: flagged UTF-8, not UTF-8."""
    data = zip_of(members)
    good = flagged.encode()
    bad = flagged.encode("latin-1")
    bad += b"\xff" * (len(good) - len(bad))
    assert len(bad) == len(good) and data.count(good) == 2
    return data.replace(good, bad)


def tar_of(
    members: list[tuple[str, bytes]],
    mode: str = "w",
    encoding: str = "utf-8",
    tar_format: int = tarfile.PAX_FORMAT,
) -> bytes:
    out = io.BytesIO()
    with tarfile.open(  # type: ignore[call-overload]
        fileobj=out, mode=mode, format=tar_format, encoding=encoding
    ) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _octal(value: int, size: int) -> bytes:
    return b"%0*o\x00" % (size - 1, value)


def sparse_tar_gz(name: str, real_size: int, tail: bytes = b"x" * 512) -> bytes:
    """A GNU sparse member (type 'S') of `real_size` bytes, all holes but its last block:
    under 100 bytes compressed, `real_size` bytes when extracted."""
    header = bytearray(512)
    header[: len(name)] = name.encode()
    header[100:108] = _octal(0o644, 8)
    header[108:116] = _octal(0, 8)
    header[116:124] = _octal(0, 8)
    header[124:136] = _octal(len(tail), 12)
    header[136:148] = _octal(0, 12)
    header[156:157] = b"S"
    header[257:265] = b"ustar  \x00"
    header[386:398] = _octal(real_size - len(tail), 12)  # the one data block: at the end
    header[398:410] = _octal(len(tail), 12)
    header[483:495] = _octal(real_size, 12)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\x00 " % sum(header)
    body = bytes(header) + tail + b"\x00" * (-len(tail) % 512) + b"\x00" * 1024
    return gzip.compress(body, mtime=0)


def zeros_zip(size: int) -> bytes:
    """One member of `size` zero bytes, deflated (a ratio of about 1000)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return out.getvalue()


def zip_symlink(name: str, target: str) -> tuple[str, bytes, int]:
    """A zip entry spec for a Unix symbolic link: (name, target bytes, external_attr)."""
    return name, target.encode(), 0o120777 << 16


def zip_with_link(members: list[tuple[str, bytes]], link: tuple[str, bytes, int]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo(link[0])
        info.create_system = 3
        info.external_attr = link[2]
        archive.writestr(info, link[1])
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()
