"""Encord's cloud-registration format: entries, their metadata blocks, the file's sections,
the CSV form, and every Encord limit. The one home of what Encord accepts.

An entry Encord would refuse cannot be built here (`EntryTooLarge`), so no caller can
forget a check. Pure: catalog items and group members in, entries and rows out; how parts
of a manifest are stored and appended is manifests/writer.py's business.

Checked against the official `encord` SDK (0.1.211, `encord/orm/storage.py`): the tests
validate every part they write with `DataUploadItems` and also fail on any key its models
do not know (they drop unknown keys silently; tests/support/encord_oracle.py). What that
settled:
- the PDF section is `pdf` (`DataUploadItems.pdf: List[DataUploadPDF]`; `StorageFolder
  .upload_pdf` builds `DataUploadItems(pdf=[...])`); no `pdfs` exists anywhere in the SDK or
  on docs.encord.com. Parts written before this fix say `pdfs`, which Encord ignores: they
  are read back as `pdf` (LEGACY_SECTIONS), so the writer and the export repair them.
- `upsert_metadata` is a top-level flag beside `skip_duplicate_urls` ("update metadata of
  existing items with the same URL in the same folder. This flag has no effect if
  skip_duplicate_urls is set to False"). Parts of an `UpdateDatasets` dataset carry it, so an
  update re-registered in a later part replaces the metadata Encord holds. Encord's JSON
  page (index-register-cloud-data) does not list the flag; the SDK's structured form has it.
- the SDK enforces none of Encord's documented limits; they are enforced here: 16 KB per URL
  and per-file counts (index-register-cloud-data), and 300 characters for a name
  ("Encord supports file names up to 300 characters", annotate-register-gcp-data).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict

from media_ingest import owner_metadata
from media_ingest.errors import ErrorCode, MediaError, Stage
from media_ingest.groups.rules import GroupKind, GroupRef, ordered
from media_ingest.media import MediaKind, VideoInfo
from media_ingest.records import CatalogItem, Refusal

# Encord's limits on one registration file and one URL.
MAX_ITEMS_PER_FILE = 500_000
MAX_URLS_PER_FILE = 1_000_000
MAX_URL_BYTES = 16 * 1024
# "Encord supports file names up to 300 characters in length": a longer title is shortened
# (encord_title), never refused: it is a display name, and the full key stays in
# clientMetadata.
MAX_TITLE_CHARS = 300
TITLE_ELLIPSIS = "…"

# The file's top-level keys, in the order a part is written. An image sequence is an
# `image_groups` entry with `"createVideo": true`: there is no `image_sequences` key.
SECTIONS = ("videos", "images", "image_groups", "dicom_series", "audio", "pdf", "text")
# Section names our parts used before they were checked with the SDK: `pdfs` (Encord's name
# is `pdf`; it ignored ours). Read as the current name, never written.
LEGACY_SECTIONS = {"pdfs": "pdf"}
_SECTION_OF_KIND = {
    MediaKind.VIDEO: "videos",
    MediaKind.IMAGE: "images",
    MediaKind.DICOM: "dicom_series",
    MediaKind.AUDIO: "audio",
    MediaKind.PDF: "pdf",
    MediaKind.TEXT: "text",
}
_SECTION_OF_GROUP = {
    GroupKind.IMAGE_GROUPS: "image_groups",
    GroupKind.IMAGE_SEQUENCES: "image_groups",
    GroupKind.DICOM_SERIES: "dicom_series",
}

# Encord's reserved key in clientMetadata for video import settings (probing/mp4_index.py
# has the sources). Our key frames use Encord's documented defaults, spelled out: 1 frame
# per second sampled as well, frame numbers (not seconds) in `keyframes`.
ENCORD_BLOCK = "$encord"
KEYFRAME_CONFIG = {"sampling_rate": 1, "keyframe_mode": "frame"}

# When a video entry carries `videoMetadata` (template parameter EncordVideoMetadata).
# https://docs.encord.com/platform-documentation/General/annotate-data-integrations: it is
# "crucial for aligning annotations to the correct frame"; when it is given Encord uses it
# "without performing any additional validation", and it is required with a Strict
# client-only access integration. So an average rate given for a variable-rate video puts
# labels on the wrong frames. `constant`: only when the container index proves a constant
# rate; `unless-variable`: also when the rate could not be read (AVI, MPEG-TS, a Matroska
# file past its first range: what every video got before the index was read); `always`:
# every video, variable ones with their average rate (Strict client-only access needs it).
type VideoMetadataPolicy = Literal["constant", "unless-variable", "always"]
DEFAULT_VIDEO_METADATA: VideoMetadataPolicy = "constant"


class EntryTooLarge(MediaError):
    """An entry Encord would refuse (a URL over 16 KB, more URLs than one file holds)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.ENTRY_TOO_LARGE, message, Stage.MANIFEST)


class EncordVideoMetadata(BaseModel):
    """Encord's `videoMetadata`: given in full, Encord skips its own probe of the file."""

    fps: float
    duration: float
    width: int
    height: int
    file_size: int
    mime_type: str


class EncordAudioMetadata(BaseModel):
    """Encord's `audioMetadata`: every field is required when the block is given."""

    duration: float
    file_size: int
    mime_type: str
    sample_rate: int
    bit_depth: int
    codec: str
    num_channels: int


class EncordImageMetadata(BaseModel):
    width: int
    height: int
    file_size: int
    mime_type: str


class Entry(BaseModel):
    """One entry of one section of an Encord registration file; only ones Encord accepts."""

    model_config = ConfigDict(frozen=True)

    section: str
    payload: dict[str, Any]

    def model_post_init(self, _context: Any) -> None:
        urls = self.urls
        if not urls:
            raise ValueError(f"an Encord {self.section} entry needs an object URL")
        if len(urls) > MAX_URLS_PER_FILE:
            raise EntryTooLarge(
                f"entry {urls[0]} has {len(urls):,} URLs; one file holds at most "
                f"{MAX_URLS_PER_FILE:,}"
            )
        if any(len(url.encode()) > MAX_URL_BYTES for url in urls):
            raise EntryTooLarge("object URL is longer than Encord's 16 KB")
        if len(str(self.payload.get("title", ""))) > MAX_TITLE_CHARS:
            raise ValueError(f"an Encord title holds at most {MAX_TITLE_CHARS} characters")

    @property
    def urls(self) -> tuple[str, ...]:
        return urls_of(self.payload)

    @property
    def key(self) -> str:
        """What makes two entries the same entry: the first URL."""
        return self.urls[0]


def urls_of(payload: dict[str, Any]) -> tuple[str, ...]:
    """An entry's URLs: `objectUrl`, or `objectUrl_0..n` (groups, series) in order."""
    if "objectUrl" in payload:
        return (str(payload["objectUrl"]),)
    numbered = sorted(
        (int(name.removeprefix("objectUrl_")), str(value))
        for name, value in payload.items()
        if name.startswith("objectUrl_")
    )
    return tuple(url for _, url in numbered)


def registration_file(
    sections: dict[str, list[dict[str, Any]]], *, upsert_metadata: bool = False
) -> dict[str, Any]:
    """The file as Encord imports it: sections in a fixed order, duplicates skipped; with
    `upsert_metadata`, an entry whose URL Encord holds already replaces its metadata."""
    doc: dict[str, Any] = {name: sections[name] for name in SECTIONS if name in sections}
    doc["skip_duplicate_urls"] = True
    if upsert_metadata:
        doc["upsert_metadata"] = True
    return doc


def file_sections(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The non-empty sections of a registration file (the inverse of registration_file);
    a legacy section name is read as the current one."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for name, value in doc.items():
        current = LEGACY_SECTIONS.get(name, name)
        if current in SECTIONS and value:
            sections.setdefault(current, []).extend(value)
    return {name: sections[name] for name in SECTIONS if name in sections}


def has_legacy_sections(doc: dict[str, Any]) -> bool:
    """Whether a stored file still uses a section name Encord does not know."""
    return any(name in doc for name in LEGACY_SECTIONS)


def encord_title(text: str) -> str:
    """A title within Encord's 300 characters: a longer one keeps its end (the file name
    and extension are what an annotator reads), led by an ellipsis."""
    if len(text) <= MAX_TITLE_CHARS:
        return text
    return TITLE_ELLIPSIS + text[-(MAX_TITLE_CHARS - len(TITLE_ELLIPSIS)) :]


def encord_block(keyframes: tuple[int, ...]) -> dict[str, Any]:
    """The `$encord` block for these key frames. Never the owner's: `$encord` is reserved to
    the stack (owner_metadata.STACK_FIELDS), like every field the stack writes."""
    return {"keyframes": list(keyframes), "config": dict(KEYFRAME_CONFIG)}


def entry_for(
    item: CatalogItem, video_metadata: VideoMetadataPolicy = DEFAULT_VIDEO_METADATA
) -> Entry:
    """The Encord entry for one registered item, with the probe's metadata filled in.

    Raises EntryTooLarge for an item Encord would refuse."""
    media = item.media
    # The owner's metadata first, without the fields reserved to the stack (stripped when
    # probed; again here for items catalogued before a field was reserved).
    client: dict[str, Any] = {
        **owner_metadata.owned(media.client_metadata),
        "bucket": item.bucket,
        "key": item.key,
        "etag": item.etag,
        "dataset": item.dataset,
        "mime_type": item.mime_type,
    }
    if item.version_id:
        client["version_id"] = item.version_id
    if item.content is not None and item.content.duplicate_of:
        # The same bytes are registered under this URL first (ingest/identity.py).
        client["duplicate_of"] = item.content.duplicate_of
    payload: dict[str, Any] = {"objectUrl": item.object_url, "title": encord_title(item.title)}
    if media.video is not None:
        _add_video(media.video, item, payload, client, video_metadata)
    elif media.audio is not None:
        audio = media.audio
        if audio.duration is not None and audio.bit_depth is not None:
            payload["audioMetadata"] = EncordAudioMetadata(
                duration=audio.duration,
                file_size=item.size,
                mime_type=item.mime_type,
                sample_rate=audio.sample_rate,
                bit_depth=audio.bit_depth,
                codec=audio.codec,
                num_channels=audio.channels,
            ).model_dump()
    if media.image is not None:
        payload["imageMetadata"] = EncordImageMetadata(
            width=media.image.width,
            height=media.image.height,
            file_size=item.size,
            mime_type=item.mime_type,
        ).model_dump()
        client["orientation"] = media.image.orientation
    if media.dicom is not None:
        client.update(media.dicom.model_dump(exclude_none=True))
        # A DICOM series entry lists its files as objectUrl_0..n. With grouping on (a group
        # table), files join their series (groups/) and this entry is never written;
        # without it each file is its own one-file series.
        payload = {"title": encord_title(item.title), "objectUrl_0": item.object_url}
    if media.annotations is not None:
        client["annotations"] = media.annotations.model_dump()
    payload["clientMetadata"] = client
    return Entry(section=_SECTION_OF_KIND[item.kind], payload=payload)


def sends_video_metadata(video: VideoInfo, policy: VideoMetadataPolicy) -> bool:
    """Whether this video's entry carries `videoMetadata` under `policy` (see above)."""
    if video.duration is None:
        return False  # Encord needs every field of the block
    variable = video.variable_rate
    if policy == "constant":
        return variable is False
    if policy == "unless-variable":
        return variable is not True
    return True


def _add_video(
    video: VideoInfo,
    item: CatalogItem,
    payload: dict[str, Any],
    client: dict[str, Any],
    policy: VideoMetadataPolicy,
) -> None:
    if video.duration is not None and sends_video_metadata(video, policy):
        payload["videoMetadata"] = EncordVideoMetadata(
            fps=video.fps,
            duration=video.duration,
            width=video.width,
            height=video.height,
            file_size=item.size,
            mime_type=item.mime_type,
        ).model_dump()
    client.update(
        codec=video.codec,
        rotation=video.rotation,
        coded_width=video.coded_width,
        coded_height=video.coded_height,
    )
    # A variable rate has no fps: its average is named as one, never as the rate.
    client["avg_fps_fraction" if video.variable_rate else "fps_fraction"] = video.fps_fraction
    if video.timing is not None:
        client.update(video.timing.metadata())
    if video.audio_codec:
        client["audio_codec"] = video.audio_codec
    if video.keyframes is not None:
        client[ENCORD_BLOCK] = encord_block(video.keyframes)


def group_entry(ref: GroupRef, members: Sequence[CatalogItem]) -> Entry:
    """A group's one entry: `title`, `objectUrl_0..n` in member order, metadata."""
    frames = ordered(ref.kind, members)
    if not frames:
        raise ValueError(f"group {ref.group_id} has no members")
    payload: dict[str, Any] = {"title": encord_title(ref.title)}
    payload |= {f"objectUrl_{i}": item.object_url for i, item in enumerate(frames)}
    client: dict[str, Any] = {
        "dataset": ref.dataset,
        "bucket": frames[0].bucket,
        "group": ref.scope,
        "files": len(frames),
    }
    if ref.kind is GroupKind.DICOM_SERIES:
        dicom = frames[0].media.dicom
        if dicom is not None:
            series = {"series_instance_uid", "study_instance_uid", "modality", "series_description"}
            client |= dicom.model_dump(include=series, exclude_none=True)
    else:
        payload["createVideo"] = ref.kind is GroupKind.IMAGE_SEQUENCES
    payload["clientMetadata"] = client
    return Entry(section=_SECTION_OF_GROUP[ref.kind], payload=payload)


# -- the CSV form -------------------------------------------------------------------------
CSV_COLUMNS = ("ObjectUrl", "Title", "Create video")
CSV_REASON = "the Encord CSV form carries videos and image groups/sequences only"


class CsvRow(BaseModel):
    """One CSV row: one video, or one frame of an image group or sequence.

    `Create video` is Encord's `createVideo` flag of an image group (true: the group becomes
    an image sequence, a video made of its frames; false: an image group). It means nothing
    for a video file, so video rows leave it empty. The frames of one group share its title
    and follow in frame order.
    """

    model_config = ConfigDict(frozen=True)

    object_url: str
    title: str
    create_video: bool | None = None

    def cells(self) -> dict[str, str]:
        flag = "" if self.create_video is None else str(self.create_video).lower()
        return {"ObjectUrl": self.object_url, "Title": self.title, "Create video": flag}


@dataclass
class CsvExport:
    rows: list[CsvRow] = field(default_factory=list)
    entries: int = 0
    refused: list[Refusal] = field(default_factory=list)


def csv_rows(entries: Iterable[Entry], into: CsvExport | None = None) -> CsvExport:
    """The rows of the entries the CSV form carries (videos, image groups and sequences);
    the others as refusals, never dropped."""
    out = into if into is not None else CsvExport()
    for entry in entries:
        payload = entry.payload
        if entry.section == "videos":
            out.rows.append(CsvRow(object_url=entry.key, title=str(payload.get("title", ""))))
        elif entry.section == "image_groups":
            title = str(payload.get("title", ""))
            flag = bool(payload.get("createVideo", False))
            out.rows.extend(
                CsvRow(object_url=url, title=title, create_video=flag) for url in urls_of(payload)
            )
        else:
            out.refused.append(Refusal(object_url=entry.key, kind=entry.section, reason=CSV_REASON))
            continue
        out.entries += 1
    return out


def write_csv(rows: Iterable[CsvRow], stream: TextIO) -> None:
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.cells() for row in rows)
