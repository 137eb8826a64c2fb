from __future__ import annotations

import pytest

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.probing.sniffer import Family, detect
from tests.support.media import MediaSet


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
