"""Scale Nucleus's JSON form of catalog items: `DatasetItem`s for images, `VideoScene`s for
videos and image sequences, as the official client's `from_json` reads them.

Pure: takes catalog items, returns models; never calls Nucleus. Key names and limits are
those of the `scale-nucleus` package (0.17.14; `nucleus/dataset_item.py`, `nucleus/scene.py`):
a `DatasetItem` is read from `image_url`, a `VideoScene` from `video_url` or `frames`.

Limits the client enforces, each enforced here so an export never fails the import:
- a `DatasetItem` needs a reference id and exactly one location (`__post_init__`);
- reference ids are unique among the items of one `Dataset.append`
  (`check_for_duplicate_reference_ids`): unique per export (the export refuses a repeat);
- an asynchronous append (videos must be: `Dataset.append` asserts `asynchronous=True` for
  video scenes) needs remote URLs, schemes https, http, s3 or gs (`annotation.is_local_path`,
  `check_all_paths_remote`);
- metadata must serialize with `json.dumps(..., allow_nan=False)` (`to_json`): no NaN or
  infinity (refused by name);
- a `VideoScene` of frames needs `frame_rate` > 0 and at least one frame; one from a video
  URL takes no `frame_rate` and no frames (`VideoScene.validate`);
- an asynchronous append's JSON lines may not pass `MAX_PAYLOAD_SIZE` = 0x1FFFFFE8 bytes
  (`constants.py`, checked in `utils.serialize_and_write_to_presigned_url`): the export
  splits its files below it.
Documented, not enforced by the client (the server is the judge): "A video scene can contain
a maximum of 3000 items" (`VideoScene` docstring); enforced here. Scenes' reference ids are
not checked for duplicates client-side; ours are unique by construction (`bucket/key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from media_ingest.media import MediaKind
from media_ingest.records import CatalogItem, Refusal

# VideoScene's documented ceiling: "A video scene can contain a maximum of 3000 items."
MAX_SCENE_FRAMES = 3000
# The client's cap on one asynchronous append's JSON lines (nucleus/constants.py).
MAX_PAYLOAD_BYTES = 0x1FFFFFE8
# URL schemes an asynchronous append accepts (nucleus/annotation.py is_local_path).
REMOTE_SCHEMES = frozenset({"https", "http", "s3", "gs"})
REASON = "Nucleus takes images (DatasetItem) and videos (VideoScene) only"
NOT_REMOTE = "scale-nucleus appends only remote URLs (https, http, s3, gs)"
NOT_FINITE = "scale-nucleus refuses NaN or infinite metadata values (json allow_nan=False)"
DUPLICATE = "scale-nucleus refuses a reference_id twice in one append"

type Scalar = str | int | float | bool
type Metadata = dict[str, Scalar]


class SceneError(ValueError):
    """An image sequence Nucleus would refuse as a VideoScene (empty, too long, not images)."""


class NucleusItem(BaseModel):
    """A `DatasetItem` as `DatasetItem.from_json` reads it (also a frame of a scene)."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    reference_id: str
    image_url: str
    metadata: Metadata = Field(default_factory=dict)


class NucleusScene(BaseModel):
    """A `VideoScene` as `VideoScene.from_json` reads it: a video URL, or frames and a rate.

    A scene from a video URL carries no `frame_rate`: the client's `VideoScene.validate`
    refuses one ("No frame rate is accepted when uploading a video_location"), so the probed
    rate goes in `metadata` (`fps`, `fps_fraction`; for a variable rate `avg_fps` and
    `avg_fps_fraction`: an average is never named as the rate), with the frame timing read
    from the container index (frame count, rate mode, frame duration range, edit list:
    `FrameTiming.metadata`). `frame_rate` is an integer in the client.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    reference_id: str
    video_url: str | None = None
    frame_rate: PositiveInt | None = None
    frames: list[NucleusItem] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        if not self.frames:
            del data["frames"]
        return data


def reference_id(item: CatalogItem) -> str:
    """`<bucket>/<key>`: stable across re-exports and URL styles, unique across buckets.

    An overwrite of a key keeps its reference id, which is what Nucleus's `update` flag keys
    on (metadata is replaced on reference id collision).
    """
    return f"{item.bucket}/{item.key}"


def _clean(values: dict[str, Any]) -> Metadata:
    return {k: v for k, v in values.items() if v is not None}


def _common(item: CatalogItem) -> dict[str, Any]:
    return {
        "dataset": item.dataset,
        "bucket": item.bucket,
        "key": item.key,
        "version_id": item.version_id,
        "etag": item.etag,
        "mime_type": item.mime_type,
        "size": item.size,
    }


def dataset_item(item: CatalogItem) -> NucleusItem:
    """An image as a `DatasetItem`, its probed size and orientation in `metadata`."""
    image = item.media.image
    if item.kind is not MediaKind.IMAGE or image is None:
        raise ValueError(f"{item.object_url} is {item.kind.value}, not an image")
    metadata = _common(item) | {
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "orientation": image.orientation,
    }
    return NucleusItem(
        reference_id=reference_id(item), image_url=item.object_url, metadata=_clean(metadata)
    )


def video_scene(item: CatalogItem) -> NucleusScene:
    """A video file as a `VideoScene` by URL, the probe's metadata in `metadata`."""
    video = item.media.video
    if item.kind is not MediaKind.VIDEO or video is None:
        raise ValueError(f"{item.object_url} is {item.kind.value}, not a video")
    average = "avg_" if video.variable_rate else ""
    metadata = _common(item) | {
        f"{average}fps": video.fps,
        f"{average}fps_fraction": video.fps_fraction,
        "duration": video.duration,
        "width": video.width,
        "height": video.height,
        "rotation": video.rotation,
        "codec": video.codec,
        "audio_codec": video.audio_codec,
    }
    if video.timing is not None:
        metadata |= video.timing.metadata()
    return NucleusScene(
        reference_id=reference_id(item), video_url=item.object_url, metadata=_clean(metadata)
    )


def sequence_scene(
    scene_id: str, frames: Sequence[CatalogItem], frame_rate: int, metadata: Metadata | None = None
) -> NucleusScene:
    """An ordered image sequence as one `VideoScene` of frames (at most 3,000)."""
    if not frames:
        raise SceneError(f"image sequence {scene_id!r} has no frames")
    if len(frames) > MAX_SCENE_FRAMES:
        raise SceneError(
            f"image sequence {scene_id!r} has {len(frames):,} frames; a Nucleus VideoScene "
            f"holds at most {MAX_SCENE_FRAMES:,}: split it into several scenes"
        )
    if frame_rate < 1:
        raise SceneError(f"image sequence {scene_id!r}: frame_rate must be at least 1")
    others = [f for f in frames if f.kind is not MediaKind.IMAGE]
    if others:
        raise SceneError(
            f"image sequence {scene_id!r}: {len(others)} frames are not images "
            f"(first: {others[0].object_url}, {others[0].kind.value})"
        )
    items = [dataset_item(f) for f in frames]
    if len({i.reference_id for i in items}) != len(items):
        raise SceneError(f"image sequence {scene_id!r} lists a frame twice")
    return NucleusScene(
        reference_id=scene_id, frame_rate=frame_rate, frames=items, metadata=metadata or {}
    )


def convert(item: CatalogItem) -> NucleusItem | NucleusScene | Refusal:
    """One catalog item in Nucleus's form, or why it has none (a limit the client enforces)."""

    def refused(reason: str) -> Refusal:
        return Refusal(object_url=item.object_url, kind=item.kind.value, reason=reason)

    if urlparse(item.object_url).scheme not in REMOTE_SCHEMES:
        return refused(NOT_REMOTE)
    try:
        if item.kind is MediaKind.IMAGE and item.media.image is not None:
            return dataset_item(item)
        if item.kind is MediaKind.VIDEO and item.media.video is not None:
            return video_scene(item)
    except ValidationError as exc:
        if any(e["type"] == "finite_number" for e in exc.errors()):
            return refused(NOT_FINITE)
        raise
    return refused(REASON)


class ReferenceIds:
    """The reference ids one append has seen: a repeat is refused, as the client would."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def admit(self, converted: NucleusItem | NucleusScene, url: str, kind: str) -> Refusal | None:
        if converted.reference_id in self.seen:
            return Refusal(object_url=url, kind=kind, reason=DUPLICATE)
        self.seen.add(converted.reference_id)
        return None
