from __future__ import annotations

from typing import Any

import pytest

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.probing.ffprobe import DEMUXER_WHITELIST
from media_ingest.probing.sniffer import Family, detect
from tests.support import hostile
from tests.support.media import MediaSet, dicom


@pytest.mark.parametrize(
    ("name", "family", "container", "demuxer"),
    [
        ("clip.mp4", Family.AV, "mp4", "mov"),
        ("clip.webm", Family.AV, "webm", "matroska"),
        ("tone.wav", Family.AUDIO, "wav", "wav"),
        ("tone.mp3", Family.AUDIO, "mp3", "mp3"),
        ("tone.m4a", Family.AV, "mp4", "mov"),
        ("tone.flac", Family.AUDIO, "flac", "flac"),
        ("portrait.jpg", Family.IMAGE, "jpeg", None),
        ("plain.png", Family.IMAGE, "png", None),
        ("scan.dcm", Family.DICOM, "dicom", None),
        ("doc.pdf", Family.PDF, "pdf", None),
        ("notes.txt", Family.TEXT, "text", None),
    ],
)
def test_content_decides_the_kind(
    media: MediaSet, name: str, family: Family, container: str, demuxer: str | None
) -> None:
    found = detect(media.bytes(name)[:65536], f"drop/{name}")
    assert (found.family, found.container, found.demuxer) == (family, container, demuxer)


def test_a_name_without_extension_is_detected_from_content(media: MediaSet) -> None:
    assert detect(media.bytes("plain.png"), "no-extension").container == "png"


def test_an_extension_that_lies_is_reported(media: MediaSet) -> None:
    with pytest.raises(MediaError) as caught:
        detect(media.bytes("doc.pdf"), "video.mp4")
    assert caught.value.code is ErrorCode.KIND_MISMATCH
    assert ".mp4" in caught.value.message and "pdf" in caught.value.message


def test_audio_and_video_extensions_are_interchangeable(media: MediaSet) -> None:
    assert detect(media.bytes("tone.m4a"), "song.mp4").family is Family.AV
    assert detect(media.bytes("clip.mp4"), "clip.m4a").family is Family.AV


@pytest.mark.parametrize(
    "content",
    [
        b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://127.0.0.1:9/x.ts\n",
        b"\xef\xbb\xbf#EXTM3U\n".lstrip(b"\xef\xbb\xbf"),
        b"  #EXTM3U\nfile:///etc/passwd\n",
        b"ffconcat version 1.0\nfile /etc/passwd\n",
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">',
        b"[playlist]\nFile1=http://example.com/a.mp3\n",
        b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",
    ],
)
def test_indirection_formats_are_refused_whatever_the_name(content: bytes) -> None:
    with pytest.raises(MediaError) as caught:
        detect(content, "holiday.mp4")
    assert caught.value.code is ErrorCode.INDIRECTION_REFUSED


def test_garbage_is_unsupported(media: MediaSet) -> None:
    with pytest.raises(MediaError) as caught:
        detect(media.bytes("garbage.mp4"), "garbage.mp4")
    assert caught.value.code is ErrorCode.UNSUPPORTED_FORMAT


def test_text_under_a_video_name_is_a_mismatch() -> None:
    with pytest.raises(MediaError) as caught:
        detect(b"just some words\n", "clip.mp4")
    assert caught.value.code is ErrorCode.KIND_MISMATCH


def test_utf8_cut_at_the_range_end_is_still_text() -> None:
    assert detect("é".encode() * 10 + "é".encode()[:1], "notes.txt").family is Family.TEXT


# -- sniffing gaps, both ways (issue 11) ---------------------------------------------------
def _bw64(media: MediaSet) -> bytes:
    return b"BW64" + media.bytes("tone-rf64.wav")[4:]


@pytest.mark.parametrize(
    ("name", "build", "expected"),
    [
        ("camera.MTS", lambda m: m.bytes("clip.m2ts"), (Family.AV, "mpegts", "mpegts")),
        ("stream.ts", lambda m: m.bytes("clip.ts"), (Family.AV, "mpegts", "mpegts")),
        ("dvd.VOB", lambda m: m.bytes("clip.mpg"), (Family.AV, "mpeg", "mpeg")),
        ("old.mov", lambda m: hostile.without_ftyp(m.bytes("clip.mov")), (Family.AV, "mov", "mov")),
        (
            "old2.mov",
            lambda m: hostile.moov_first_without_ftyp(m.bytes("clip-faststart.mov")),
            (Family.AV, "mov", "mov"),
        ),
        ("long.wav", lambda m: m.bytes("tone-rf64.wav"), (Family.AUDIO, "wav", "wav")),
        ("broadcast.wav", _bw64, (Family.AUDIO, "wav", "wav")),
        ("studio.aif", lambda m: m.bytes("tone.aiff"), (Family.AUDIO, "aiff", "aiff")),
        ("bare.dcm", lambda m: m.bytes("scan.dcm")[132:], (Family.DICOM, "dicom", None)),
        ("raw-dataset", lambda m: dicom()[144 + _meta_length() :], (Family.DICOM, "dicom", None)),
    ],
)
def test_common_formats_the_sniffer_refused_are_accepted_with_one_demuxer(
    media: MediaSet, name: str, build: Any, expected: tuple[Family, str, str | None]
) -> None:
    found = detect(build(media)[:65536], f"drop/{name}")
    assert (found.family, found.container, found.demuxer) == expected
    if found.demuxer is not None:
        assert found.demuxer in DEMUXER_WHITELIST


def _meta_length() -> int:
    return int.from_bytes(dicom()[140:144], "little")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bmi.csv", b"BMI,weight,height\n22.5,70,1.76\n"),
        ("notes.txt", hostile.text_with_ts_syncs()),
        ("id3.csv", b"ID3,title\n1,intro\n"),
        ("ogg.txt", b"OggS is the capture pattern of Ogg pages\n"),
        ("gz.txt", b"\x1f\x8b" + b"not gzip"),
    ],
)
def test_text_that_starts_like_a_binary_format_is_not_taken_for_it(
    name: str, content: bytes
) -> None:
    found = None
    try:
        found = detect(content, f"drop/{name}")
    except MediaError as error:  # not text either (\x1f\x8b is not UTF-8): never a container
        assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    if found is not None:
        assert found.family is Family.TEXT


def test_mpeg_ts_needs_sync_bytes_packet_after_packet() -> None:
    packets = b"".join(b"\x47" + bytes(187) for _ in range(5))
    assert detect(packets, "a.ts").container == "mpegts"
    broken = bytearray(packets)
    broken[188 * 3] = 0x00
    with pytest.raises(MediaError):
        detect(bytes(broken), "a.ts")
