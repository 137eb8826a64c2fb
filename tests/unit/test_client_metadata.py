"""Client metadata: precedence, sidecar rules and the size limit."""

from __future__ import annotations

import json

import pytest

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.owner_metadata import (
    MAX_CLIENT_METADATA_BYTES,
    STACK_FIELDS,
    is_sidecar,
    merge,
    parse_sidecar,
)
from media_ingest.platforms.encord import entry_for
from media_ingest.routing import Router
from tests.support.items import (
    UNKNOWN_TIMING,
    VFR_TIMING,
    audio_item,
    dicom_item,
    image_item,
    video_item,
)


def test_sidecar_over_tags_over_user_metadata() -> None:
    merged = merge(
        {"site": "from-metadata", "camera": "cam-7"},
        {"site": "from-tags", "shift": "night"},
        {"site": "from-sidecar", "weather": {"sky": "clear"}},
    )
    assert merged == {
        "site": "from-sidecar",
        "camera": "cam-7",
        "shift": "night",
        "weather": {"sky": "clear"},
    }
    assert merge({}, {}, None) == {}
    # The stack's own metadata on extracted archive members is not the owner's.
    assert merge({"media-ingest-source": "etag", "camera": "c"}, {}, None) == {"camera": "c"}


def test_the_stack_s_own_fields_win_in_the_entry() -> None:
    item = video_item("cams/a.mp4")
    owned = item.model_copy(
        update={"media": item.media.model_copy(update={"client_metadata": {"key": "x", "k": 1}})}
    )
    client = entry_for(owned).payload["clientMetadata"]
    assert client["key"] == "cams/a.mp4" and client["k"] == 1


def test_oversized_metadata_is_a_clear_failure() -> None:
    big = {"notes": "x" * MAX_CLIENT_METADATA_BYTES}
    with pytest.raises(MediaError) as raised:
        merge({}, {}, big)
    assert raised.value.code is ErrorCode.CLIENT_METADATA_TOO_LARGE
    assert "10 MB" in raised.value.message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(b"{not json", "not UTF-8 JSON"), (b"\xff\xfe", "not UTF-8 JSON"), (b"[1, 2]", "not list")],
)
def test_a_sidecar_must_be_a_json_object(data: bytes, fragment: str) -> None:
    with pytest.raises(MediaError) as raised:
        parse_sidecar(data, "a.mp4.json")
    assert raised.value.code is ErrorCode.INVALID_SIDECAR and fragment in raised.value.message
    assert parse_sidecar(json.dumps({"a": 1}).encode(), "a.mp4.json") == {"a": 1}


def test_sidecars_are_recognised_only_when_enabled() -> None:
    assert is_sidecar("cams/clip.mp4.json", ".json")
    assert not is_sidecar("cams/.json", ".json")  # no media name before the suffix
    assert not is_sidecar("cams/clip.mp4.json", "")
    on = Router("main", {}, (), ".json")
    assert on.route("cams/clip.mp4.json").ignored_by == "sidecar (*.json)"
    assert on.route("cams/clip.mp4").dataset == "main"
    assert Router("main", {}, ()).route("cams/clip.mp4.json").dataset == "main"


# -- fields the stack owns, sizes as stored (issue 11) --------------------------------------
def _every_stack_field_written() -> set[str]:
    """Every client-metadata key the platform modules write themselves, for items of every
    kind with every optional field set, and for a group's entry."""
    from media_ingest.groups.rules import GroupKind, GroupRef
    from media_ingest.media import AnnotationFile, AnnotationLinks
    from media_ingest.platforms.encord import group_entry

    links = AnnotationLinks(localizations={"box": AnnotationFile(url="u", rows=1)})
    video = video_item("a.mp4")
    assert video.media.video is not None
    media = video.media.model_copy(
        update={
            "video": video.media.video.model_copy(update={"keyframes": (0,)}),
            "annotations": links,
        }
    )
    items = [
        video.model_copy(update={"media": media, "version_id": "v1"}),
        video_item("phone/vfr.mov", timing=VFR_TIMING),
        video_item("odd.mkv", timing=UNKNOWN_TIMING),
        audio_item("a.flac"),
        image_item("a.jpg"),
        dicom_item("a.dcm"),
    ]
    written = {key for item in items for key in entry_for(item).payload["clientMetadata"]}
    for kind in GroupKind:
        ref = GroupRef(dataset="main", kind=kind, scope="s/", title="t")
        member = dicom_item("s/1.dcm") if kind is GroupKind.DICOM_SERIES else image_item("s/1.jpg")
        written |= set(group_entry(ref, [member]).payload["clientMetadata"])
    return written


def test_every_field_the_stack_writes_is_reserved() -> None:
    assert _every_stack_field_written() <= STACK_FIELDS


@pytest.mark.parametrize("source", ["metadata", "tags", "sidecar"])
def test_reserved_names_never_pass_through_from_the_owner(source: str) -> None:
    forged = {name: "forged" for name in STACK_FIELDS} | {"site": "reef"}
    given: dict[str, dict[str, str]] = {"metadata": {}, "tags": {}, "sidecar": {}}
    given[source] = forged
    assert merge(given["metadata"], given["tags"], given["sidecar"]) == {"site": "reef"}


def test_an_entry_never_carries_an_owners_field_the_stack_left_unset() -> None:
    # An unversioned bucket (no version_id), a silent video (no audio_codec), a file outside
    # any archive (no annotations), key frames off (no $encord): all the stack's to write.
    item = video_item("cams/a.mp4")
    assert item.media.video is not None
    silent = item.media.video.model_copy(update={"audio_codec": None})
    owned = {name: "forged" for name in ("version_id", "audio_codec", "annotations", "$encord")}
    media = item.media.model_copy(update={"video": silent, "client_metadata": owned | {"k": 1}})
    client = entry_for(item.model_copy(update={"media": media})).payload["clientMetadata"]
    assert not set(owned) & set(client) and client["k"] == 1


def test_metadata_is_measured_as_it_is_stored_escaped() -> None:
    # 200 KB of UTF-8 (4 bytes an emoji) is 600 KB where the outcome ledger stores it.
    emoji = {"notes": "\U0001f41f" * 50_000}
    assert len(json.dumps(emoji, ensure_ascii=False).encode()) < MAX_CLIENT_METADATA_BYTES
    with pytest.raises(MediaError) as raised:
        merge({}, {}, emoji)
    assert raised.value.code is ErrorCode.CLIENT_METADATA_TOO_LARGE


def test_a_sidecar_nested_deeper_than_any_tool_needs_is_invalid() -> None:
    for depth in (40, 5000):  # 5000: deeper than json itself can read
        data = b"{" + b'"a":{' * depth + b"}" * depth + b"}"
        with pytest.raises(MediaError) as raised:
            parse_sidecar(data, "a.mp4.json")
        assert raised.value.code is ErrorCode.INVALID_SIDECAR


def test_an_item_at_every_limit_fits_dynamodb_as_each_store_writes_it() -> None:
    """Client metadata at its limit (emoji: the costliest characters escaped) and 10,000 key
    frames: the catalog item (pydantic's JSON) and the outcome the ledger keeps (Powertools'
    json.dumps, non-ASCII escaped) stay under DynamoDB's 400 KB item size."""
    import json as json_module

    from media_ingest.probing.mp4_frames import MAX_KEYFRAMES
    from media_ingest.records import Outcome, OutcomeKind

    fish = "\U0001f41f"
    owned = {"notes": fish * ((MAX_CLIENT_METADATA_BYTES - 16) // 12)}
    assert merge({}, {}, owned) == owned  # just under the limit, as stored
    item = video_item("cams/a.mp4")
    assert item.media.video is not None
    video = item.media.video.model_copy(
        update={"keyframes": tuple(range(10_000_000, 10_000_000 + MAX_KEYFRAMES))}
    )
    media = item.media.model_copy(update={"client_metadata": owned, "video": video})
    full = item.model_copy(update={"media": media})
    outcome = Outcome(
        kind=OutcomeKind.REGISTERED, event_id=full.event_id, bucket="drop", key=full.key, item=full
    )
    limit = 400 * 1024
    assert len(full.model_dump_json().encode()) < limit
    assert len(json_module.dumps(outcome.model_dump(mode="json")).encode()) < limit
