from __future__ import annotations

from urllib.parse import unquote, urljoin

from hypothesis import given
from hypothesis import strategies as st

from media_ingest.routing import Router
from media_ingest.settings import DEFAULT_IGNORE
from media_ingest.urls import encode_key, object_url


def test_virtual_hosted_url_is_the_default() -> None:
    url = object_url("drop", "raw/my clip+1 ✓.mp4", "eu-west-1")
    assert url == "https://drop.s3.eu-west-1.amazonaws.com/raw/my%20clip%2B1%20%E2%9C%93.mp4"


def test_path_style_and_s3_styles() -> None:
    assert object_url("a.b", "k 1", "us-east-1", "path") == (
        "https://s3.us-east-1.amazonaws.com/a.b/k%201"
    )
    assert object_url("drop", "k 1", "us-east-1", "s3") == "s3://drop/k 1"


@given(st.text(min_size=1, max_size=1024))
def test_encoded_keys_have_no_whitespace_and_round_trip(key: str) -> None:
    encoded = encode_key(key)
    assert not any(ch.isspace() for ch in encoded)
    assert encoded.isascii()
    assert unquote(encoded) == key
    assert not {".", ".."} & set(encoded.split("/"))  # no dot segment a client would resolve


def test_dot_segments_survive_url_resolution() -> None:
    url = object_url("drop", "a/../b/./c.mp4", "us-east-1")
    assert url == "https://drop.s3.us-east-1.amazonaws.com/a/%2E%2E/b/%2E/c.mp4"
    assert urljoin(url, "") == url  # resolution leaves it alone


def test_longest_prefix_wins_and_default_catches_the_rest() -> None:
    router = Router("main", {"cams/": "cameras", "cams/front/": "front"}, DEFAULT_IGNORE)
    assert router.route("cams/front/1.mp4").dataset == "front"
    assert router.route("cams/back/1.mp4").dataset == "cameras"
    assert router.route("other/1.mp4").dataset == "main"


def test_default_ignore_rules() -> None:
    router = Router("main", {}, DEFAULT_IGNORE)
    assert router.route("x/.DS_Store").ignored_by == ".DS_Store"
    assert router.route("x/._clip.mp4").ignored_by == "._*"
    assert router.route("folder/").ignored_by == "*/"
    assert router.route("x/clip.mp4").ignored_by is None
    assert router.route("x/.DS_Store").dataset is None
