"""Label Studio's task JSON: one task per object, the data key of its kind, the probe's
metadata in `meta`, the object as the `s3://bucket/key` URI an S3 source storage resolves,
and the labelling configs each kind fits. The one home of what Label Studio takes, for the
export and the live sink alike (they build the very same task).

Pure: catalog items in, tasks or refusals out; never calls Label Studio (the sink's client
is adapters/label_studio.py).

Checked against Label Studio 1.23.2 (the server, `label_studio/` in its wheel) and
label-studio-sdk 2.1.2:
- an imported task is `{"data": {...}, "meta": {...}}`; `meta` is stored as given
  (`tasks/serializers.py`). Every task must hold the key of every object tag of the
  project's config (`"image" key is expected in task data`, 400 on import), so a project
  labels one kind and the export writes one tasks file per kind.
- `s3://bucket/key` in task data is resolved by a project's S3 storage covering that bucket
  (`io_storages/s3/utils.py` `resolve_s3_url`: `urlparse(url, allow_fragments=False)`, the
  key is the path as written, never unquoted). So the key goes in raw, and a key holding `?`
  (read as a query) or leading/trailing spaces (the data is stripped first,
  `io_storages/utils.py` `get_uri_via_regex`) cannot be resolved: refused by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from media_ingest.groups.rules import GroupRef
from media_ingest.media import MediaKind
from media_ingest.records import CatalogItem, Refusal

# The data key of each kind: the `value="$<key>"` of the object tag that shows it.
DATA_KEYS: dict[MediaKind, str] = {
    MediaKind.IMAGE: "image",
    MediaKind.VIDEO: "video",
    MediaKind.AUDIO: "audio",
    MediaKind.TEXT: "text",
    MediaKind.PDF: "pdf",
}
NO_TAG = "Label Studio has no object tag for {kind}"
UNRESOLVABLE = (
    "Label Studio's S3 storage cannot resolve this key: it reads '?' as a query and strips "
    "leading and trailing spaces"
)

# The smallest config each kind fits: its object tag on `$<data key>` and one control to
# label with (rename the labels; keep the object tag). The Text tag loads the file from its
# URL (`valueType="url"`), the Pdf tag shows the document.
LABEL_CONFIGS: dict[MediaKind, str] = {
    MediaKind.IMAGE: """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="object"/>
  </RectangleLabels>
</View>""",
    MediaKind.VIDEO: """<View>
  <Video name="video" value="$video"/>
  <VideoRectangle name="box" toName="video"/>
  <Labels name="label" toName="video">
    <Label value="object"/>
  </Labels>
</View>""",
    MediaKind.AUDIO: """<View>
  <Audio name="audio" value="$audio"/>
  <Labels name="label" toName="audio">
    <Label value="sound"/>
  </Labels>
</View>""",
    MediaKind.TEXT: """<View>
  <Text name="text" value="$text" valueType="url"/>
  <Labels name="label" toName="text">
    <Label value="entity"/>
  </Labels>
</View>""",
    MediaKind.PDF: """<View>
  <Pdf name="pdf" value="$pdf"/>
  <Choices name="class" toName="pdf">
    <Choice value="relevant"/>
    <Choice value="irrelevant"/>
  </Choices>
</View>""",
}


class UnresolvableKey(ValueError):
    """An object key Label Studio's S3 storage would resolve to another object."""


class LabelStudioTask(BaseModel):
    """One task as Label Studio imports it (`kind` is ours: which project config fits)."""

    model_config = ConfigDict(frozen=True)

    kind: MediaKind = Field(exclude=True)
    data: dict[str, str]
    meta: dict[str, Any]

    @property
    def data_key(self) -> str:
        return DATA_KEYS[self.kind]

    @property
    def uri(self) -> str:
        """What identifies the task in a project: its object's `s3://` URI."""
        return self.data[self.data_key]

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def s3_uri(bucket: str, key: str) -> str:
    """The object as a Label Studio S3 storage resolves it: `s3://bucket/key`, key raw."""
    if "?" in key or key != key.strip():
        raise UnresolvableKey(UNRESOLVABLE)
    return f"s3://{bucket}/{key}"


def task_for(item: CatalogItem, group: GroupRef | None = None) -> LabelStudioTask | Refusal:
    """The task of one registered object, or why Label Studio cannot carry it. `group`: the
    image group, sequence or series the object belongs to (in `meta`, for filtering)."""
    data_key = DATA_KEYS.get(item.kind)
    if data_key is None:
        reason = NO_TAG.format(kind=item.kind.value)
        return Refusal(object_url=item.object_url, kind=item.kind.value, reason=reason)
    try:
        uri = s3_uri(item.bucket, item.key)
    except UnresolvableKey as exc:
        return Refusal(object_url=item.object_url, kind=item.kind.value, reason=str(exc))
    return LabelStudioTask(kind=item.kind, data={data_key: uri}, meta=task_meta(item, group))


def task_meta(item: CatalogItem, group: GroupRef | None = None) -> dict[str, Any]:
    """What Label Studio keeps beside the task: where the object is, what the probe learnt,
    what its owner attached, its annotation files and its group."""
    media = item.media
    meta: dict[str, Any] = {
        "object_url": item.object_url,
        "dataset": item.dataset,
        "bucket": item.bucket,
        "key": item.key,
        "etag": item.etag,
        "kind": item.kind.value,
        "mime_type": item.mime_type,
        "size": item.size,
    }
    if item.version_id:
        meta["version_id"] = item.version_id
    probed = media.video or media.audio or media.image
    if probed is not None:
        meta["probe"] = probed.model_dump(mode="json", exclude_none=True)
    if media.client_metadata:
        meta["owner"] = media.client_metadata
    if media.annotations is not None:
        meta["annotations"] = media.annotations.model_dump(mode="json")
    if group is not None:
        meta["group"] = {"kind": group.kind.value, "scope": group.scope}
    return meta
