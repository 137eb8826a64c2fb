"""The official `encord` SDK as the judge of our Encord registration files (test-only).

`check(doc)` lists every problem the SDK's own models find in one manifest part, and more:
its DTOs are `extra="ignore"` (`encord/orm/base_dto/base_dto_pydantic_v2.py`, `BaseDTO`),
so a key they do not know (a section such as `pdfs`, a typo in an entry, a stray key in
`videoMetadata`) would vanish without a word. Validation runs with pydantic's per-call
`extra="forbid"` (pydantic >= 2.14), which reports such keys at any depth with their
location, and the entries the SDK keeps are counted against the file's.

The one mechanical conversion: the JSON-file form lists the frames of an image group or a
DICOM series as `objectUrl_0..n` (docs.encord.com, "objectUrl_{position_number}"), the
SDK's structured form (`DataUploadItems`) as `images[].url` / `dicomFiles[].url`. Every other
key is passed as it is. `clientMetadata` is a free `Dict` in every DTO: its `$encord` block is
checked against the SDK's metadata-schema rules instead (`encord/metadata_schema.py`,
`_is_valid_metadata_key`: `$`-keys are reserved, `keyframes` a deprecated special key).
"""

from __future__ import annotations

from typing import Any

import pytest
from encord.metadata_schema import _is_valid_metadata_key
from encord.orm.storage import DataUploadItems
from pydantic import ValidationError

# section -> (its list key in DataUploadItems, keys each converted frame must carry)
NUMBERED: dict[str, tuple[str, dict[str, Any]]] = {
    "image_groups": ("images", {}),
    # DataUploadDicomSeriesDicomFile.title is Optional[str] with no default: required, nullable.
    "dicom_series": ("dicomFiles", {"title": None}),
}
# DataUploadItems' list fields: what a file's sections may be called.
SECTIONS = {
    name
    for name, info in DataUploadItems.model_fields.items()
    if getattr(info.annotation, "__origin__", None) is list
}
RESERVED_BLOCK = "$encord"
KEYFRAME_MODES = {"frame", "seconds"}


def as_upload_items(doc: dict[str, Any]) -> dict[str, Any]:
    """The file in the SDK's structured form (group frames as lists, nothing else changed)."""
    out = dict(doc)
    for section, (list_key, extra) in NUMBERED.items():
        if section not in doc:
            continue
        converted = []
        for entry in doc[section]:
            numbered = sorted(
                (int(k.removeprefix("objectUrl_")), k) for k in entry if k.startswith("objectUrl_")
            )
            rest = {k: v for k, v in entry.items() if not k.startswith("objectUrl_")}
            rest[list_key] = [{"url": entry[k], **extra} for _, k in numbered]
            converted.append(rest)
        out[section] = converted
    return out


def _entries(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (section, entry)
        for section, value in doc.items()
        if isinstance(value, list)
        for entry in value
        if isinstance(entry, dict)
    ]


def _metadata_problems(where: str, client: object) -> list[str]:
    if not isinstance(client, dict):
        return [f"{where}.clientMetadata: not an object"]
    problems = [
        f"{where}.clientMetadata.{key}: not a key Encord's metadata schema accepts"
        for key in client
        if key != RESERVED_BLOCK and not _is_valid_metadata_key(key)
    ]
    block = client.get(RESERVED_BLOCK)
    if block is None:
        return problems
    if not isinstance(block, dict) or set(block) - {"keyframes", "config"}:
        return [*problems, f"{where}.$encord: only keyframes and config belong there"]
    frames = block.get("keyframes")
    if not (
        isinstance(frames, list)
        and all(isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in frames)
        and frames == sorted(set(frames))
    ):
        problems.append(f"{where}.$encord.keyframes: not increasing frame numbers")
    config = block.get("config", {})
    if not isinstance(config, dict) or config.get("keyframe_mode", "frame") not in KEYFRAME_MODES:
        problems.append(f"{where}.$encord.config: keyframe_mode must be frame or seconds")
    return problems


def check(doc: dict[str, Any]) -> list[str]:
    """Every problem the SDK finds in one registration file, as `<type> <location>: ...`."""
    items = as_upload_items(doc)
    problems: list[str] = []
    try:
        parsed = DataUploadItems.model_validate(items, extra="forbid")
    except ValidationError as error:
        return [f"{e['type']} {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    for section in SECTIONS & set(items):
        kept = getattr(parsed, section)
        if len(kept) != len(items[section]):  # pragma: no cover - forbid catches it first
            problems.append(f"dropped {section}: {len(items[section])} in, {len(kept)} kept")
    for section, entry in _entries(doc):
        where = f"{section}.{entry.get('title') or entry.get('objectUrl') or '?'}"
        if "clientMetadata" in entry:
            problems += _metadata_problems(where, entry["clientMetadata"])
    return problems


def assert_loads(doc: dict[str, Any]) -> DataUploadItems:
    """The file as the SDK loads it; fails the test on any problem `check` finds."""
    problems = check(doc)
    if problems:
        pytest.fail("the encord SDK does not load this part as written:\n" + "\n".join(problems))
    return DataUploadItems.model_validate(as_upload_items(doc))
