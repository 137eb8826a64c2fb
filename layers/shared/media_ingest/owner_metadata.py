"""Client metadata an object's owner attaches: S3 user metadata, object tags and an optional
sidecar JSON (`<key><suffix>`), merged into the manifest entry's `clientMetadata`.

Owns the precedence (sidecar over tags over user metadata; the fields this stack writes
itself always win), the sidecar rules and the size limit. Pure: bytes and dicts in.
"""

from __future__ import annotations

import json
from typing import Any

from media_ingest.errors import ErrorCode, MediaError

# Encord takes up to 10 MB of client metadata per item, but the item and its outcome are
# DynamoDB items (400 KB each), and every append rewrites the open manifest part: an entry
# stays small. 256 KB leaves room for the probe's own fields.
MAX_CLIENT_METADATA_BYTES = 256 * 1024
# User metadata the stack itself writes (archive members' source and annotation links):
# never passed through as the owner's.
RESERVED_PREFIX = "media-ingest-"


def is_sidecar(key: str, suffix: str) -> bool:
    """A sidecar names its media by the key before the suffix (`clip.mp4` + `.json`)."""
    name = key.rsplit("/", 1)[-1]
    return bool(suffix) and name.endswith(suffix) and len(name) > len(suffix)


def sidecar_key(key: str, suffix: str) -> str:
    return key + suffix


def parse_sidecar(data: bytes, key: str) -> dict[str, Any]:
    """The sidecar's JSON object; anything else is a clear failure of the media it names."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MediaError(
            ErrorCode.INVALID_SIDECAR, f"sidecar {key} is not UTF-8 JSON: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise MediaError(
            ErrorCode.INVALID_SIDECAR,
            f"sidecar {key} must hold a JSON object, not {type(doc).__name__}",
        )
    return doc


def merge(
    user_metadata: dict[str, str], tags: dict[str, str], sidecar: dict[str, Any] | None
) -> dict[str, Any]:
    """One dict, checked against the size limit: sidecar over tags over user metadata."""
    owned = {k: v for k, v in user_metadata.items() if not k.startswith(RESERVED_PREFIX)}
    merged: dict[str, Any] = {**owned, **tags, **(sidecar or {})}
    size = len(json.dumps(merged, ensure_ascii=False).encode())
    if size > MAX_CLIENT_METADATA_BYTES:
        raise MediaError(
            ErrorCode.CLIENT_METADATA_TOO_LARGE,
            f"client metadata is {size:,} bytes; this stack keeps at most "
            f"{MAX_CLIENT_METADATA_BYTES:,} per object (Encord's own limit is 10 MB)",
        )
    return merged
