"""Client metadata an object's owner attaches: S3 user metadata, object tags and an optional
sidecar JSON (`<key><suffix>`), merged into the manifest entry's `clientMetadata`.

Owns the precedence (sidecar over tags over user metadata), the names reserved to the stack
(stripped from all three before anything reads them: the stack's own fields, such as
`version_id`, `annotations` or Encord's `$encord`, are never the owner's to set), the
sidecar rules and the size limit, counted as the metadata is stored. Pure: bytes and dicts in.
"""

from __future__ import annotations

import json
from typing import Any

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.observability import logger

# Encord takes up to 10 MB of client metadata per item, but the item and its outcome are
# DynamoDB items (400 KB each), and every append rewrites the open manifest part: an entry
# stays small. 256 KB leaves room for the probe's own fields. Counted as JSON with every
# non-ASCII character escaped, the largest form it is stored in (Powertools writes the
# outcome ledger that way: one emoji, 4 bytes of UTF-8, is 12 bytes there).
MAX_CLIENT_METADATA_BYTES = 256 * 1024
# User metadata the stack itself writes (archive members' source): never the owner's.
RESERVED_PREFIX = "media-ingest-"
# Client metadata is serialized by pydantic, json and DynamoDB's encoder, which all recurse;
# no labelling tool needs more levels than this.
MAX_SIDECAR_DEPTH = 32
# Fields the stack writes into an entry's client metadata itself (platforms/encord.py,
# groups): an owner's field of the same name would stand in for the stack's whenever the
# stack leaves it unset (`version_id` of an unversioned bucket, `audio_codec` of a silent
# video, `annotations` of a file outside any archive). tests/unit/test_client_metadata.py
# checks that every field a platform module writes is here.
STACK_FIELDS = frozenset(
    {
        "$encord",
        "annotations",
        "audio_codec",
        "avg_fps_fraction",
        "bucket",
        "codec",
        "coded_height",
        "coded_width",
        "columns",
        "dataset",
        "etag",
        "files",
        "first_frame_time",
        "fps_fraction",
        "frame_count",
        "frame_duration_max",
        "frame_duration_min",
        "frame_rate_mode",
        "frame_timing_unknown",
        "group",
        "instance_number",
        "key",
        "mime_type",
        "modality",
        "orientation",
        "presentation_duration",
        "rotation",
        "rows",
        "series_description",
        "series_instance_uid",
        "sop_instance_uid",
        "study_instance_uid",
        "version_id",
    }
)


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
    except RecursionError:
        raise MediaError(
            ErrorCode.INVALID_SIDECAR, f"sidecar {key} nests deeper than JSON can be read"
        ) from None
    if not isinstance(doc, dict):
        raise MediaError(
            ErrorCode.INVALID_SIDECAR,
            f"sidecar {key} must hold a JSON object, not {type(doc).__name__}",
        )
    if _depth(doc) > MAX_SIDECAR_DEPTH:
        raise MediaError(
            ErrorCode.INVALID_SIDECAR,
            f"sidecar {key} nests deeper than {MAX_SIDECAR_DEPTH} levels",
        )
    return doc


def _depth(value: object) -> int:
    """How deep a parsed JSON value nests (iteratively: the value may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def owned(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` without the names reserved to the stack."""
    return {
        k: v
        for k, v in fields.items()
        if k not in STACK_FIELDS and not k.lower().startswith(RESERVED_PREFIX)
    }


def merge(
    user_metadata: dict[str, str], tags: dict[str, str], sidecar: dict[str, Any] | None
) -> dict[str, Any]:
    """One dict, checked against the size limit: sidecar over tags over user metadata, each
    without the names reserved to the stack."""
    given: dict[str, Any] = {**user_metadata, **tags, **(sidecar or {})}
    merged = owned(given)
    if dropped := sorted(set(given) - set(merged)):
        logger.warning(
            "owner metadata fields reserved to the stack ignored",
            extra={"fields": [name[:64] for name in dropped[:20]]},
        )
    size = len(json.dumps(merged).encode())
    if size > MAX_CLIENT_METADATA_BYTES:
        raise MediaError(
            ErrorCode.CLIENT_METADATA_TOO_LARGE,
            f"client metadata is {size:,} bytes as stored (JSON, non-ASCII escaped); this "
            "stack keeps at most "
            f"{MAX_CLIENT_METADATA_BYTES:,} per object (Encord's own limit is 10 MB)",
        )
    return merged
