"""Catalog items built the way the ingestor builds them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from media_ingest.events import ObjectEvent
from media_ingest.groups.rules import GroupKind, GroupMeta, GroupRef, GroupStatus
from media_ingest.media import (
    AnnotationFile,
    AnnotationLinks,
    AudioInfo,
    DicomInfo,
    FrameRateMode,
    FrameTiming,
    ImageInfo,
    MediaInfo,
    MediaKind,
    VideoInfo,
)
from media_ingest.records import CatalogItem
from media_ingest.urls import object_url

VIDEO = VideoInfo(
    fps=29.97,
    fps_fraction="30000/1001",
    duration=2.0,
    width=240,
    height=320,
    coded_width=320,
    coded_height=240,
    rotation=90,
    codec="h264",
    audio_codec="aac",
    timing=FrameTiming(
        source="mp4",
        frame_count=60,
        rate_mode=FrameRateMode.CONSTANT,
        min_frame_duration=0.033367,
        max_frame_duration=0.033367,
        start_time=0.0,
        presentation_duration=2.002,
    ),
)
# A phone clip: 85 frames over 3 s at 30 fps with 5 dropped (as tests/support/media.py's
# vfr-phone.mov), and a clip whose timing could not be read.
VFR_TIMING = FrameTiming(
    source="mp4",
    frame_count=85,
    rate_mode=FrameRateMode.VARIABLE,
    min_frame_duration=0.033333,
    max_frame_duration=0.066667,
    start_time=0.0,
    presentation_duration=3.0,
)
UNKNOWN_TIMING = FrameTiming(source="none", unknown="frame timing is read from ...")


def event(key: str, sequencer: str = "01", bucket: str = "drop", size: int = 1000) -> ObjectEvent:
    return ObjectEvent(
        bucket=bucket,
        key=key,
        size=size,
        etag="e",
        sequencer=sequencer,
        event_name="ObjectCreated:Put",
        event_time=datetime(2026, 11, 23, tzinfo=UTC),
        region="us-east-1",
    )


def video_item(
    key: str, dataset: str = "main", sequencer: str = "01", timing: FrameTiming | None = None
) -> CatalogItem:
    """A constant-rate video; with `timing`, the same video with that frame timing."""
    video = VIDEO if timing is None else VIDEO.model_copy(update={"timing": timing})
    media = MediaInfo(
        kind=MediaKind.VIDEO, mime_type="video/mp4", container="mp4", size=1000, video=video
    )
    ev = event(key, sequencer)
    return CatalogItem.from_probe(ev, dataset, object_url("drop", key, "us-east-1"), media)


def audio_item(key: str, bit_depth: int | None = 16) -> CatalogItem:
    audio = AudioInfo(
        duration=1.0, sample_rate=44100, channels=2, codec="flac", bit_depth=bit_depth
    )
    media = MediaInfo(
        kind=MediaKind.AUDIO, mime_type="audio/flac", container="flac", size=1000, audio=audio
    )
    return CatalogItem.from_probe(event(key), "main", object_url("drop", key, "us-east-1"), media)


def image_item(key: str) -> CatalogItem:
    image = ImageInfo(width=48, height=64, format="jpeg", orientation=6)
    media = MediaInfo(
        kind=MediaKind.IMAGE, mime_type="image/jpeg", container="jpeg", size=1000, image=image
    )
    return CatalogItem.from_probe(event(key), "main", object_url("drop", key, "us-east-1"), media)


def dicom_item(
    key: str,
    series: str | None = "1.2.3",
    instance: int | None = 1,
    sop: str = "1.2.3.4",
    description: str | None = "chest",
) -> CatalogItem:
    dicom = DicomInfo(
        study_instance_uid="1.2",
        series_instance_uid=series,
        sop_instance_uid=sop,
        instance_number=instance,
        modality="CT",
        series_description=description,
        rows=4,
        columns=4,
    )
    media = MediaInfo(
        kind=MediaKind.DICOM,
        mime_type="application/dicom",
        container="dicom",
        size=1000,
        dicom=dicom,
    )
    return CatalogItem.from_probe(event(key), "main", object_url("drop", key, "us-east-1"), media)


def document_item(key: str, kind: MediaKind, mime_type: str) -> CatalogItem:
    """A PDF or a text file: no probe metadata beyond kind, type and size."""
    media = MediaInfo(kind=kind, mime_type=mime_type, container=kind.value, size=1000)
    return CatalogItem.from_probe(event(key), "main", object_url("drop", key, "us-east-1"), media)


def with_owner(item: CatalogItem, owner: dict[str, Any]) -> CatalogItem:
    """The item as if its owner had attached metadata (user metadata, tags, sidecar)."""
    media = item.media.model_copy(update={"client_metadata": owner})
    return item.model_copy(update={"media": media})


type Sealed = tuple[GroupMeta, list[CatalogItem]]


def sealed(kind: GroupKind, scope: str, title: str, members: list[CatalogItem]) -> Sealed:
    ref = GroupRef(dataset="main", kind=kind, scope=scope, title=title)
    return GroupMeta(ref=ref, status=GroupStatus.SEALED, members=len(members)), members


def mixed_dataset() -> tuple[list[CatalogItem], list[Sealed]]:
    """Every kind, an image group, an image sequence, a DICOM series, owner metadata (with a
    nested sidecar value and the owner's own `$encord` config), key frames, annotation links:
    what a real mixed drop leaves in the catalog and the group table."""
    keyframed = VIDEO.model_copy(update={"keyframes": (0, 12, 30)})
    video = video_item("cams/clip.mp4")
    video = video.model_copy(update={"media": video.media.model_copy(update={"video": keyframed})})
    video = with_owner(
        video,
        {
            "camera": "cam-7",
            "site": {"name": "reef-2", "depth_m": 12.5},
            "$encord": {"config": {"sampling_rate": 2}},
        },
    )
    links = AnnotationLinks(
        localizations={"box": AnnotationFile(url="https://m.s3.amazonaws.com/a/box.csv", rows=2)}
    )
    video = video.model_copy(
        update={"media": video.media.model_copy(update={"annotations": links})}
    )
    singles = [
        video,
        with_owner(image_item("img/portrait.jpg"), {"shift": "night"}),
        audio_item("sound/tone.flac"),
        document_item("docs/report.pdf", MediaKind.PDF, "application/pdf"),
        document_item("docs/notes.txt", MediaKind.TEXT, "text/plain"),
    ]
    frames = [image_item(f"frames/cam1/{n}.png") for n in ("b", "a")]
    sequence = [image_item(f"seq/run7/frame{n}.png") for n in (10, 2, 1)]
    series = [
        dicom_item("ct/2.dcm", instance=2, sop="1.2.3.2"),
        dicom_item("ct/1.dcm", instance=1, sop="1.2.3.1"),
    ]
    groups = [
        sealed(GroupKind.IMAGE_GROUPS, "frames/cam1", "cam1", frames),
        sealed(GroupKind.IMAGE_SEQUENCES, "seq/run7", "run7", sequence),
        sealed(GroupKind.DICOM_SERIES, "1.2.3", "chest", series),
    ]
    return singles + frames + sequence + series, groups
