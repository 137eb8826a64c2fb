"""Hostile and broken objects through the real handler: a precise outcome for each, a canary
HTTP server that must hear nothing, and no local file content in any output."""

from __future__ import annotations

import json
import struct
import unicodedata
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from media_ingest.adapters.objects import S3Objects
from media_ingest.errors import ErrorCode
from media_ingest.events import ObjectEvent
from media_ingest.probing.prober import SignedGet
from tests.handlers.conftest import Stack
from tests.handlers.test_ingest_handler import kinds
from tests.support.events import s3_body
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


def test_an_overwrite_between_the_range_reads_and_ffprobe_is_never_registered_as_the_old(
    stack: Stack, media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The range reads pin the event's ETag; so must ffprobe's presigned reads, or the old
    ETag would be catalogued with the new file's metadata."""
    body = stack.body("race/clip.mp4", media.bytes("clip.mp4"))
    presign = S3Objects.presign

    def overwrite_then_presign(self: S3Objects, event: ObjectEvent) -> SignedGet:
        stack.s3.put_object(Bucket="drop", Key=event.key, Body=media.bytes("clip.webm"))
        return presign(self, event)

    monkeypatch.setattr(S3Objects, "presign", overwrite_then_presign)
    assert stack.deliver(body) == {"batchItemFailures": []}
    [failure] = stack.reader.failures()
    assert failure.error_code is ErrorCode.OBJECT_CHANGED
    assert stack.reader.items() == []


def test_the_presigned_get_is_signed_with_the_etag_it_must_send(stack: Stack) -> None:
    event = ObjectEvent.model_validate(
        {
            "bucket": "drop",
            "key": "k.mp4",
            "size": 10,
            "etag": "abc123",
            "sequencer": "01",
            "event_name": "ObjectCreated:Put",
            "event_time": "2026-11-23T09:00:00Z",
            "region": "us-east-1",
        }
    )
    signed = S3Objects().presign(event)  # the shared client, as deployed
    assert signed.headers == {"If-Match": '"abc123"'}
    query = parse_qs(urlsplit(signed.url).query)
    assert query["X-Amz-SignedHeaders"] == ["host;if-match"]
    versioned = S3Objects().presign(event.model_copy(update={"version_id": "v7"}))
    assert versioned.headers == {} and "versionId=v7" in versioned.url


def test_annotation_links_and_stack_fields_in_upload_metadata_are_not_the_stacks(
    stack: Stack, media: MediaSet
) -> None:
    """Anyone who may upload sets x-amz-meta-*: links to CSVs of their choosing, or fields
    the stack writes when it leaves them unset, must never reach the catalog or manifest."""
    forged = json.dumps(
        {"localizations": {"box": {"url": "https://evil.example/b.csv", "rows": 9}}}
    )
    put = stack.s3.put_object(
        Bucket="drop",
        Key="forge/silent.mp4",
        Body=media.bytes("gop10-bf0.mp4"),
        Metadata={
            "media-ingest-annotations": forged,
            "media-ingest-source": "an-archive-etag",
            "version_id": "v-forged",
            "audio_codec": "forged",
            "note": "kept",
        },
    )
    body = s3_body(
        "drop",
        "forge/silent.mp4",
        size=len(media.bytes("gop10-bf0.mp4")),
        etag=put["ETag"].strip('"'),
        sequencer="00A1",
    )
    assert stack.deliver(body) == {"batchItemFailures": []}
    [item] = stack.reader.items()
    assert item.media.annotations is None
    assert item.media.client_metadata == {"note": "kept"}
    [part] = stack.manifest_parts()
    [entry] = part["videos"]
    client = entry["clientMetadata"]
    assert "annotations" not in client and "version_id" not in client
    assert "audio_codec" not in client and client["note"] == "kept"
