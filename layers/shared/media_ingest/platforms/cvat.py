"""CVAT's dataset manifest (`manifest.jsonl`) for images in cloud storage: what CVAT reads to
create a task from a bucket without opening every image. Images only: a video's manifest is
refused (VIDEO_REASON). The one home of what CVAT takes.

Pure: catalog items in, manifest lines or refusals out; built from the catalog, nothing
downloaded. Written from CVAT's reader, cvat-ai/cvat `utils/dataset_manifest/core.py` at
b8e20d48ec648cf80deac88522a515daa4dd31e9 and `cvat/apps/engine/task.py` at
496f865faa0aabb765ac305364507b89a841e6c9 (the code is not on any package registry and is not
copied here; tests/support/cvat_reader.py checks our files against the same rules):
- two header lines, `{"version": "1.1"}` then `{"type": "images"}`, then one JSON object per
  image on one line each (`ImageManifestManager._write_base_information`, `_write_core_part`);
- each image needs `name` and `extension` (`_required_item_attributes`), and from cloud
  storage `width` and `height` too (`_create_thread`: "Can't find image ... width or height
  info in the manifest"); `checksum` and `meta` are optional. `width`/`height` are the image
  as displayed: CVAT's own writer swaps them for EXIF orientations above 4
  (`DatasetImagesReader._get_img_properties`), which is what our probe records;
- names are relative to the manifest's folder in the bucket (`cloud_storage_manifest_prefix
  = os.path.dirname(manifest_file)`) and a task's file must end with `name + extension`:
  with the manifest at the bucket's root, `name` is the key without its extension.
- `checksum` would be the md5 of the decoded pixels (`utils.py` `md5_hash`), which only a
  download gives: left out.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from media_ingest.media import MediaKind
from media_ingest.records import CatalogItem, Refusal

MANIFEST_FILE = "manifest.jsonl"
VERSION = "1.1"
IMAGES_TYPE = "images"
VIDEO_REASON = (
    "not from the catalog: CVAT checks a video manifest by seeking to each key frame's pts and "
    "decoding it (VideoManifestValidator.validate_seek_key_frames) and takes properties.length "
    "as the decoded frame count; our key frames come from the MP4 index without decoding, so "
    "their pts cannot be promised to match. Add the video without a manifest: CVAT builds one"
)
OTHER_REASON = "CVAT's cloud-storage manifests list images and videos only"
NO_EXTENSION = "CVAT maps a cloud file to its manifest line by name and extension: the key has none"


class ManifestImage(BaseModel):
    """One image line, as CVAT's `ImageManifestManager` writes and reads it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="the key without its extension (manifest at the bucket root)")
    extension: str = Field(pattern=r"^\.[^/]+$")
    width: int = Field(gt=0)
    height: int = Field(gt=0)


def manifest_image(item: CatalogItem) -> ManifestImage | Refusal:
    """An image's manifest line, or why CVAT cannot take the object from a manifest."""
    image = item.media.image
    if item.kind is MediaKind.VIDEO:
        return Refusal(object_url=item.object_url, kind=item.kind.value, reason=VIDEO_REASON)
    if item.kind is not MediaKind.IMAGE or image is None:
        return Refusal(object_url=item.object_url, kind=item.kind.value, reason=OTHER_REASON)
    name, extension = posixpath.splitext(item.key)
    if not extension or not name or name.endswith("/"):
        return Refusal(object_url=item.object_url, kind=item.kind.value, reason=NO_EXTENSION)
    return ManifestImage(name=name, extension=extension, width=image.width, height=image.height)


def manifest_lines(images: Iterable[ManifestImage]) -> Iterator[str]:
    """The file, line by line (each ends with a newline; no blank line anywhere)."""
    yield json.dumps({"version": VERSION}, separators=(",", ":")) + "\n"
    yield json.dumps({"type": IMAGES_TYPE}, separators=(",", ":")) + "\n"
    for image in images:
        yield image.model_dump_json() + "\n"
