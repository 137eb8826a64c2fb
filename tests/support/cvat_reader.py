"""A checker of CVAT dataset manifests, faithful to CVAT's own reader (test-only).

CVAT's reader is not obtainable here: it lives only in the cvat-ai/cvat repository and the
`cvat/server` image; no package on PyPI ships it (cvat-sdk 2.80.0, cvat-cli 2.80.0 and
datumaro 1.13.12 carry no `utils/dataset_manifest`; there is no `cvat` package). Its code may
not be copied into this repository either. So this module restates, rule by rule, what the
reader and task creation do with an image manifest read from cloud storage, each rule with
the function it comes from:

cvat-ai/cvat `utils/dataset_manifest/core.py` at b8e20d48ec648cf80deac88522a515daa4dd31e9:
- `_BaseManifestValidator.validate`: reads the first lines with `readline().strip()` and
  `json.loads`, one validator per line: `_validate_version` (`version` in
  `_Manifest.SupportedVersion`: "1.0", "1.1"), `_validate_type` (`type` == "images" for
  `_DatasetManifestStructureValidator`), `_validate_first_item` (`name` and `extension`
  are str). A failure means "not a manifest" (`is_dataset_manifest` -> False).
- `_Manifest.get_header_lines_count`: 2 header lines for images.
- `_Index.create`: after the header, every non-blank line is one image, in order.
- `_ManifestManager._json_item_is_valid` with `ImageManifestManager._required_item_attributes`
  = {"name", "extension"}: each item read must have both, not None.
- `ImageProperties.full_name` = name + extension.
cvat-ai/cvat `cvat/apps/engine/task.py` at 496f865faa0aabb765ac305364507b89a841e6c9,
`_create_thread`:
- `cloud_storage_manifest_prefix = os.path.dirname(manifest_file)`: names are relative to the
  manifest's folder in the bucket;
- "Incorrect file mapping to manifest content": a task file's path must end with
  `full_name`;
- "Can't find image ... width or height info in the manifest": for 2D data from cloud
  storage `width` and `height` must be present, and they become the frame's size.

`read(path)` applies these rules and returns the images as CVAT would take them
(full name -> (width, height)); `CvatManifestError` carries the message CVAT would give.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

SUPPORTED_VERSIONS = ("1.0", "1.1")
IMAGES_TYPE = "images"
HEADER_LINES = 2
REQUIRED_ITEM_ATTRIBUTES = ("name", "extension")


class CvatManifestError(ValueError):
    """What CVAT would refuse the manifest or the task for."""


def _structure(lines: list[str]) -> None:
    """`_DatasetManifestStructureValidator.validate`: version, type, first item."""
    try:
        version, kind, first = (json.loads(line.strip()) for line in lines[:3])
        if version["version"] not in SUPPORTED_VERSIONS:
            raise CvatManifestError("Incorrect version field")
        if kind["type"] != IMAGES_TYPE:
            raise CvatManifestError("Incorrect type field")
        if not isinstance(first["name"], str):
            raise CvatManifestError("Incorrect name field")
        if not isinstance(first["extension"], str):
            raise CvatManifestError("Incorrect extension field")
    except (ValueError, KeyError, TypeError) as exc:
        raise CvatManifestError(f"not a dataset manifest: {exc}") from exc


def read(path: Path) -> dict[str, tuple[int, int]]:
    """The images of one manifest as CVAT takes them from cloud storage: full name (relative
    to the manifest's folder) -> (width, height), in manifest order."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) < HEADER_LINES + 1:
        raise CvatManifestError("Empty manifest file")
    _structure(lines)
    images: dict[str, tuple[int, int]] = {}
    for line in lines[HEADER_LINES:]:
        if not line.strip():  # `_Index.create` skips blank lines
            continue
        item: dict[str, Any] = json.loads(line)
        for attribute in REQUIRED_ITEM_ATTRIBUTES:
            if item.get(attribute) is None:
                raise CvatManifestError(
                    f"Invalid '{path.name}' file structure: '{attribute}' is required, "
                    "but not found"
                )
        full_name = f"{item['name']}{item['extension']}"
        if item.get("width") is None or item.get("height") is None:
            raise CvatManifestError(
                f"Can't find image '{full_name}' width or height info in the manifest"
            )
        images[full_name] = (int(item["width"]), int(item["height"]))
    return images


def task_files(manifest_key: str, images: dict[str, tuple[int, int]]) -> list[str]:
    """The bucket keys a task created from this manifest maps to (`os.path.join` of the
    manifest's folder and each full name), each checked as `_create_thread` checks it."""
    prefix = posixpath.dirname(manifest_key)
    keys = []
    for full_name in images:
        key = posixpath.join(prefix, full_name)
        if not key.endswith(full_name):  # pragma: no cover - join keeps the tail
            raise CvatManifestError("Incorrect file mapping to manifest content")
        keys.append(key)
    return keys
