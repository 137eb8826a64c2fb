"""What a probe learns about an object: the metadata models every other module reads."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MediaKind(StrEnum):
    """What an object is, once probed: decides its manifest section and its metadata."""

    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"
    DICOM = "dicom"
    PDF = "pdf"
    TEXT = "text"
    ARCHIVE = "archive"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class VideoInfo(_Frozen):
    fps: float
    fps_fraction: str
    duration: float | None
    width: int  # as displayed: rotation applied
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees clockwise a player turns the picture: 0, 90, 180 or 270
    codec: str
    bit_rate: int | None = None
    pixel_format: str | None = None
    sample_aspect_ratio: str | None = None
    audio_codec: str | None = None
    # 0-based frame numbers (presentation order) of the key frames, read from the container
    # index (keyframes.py); None: not read (KeyFrames off), unknown, or over the cap.
    keyframes: tuple[int, ...] | None = None


class AudioInfo(_Frozen):
    duration: float | None
    sample_rate: int
    channels: int
    codec: str
    bit_rate: int | None = None
    bit_depth: int | None = None


class ImageInfo(_Frozen):
    width: int  # as displayed: EXIF orientation applied
    height: int
    format: str
    orientation: int = 1


class DicomInfo(_Frozen):
    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_instance_uid: str | None
    instance_number: int | None
    modality: str | None
    series_description: str | None
    rows: int | None
    columns: int | None


class AnnotationFile(_Frozen):
    """One validated annotation CSV linked to a media object: where it is, how many rows."""

    url: str
    rows: int


class AnnotationLinks(_Frozen):
    """The annotation CSVs of one media object, by kind and type (`box` for `box.csv`).

    Recorded by the extract function in the catalog (keyed by the member's key and the
    archive version in its SOURCE_METADATA) before the member exists, so the ingest path
    finds them whatever order the events arrive in. Never read from object metadata, which
    anyone who may upload can set.
    """

    localizations: dict[str, AnnotationFile] = {}
    states: dict[str, AnnotationFile] = {}


# The user-metadata key (x-amz-meta-...) on every member the extract function writes: which
# archive version it came from (a redelivered extraction skips members already written from
# it; the ingest path looks the member's annotation links up by it).
SOURCE_METADATA = "media-ingest-source"


class MediaInfo(_Frozen):
    """The probe's result for one object."""

    kind: MediaKind
    mime_type: str
    container: str
    size: int
    video: VideoInfo | None = None
    audio: AudioInfo | None = None
    image: ImageInfo | None = None
    dicom: DicomInfo | None = None
    # The owner's metadata (S3 user metadata, tags, sidecar): see client_metadata.py.
    client_metadata: dict[str, Any] = Field(default_factory=dict)
    annotations: AnnotationLinks | None = None
