"""Probing one object: read its first range, decide what it is, read only what that needs.

Audio and video go to ffprobe over a short-lived presigned URL (ffprobe range-reads the
container index); images and DICOM are read from header bytes; PDFs and text need nothing
past the first range. Never downloads a whole object.
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
    ImageInfo,
    MediaInfo,
    MediaKind,
)
from media_ingest.observability import logger
from media_ingest.probing import mp4_index
from media_ingest.probing.dicom_header import read_dicom
from media_ingest.probing.ffprobe import FfprobeRunner, interpret
from media_ingest.probing.image_header import read_image
from media_ingest.probing.object_file import BLOCK_BYTES, ObjectFile
from media_ingest.probing.sniffer import Detection, Family, detect

FIRST_RANGE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 8 * 1024 * 1024
# Archive containers the extract function opens (7z is detected but never extracted).
EXTRACTED_CONTAINERS = frozenset({"zip", "tar", "gzip"})
# ISO-BMFF (MP4, MOV, M4V, 3GP): the containers whose index keyframes.py reads.
ISO_BMFF_DEMUXER = "mov"


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

    def read_range(self, event: ObjectEvent, length: int) -> bytes:
        """The first `length` bytes (fewer if the object is shorter) of this version."""
        ...

    def read_head(self, event: ObjectEvent, length: int) -> Head:
        """read_range, with the object's user metadata and tag count."""
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
    # Key frames from the MP4/MOV index (keyframes.py): extra range reads when moov is not
    # in the first range (moov at the end, or a long moov), none otherwise.
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
        if found.demuxer == ISO_BMFF_DEMUXER and (
            cut := mp4_index.top_level_overrun(head, event.size)
        ):
            raise MediaError(ErrorCode.CORRUPT_MEDIA, cut)
        signed = self.reader.presign(event)
        kind, video, audio = interpret(self.ffprobe.run(signed.url, found.demuxer, signed.headers))
        if video is not None and self.keyframes and found.demuxer == ISO_BMFF_DEMUXER:
            video = video.model_copy(update={"keyframes": self._keyframes(event, head)})
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

    def _keyframes(self, event: ObjectEvent, head: bytes) -> tuple[int, ...] | None:
        """Key frames from the container index; None (and a log line) when unknown.

        Optional enrichment: an index this parser cannot read never fails the media that
        ffprobe already accepted."""
        try:
            moov = mp4_index.find_moov(
                head, event.size, lambda start, length: self.reader.read_at(event, start, length)
            )
            found = mp4_index.mp4_keyframes(moov) if moov is not None else None
        except mp4_index.KeyframeIndexError as exc:
            logger.warning(
                "key frames unknown: container index not read", extra={"reason": str(exc)}
            )
            return None
        if found is not None and len(found) > mp4_index.MAX_KEYFRAMES:
            logger.warning(
                "key frames left out: too many",
                extra={"keyframes": len(found), "limit": mp4_index.MAX_KEYFRAMES},
            )
            return None
        return found

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
