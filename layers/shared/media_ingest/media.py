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


class FrameRateMode(StrEnum):
    """Whether a video's frames follow one constant rate (probing/frame_timing.py decides)."""

    CONSTANT = "constant"
    VARIABLE = "variable"


class FrameTiming(_Frozen):
    """A video's frames as a player shows them, read from the container index (never decoded).

    Frame numbers are 0-based in presentation order after the edit list, as FFmpeg outputs
    frames (and as Encord numbers them): frame 0 is the first frame a player shows. A field
    the index cannot give is None, and `unknown` says why; nothing here is an estimate.
    """

    source: str = Field(description="the index read: mp4 (moov), matroska, or none")
    frame_count: int | None = None
    rate_mode: FrameRateMode | None = None
    # Seconds (6 decimals): the shortest and longest time between consecutive frames.
    min_frame_duration: float | None = None
    max_frame_duration: float | None = None
    # Seconds from the start of the presentation until frame 0 is shown (an empty edit).
    start_time: float | None = None
    # Seconds the track's frames are presented for (its edits; the media duration without).
    presentation_duration: float | None = None
    unknown: str | None = Field(default=None, description="why a field above is None")

    def metadata(self) -> dict[str, str | int | float]:
        """The flat fields every platform's metadata carries (Encord clientMetadata, Nucleus
        metadata): the known values, and `frame_timing_unknown` saying why any is missing."""
        fields = {
            "frame_count": self.frame_count,
            "frame_rate_mode": self.rate_mode.value if self.rate_mode else None,
            "frame_duration_min": self.min_frame_duration,
            "frame_duration_max": self.max_frame_duration,
            "first_frame_time": self.start_time,
            "presentation_duration": self.presentation_duration,
            "frame_timing_unknown": self.unknown,
        }
        return {name: value for name, value in fields.items() if value is not None}


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
    # 0-based frame numbers (presentation order, after the edit list) of the key frames,
    # read from the container index (mp4_index.py); None: not read (KeyFrames off), unknown,
    # or over the cap.
    keyframes: tuple[int, ...] | None = None
    # Frame count, constant or variable rate, edit list: None for items probed before it
    # was read (every video probed since has one, with `unknown` reasons where needed).
    timing: FrameTiming | None = None

    @property
    def variable_rate(self) -> bool | None:
        """True for a variable frame rate, False for a constant one, None when unknown."""
        if self.timing is None or self.timing.rate_mode is None:
            return None
        return self.timing.rate_mode is FrameRateMode.VARIABLE


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
