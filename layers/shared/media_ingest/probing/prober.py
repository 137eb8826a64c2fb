"""Probing one object: read its first range, decide what it is, read only what that needs.

Audio and video go to ffprobe over a short-lived presigned URL (ffprobe range-reads the
container index); images and DICOM are read from header bytes, through a file that fetches
what the reader asks for by range (object_file.py, 8 MB at most); PDFs and text need nothing
past the first range. Never downloads a whole object.

An MP4/MOV's own index (`moov`) is read first, with bounded range reads (none when it is in
the first range): an index no object of this size could hold, or samples kept in another
file, are refused before ffprobe trusts them, and every video's frame timing (count,
constant or variable rate, edit list) comes from it; a Matroska video's from its first
range (mkv_index). Frame timing never fails a video: what cannot be read is None, with why.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from media_ingest import owner_metadata
from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import ObjectEvent
from media_ingest.media import (
    SOURCE_METADATA,
    AnnotationLinks,
    DicomInfo,
    FrameTiming,
    ImageInfo,
    MediaInfo,
    MediaKind,
    VideoInfo,
)
from media_ingest.observability import logger
from media_ingest.probing import frame_timing, mkv_index, mp4_frames, mp4_index
from media_ingest.probing.dicom_header import read_dicom
from media_ingest.probing.ffprobe import FfprobeRunner, interpret
from media_ingest.probing.image_header import read_image
from media_ingest.probing.object_file import BLOCK_BYTES, ObjectFile
from media_ingest.probing.sniffer import Detection, Family, detect

FIRST_RANGE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 8 * 1024 * 1024
# Archive containers the extract function opens (7z is detected but never extracted).
EXTRACTED_CONTAINERS = frozenset({"zip", "tar", "gzip"})
# ISO-BMFF (MP4, MOV, M4V, 3GP): the containers whose index mp4_index.py reads.
ISO_BMFF_DEMUXER = "mov"
MATROSKA_DEMUXER = "matroska"


class Head(NamedTuple):
    """The first range of an object, and what the same read says of the object."""

    data: bytes
    metadata: dict[str, str]  # S3 user metadata (x-amz-meta-*)
    tag_count: int


class SignedGet(NamedTuple):
    """A presigned GET and the headers its reader must send with every request of it."""

    url: str
    headers: dict[str, str]


class ObjectReader(Protocol):
    """Reads bytes of the object an event names (the S3 adapter implements it)."""

    def read_head(self, event: ObjectEvent, length: int) -> Head:
        """The first `length` bytes (fewer if the object is shorter) of this version, with
        the object's user metadata and tag count."""
        ...

    def read_at(self, event: ObjectEvent, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer past the end) of the same version."""
        ...

    def tags(self, event: ObjectEvent) -> dict[str, str]: ...

    def read_small(self, bucket: str, key: str, limit: int) -> bytes | None:
        """A whole small object (None if absent); raises beyond `limit` bytes."""
        ...

    def presign(self, event: ObjectEvent) -> SignedGet:
        """A short-lived GET of exactly the version the range reads read."""
        ...


class LinkSource(Protocol):
    """The annotation links the extract function recorded (the catalog implements it)."""

    def find_links(self, bucket: str, key: str, source: str) -> AnnotationLinks | None: ...


class Prober(Protocol):
    def probe(self, event: ObjectEvent) -> MediaInfo: ...


@dataclass
class ObjectProber:
    reader: ObjectReader
    ffprobe: FfprobeRunner
    first_range: int = FIRST_RANGE_BYTES
    max_header: int = MAX_HEADER_BYTES
    # "" (off) or the suffix that names a media object's sidecar JSON: `clip.mp4.json`.
    sidecar_suffix: str = ""
    # Key frames from the container index (mp4_frames.py, mkv_index.py) kept in VideoInfo.
    # The index is read for every MP4/MOV either way (extra range reads only when moov is
    # not in the first range); this only decides whether the list is kept.
    keyframes: bool = False
    # Where archive members' annotation links are recorded; None: members get none.
    links: LinkSource | None = None

    def probe(self, event: ObjectEvent) -> MediaInfo:
        if event.size == 0:
            raise MediaError(ErrorCode.EMPTY_OBJECT, "object is empty (0 bytes)")
        first = self.reader.read_head(event, min(self.first_range, event.size))
        head = first.data
        if not head:
            raise MediaError(ErrorCode.EMPTY_OBJECT, "object is empty (0 bytes)")
        found = detect(head, event.key)
        info = self._media(event, found, head, first)
        if info.kind is MediaKind.ARCHIVE:
            return info  # never registered itself: its members get their own metadata
        # Last, once the media is known good: media that fails costs no tag or sidecar read,
        # and a broken sidecar never hides what is wrong with the media itself.
        return info.model_copy(update={"client_metadata": self._client_metadata(event, first)})

    def _media(self, event: ObjectEvent, found: Detection, head: bytes, first: Head) -> MediaInfo:
        base: dict[str, Any] = {
            "mime_type": found.mime_type,
            "container": found.container,
            "size": event.size,
            "annotations": self._annotation_links(event, first.metadata),
        }
        if found.family in (Family.AV, Family.AUDIO):
            return self._probe_stream(event, found, base, head)
        if found.family is Family.IMAGE:
            return MediaInfo(kind=MediaKind.IMAGE, image=self._image(event, head), **base)
        if found.family is Family.DICOM:
            return MediaInfo(kind=MediaKind.DICOM, dicom=self._dicom(event, head), **base)
        if found.family is Family.PDF:
            return MediaInfo(kind=MediaKind.PDF, **base)
        if found.family is Family.TEXT:
            return MediaInfo(kind=MediaKind.TEXT, **base)
        if found.container in EXTRACTED_CONTAINERS:
            # Not registered: the ingestor hands it to the extract function (archives.py).
            return MediaInfo(kind=MediaKind.ARCHIVE, **base)
        raise MediaError(
            ErrorCode.UNSUPPORTED_KIND,
            f"{found.container} archives are not extracted; the object was not registered",
        )

    def _probe_stream(
        self, event: ObjectEvent, found: Detection, owner: dict[str, Any], head: bytes
    ) -> MediaInfo:
        assert found.demuxer is not None  # every AV/audio detection names its demuxer
        movie: mp4_index.Movie | str | None = None
        if found.demuxer == ISO_BMFF_DEMUXER:
            if cut := mp4_index.top_level_overrun(head, event.size):
                raise MediaError(ErrorCode.CORRUPT_MEDIA, cut)
            movie = self._movie(event, head)  # before ffprobe: it trusts what moov declares
        signed = self.reader.presign(event)
        kind, video, audio = interpret(self.ffprobe.run(signed.url, found.demuxer, signed.headers))
        if video is not None:
            video = self._with_frames(video, found, movie, head, event.size)
        mime = found.mime_type
        if kind is MediaKind.AUDIO and mime.startswith("video/"):
            mime = "audio/" + mime.split("/", 1)[1]
        if kind is MediaKind.VIDEO and found.container == "ogg":
            mime = "video/ogg"
        return MediaInfo(
            kind=kind,
            mime_type=mime,
            container=found.container,
            size=event.size,
            video=video,
            audio=audio,
            annotations=owner["annotations"],
        )

    def _movie(self, event: ObjectEvent, head: bytes) -> mp4_index.Movie | str:
        """The MP4/MOV index, checked against the object's size, or why it was not read.

        Raises MediaError for an impossible index or external samples; an index this parser
        cannot read is left to ffprobe (and the frame timing says why it is unknown)."""
        try:
            moov = mp4_index.find_moov(
                head, event.size, lambda start, length: self.reader.read_at(event, start, length)
            )
            if moov is None:
                return (
                    f"no moov box within {mp4_index.MAX_TOP_LEVEL_READS} reads past the first "
                    "range, or a fragmented file (moof before moov)"
                )
            return mp4_index.read_movie(moov, event.size)
        except mp4_index.IndexUnreadable as exc:
            return f"MP4 index not read: {exc}"

    def _with_frames(
        self,
        video: VideoInfo,
        found: Detection,
        movie: mp4_index.Movie | str | None,
        head: bytes,
        size: int,
    ) -> VideoInfo:
        """The video with its frame timing (and its key frames when they are kept)."""
        keyframes: tuple[int, ...] | None = None
        if isinstance(movie, mp4_index.Movie):
            timing, keyframes = mp4_frames.video_frames(movie, self.keyframes)
        elif isinstance(movie, str):
            timing = frame_timing.unknown(mp4_frames.SOURCE, movie)
        elif found.demuxer == MATROSKA_DEMUXER:
            timing, keyframes = mkv_index.video_frames(head, size)
        else:
            timing = _not_indexed(found.container)
        if timing.unknown:
            logger.info("frame timing unknown", extra={"reason": timing.unknown})
        return video.model_copy(
            update={"timing": timing, "keyframes": keyframes if self.keyframes else None}
        )

    def _annotation_links(
        self, event: ObjectEvent, metadata: dict[str, str]
    ) -> AnnotationLinks | None:
        """The links the extract function recorded for this member, if it is one.

        Looked up by the archive version the member's metadata names: a forged name finds
        nothing, or at most the links the stack recorded for this very key."""
        source = metadata.get(SOURCE_METADATA)
        if not source or self.links is None:
            return None
        return self.links.find_links(event.bucket, event.key, source)

    def _client_metadata(self, event: ObjectEvent, first: Head) -> dict[str, Any]:
        """Tags cost a call only when the object has some; the sidecar only when enabled."""
        tags = self.reader.tags(event) if first.tag_count else {}
        sidecar = None
        if self.sidecar_suffix:
            name = owner_metadata.sidecar_key(event.key, self.sidecar_suffix)
            data = self.reader.read_small(
                event.bucket, name, owner_metadata.MAX_CLIENT_METADATA_BYTES
            )
            sidecar = owner_metadata.parse_sidecar(data, name) if data is not None else None
        return owner_metadata.merge(first.metadata, tags, sidecar)

    def _image(self, event: ObjectEvent, head: bytes) -> ImageInfo:
        return read_image(self._file(event, head))

    def _dicom(self, event: ObjectEvent, head: bytes) -> DicomInfo:
        return read_dicom(self._file(event, head))

    def _file(self, event: ObjectEvent, head: bytes) -> io.BufferedReader:
        """The object as a file for a header reader: what it reads past the first range is
        fetched by range reads of the same version, `max_header` bytes at most."""
        fetched = ObjectFile(
            head,
            event.size,
            lambda start, length: self.reader.read_at(event, start, length),
            self.max_header,
        )
        return io.BufferedReader(fetched, BLOCK_BYTES)


def _not_indexed(container: str) -> FrameTiming:
    return frame_timing.unknown(
        "none",
        f"frame timing is read from MP4/MOV and Matroska indexes; {container} has none read",
    )
