"""Client metadata: precedence, sidecar rules and the size limit."""

from __future__ import annotations

import json

import pytest

from media_ingest.errors import ErrorCode, MediaError
from media_ingest.owner_metadata import (
    MAX_CLIENT_METADATA_BYTES,
    is_sidecar,
    merge,
    parse_sidecar,
)
from media_ingest.platforms.encord import entry_for
from media_ingest.routing import Router
from tests.support.items import video_item


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
