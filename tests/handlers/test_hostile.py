"""Hostile and broken objects through the real handler: a precise outcome for each, a canary
HTTP server that must hear nothing, and no local file content in any output."""

from __future__ import annotations

import struct
import unicodedata
import zlib

import pytest

from media_ingest.errors import ErrorCode
from tests.handlers.conftest import Stack
from tests.handlers.test_ingest_handler import kinds
from tests.support.http import serve
from tests.support.media import MediaSet

SECRET = "root:x:0:0"  # what /etc/passwd would leak


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\0\0\0\0IEND\xaeB`\x82"
    )


def corpus(canary: str, media: MediaSet) -> dict[str, tuple[bytes, ErrorCode]]:
    port = canary.rsplit(":", 1)[-1]
    dash = f'<?xml version="1.0"?>\n<MPD><BaseURL>{canary}/</BaseURL></MPD>'
    sdp = f"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\nm=video {port} RTP/AVP 96\r\n"
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{canary}/seg.ts\nfile:///etc/passwd\n"
    refused = ErrorCode.INDIRECTION_REFUSED
    mp4 = media.bytes("clip-moov-end.mp4")
    return {
        "hls-disguised.mp4": (hls.encode(), refused),
        "hls-disguised.mkv": (hls.encode(), refused),
        "hls-no-extension": (hls.encode(), refused),
        "hls-indented.mov": (b"\n\n  " + hls.encode(), refused),
        "concat.mp4": (f"ffconcat version 1.0\nfile {canary}/a.mp4\n".encode(), refused),
        "dash.mp4": (dash.encode(), refused),
        "session.mp4": (sdp.encode(), refused),
        "pls.mp3": (f"[playlist]\nFile1={canary}/a.mp3\n".encode(), refused),
        "truncated.mp4": (mp4[:3000], ErrorCode.CORRUPT_MEDIA),
        "header-only.mp4": (mp4[:32], ErrorCode.CORRUPT_MEDIA),
        "zero.mp4": (b"", ErrorCode.EMPTY_OBJECT),
        "garbage.bin": (bytes(range(256)) * 8, ErrorCode.UNSUPPORTED_FORMAT),
        "image-named.mp4": (media.bytes("plain.png"), ErrorCode.KIND_MISMATCH),
        "giant.png": (_png_claiming(200_000, 200_000), ErrorCode.IMAGE_TOO_LARGE),
    }


def test_hostile_objects_fail_precisely_and_reach_nothing(stack: Stack, media: MediaSet) -> None:
    with serve({"/seg.ts": b"x", "/a.mp4": b"x", "/a.mp3": b"x"}) as (canary, served):
        cases = corpus(canary, media)
        bodies = [stack.body(f"hostile/{name}", data) for name, (data, _) in cases.items()]
        for start in range(0, len(bodies), 10):
            assert stack.deliver(*bodies[start : start + 10]) == {"batchItemFailures": []}
        assert served.requests == []
    got = {f.key.removeprefix("hostile/"): f.error_code for f in stack.reader.failures()}
    assert got == {name: code for name, (_, code) in cases.items()}
    assert kinds(stack) == {"failed": len(cases)}
    for record in stack.failure_messages() + stack.reader.failures():
        assert SECRET not in record.message and "/etc/passwd" not in record.message


@pytest.mark.parametrize(
    "key",
    [
        "odd/space and + plus.png",
        "odd/a/../b.png",
        "odd/./c.png",
        "odd/" + "k" * 1016 + ".png",
    ],
)
def test_awkward_keys_register_under_their_exact_name(
    stack: Stack, media: MediaSet, key: str
) -> None:
    stack.deliver(stack.body(key, media.bytes("plain.png")))
    [item] = stack.reader.items()
    assert item.key == key
    assert "/../" not in item.object_url and "/./" not in item.object_url


def test_nfc_and_nfd_forms_are_two_objects(stack: Stack, media: MediaSet) -> None:
    nfc = unicodedata.normalize("NFC", "uni/café.png")
    nfd = unicodedata.normalize("NFD", "uni/café.png")
    assert nfc != nfd
    stack.deliver(
        stack.body(nfc, media.bytes("plain.png")), stack.body(nfd, media.bytes("plain.png"))
    )
    items = stack.reader.items()
    assert sorted(i.key for i in items) == sorted([nfc, nfd])
    assert len({i.object_url for i in items}) == 2
    assert kinds(stack) == {"registered": 2}
