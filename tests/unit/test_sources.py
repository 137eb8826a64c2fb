"""Source buckets: the parameter's syntax, routing by bucket and prefix, and what the
template's custom resource derives (the EventBridge pattern, the role's resources)."""

from __future__ import annotations

import json

import pytest

from media_ingest.routing import Router
from media_ingest.sources import SourceBucket, derive, event_pattern, parse_sources


def test_entries_with_and_without_prefix_and_dataset() -> None:
    assert parse_sources(" legacy/cams/=cams, archive=old,raw,logs/dt=2026/=logs,hive/dt=1/") == (
        SourceBucket(bucket="legacy", prefix="cams/", dataset="cams"),
        SourceBucket(bucket="archive", dataset="old"),
        SourceBucket(bucket="raw"),
        SourceBucket(bucket="logs", prefix="dt=2026/", dataset="logs"),
        SourceBucket(bucket="hive", prefix="dt=1/"),
    )
    assert parse_sources("") == ()


@pytest.mark.parametrize("bad", ["Not_A_Bucket", "b/=bad name!", "x"])
def test_bad_entries_are_refused_with_the_entry_named(bad: str) -> None:
    with pytest.raises(ValueError, match="source"):
        parse_sources(bad)


def test_routing_an_attached_bucket_by_prefix_and_dataset() -> None:
    router = Router(
        "main", {"frames/": "frames"}, (".DS_Store",), "", parse_sources("legacy/cams/=cams,raw")
    )
    assert router.route("cams/a.mp4", "legacy").dataset == "cams"
    outside = router.route("other/a.mp4", "legacy")
    assert outside.dataset is None and "outside the attached prefixes" in (outside.ignored_by or "")
    assert router.route("frames/a.png", "raw").dataset == "frames"  # no dataset: key routes
    assert router.route("cams/.DS_Store", "legacy").ignored_by == ".DS_Store"
    assert router.route("other/a.mp4", "drop").dataset == "main"  # not attached: as before


def test_the_pattern_matches_each_bucket_with_its_own_prefixes_only() -> None:
    one = event_pattern(parse_sources("legacy/cams/"))
    assert one["detail"] == {
        "bucket": {"name": ["legacy"]},
        "object": {"key": [{"prefix": "cams/"}]},
    }
    both = event_pattern(parse_sources("legacy/cams/=c,legacy/mics/=m,raw"))
    assert both["$or"] == [
        {
            "detail": {
                "bucket": {"name": ["legacy"]},
                "object": {"key": [{"prefix": "cams/"}, {"prefix": "mics/"}]},
            }
        },
        {"detail": {"bucket": {"name": ["raw"]}}},
    ]
    assert both["detail-type"] == ["Object Created", "Object Deleted"]


def test_derived_resources_read_only_under_the_prefixes() -> None:
    derived = derive("legacy/cams/=c,raw", "111111111111", "aws")
    assert derived["ObjectArns"] == "arn:aws:s3:::legacy/cams/*,arn:aws:s3:::raw/*"
    assert derived["BucketArns"] == "arn:aws:s3:::legacy,arn:aws:s3:::raw"
    assert derived["AccountPrincipals"] == "arn:aws:iam::111111111111:root"
    assert json.loads(derived["EventPattern"])["source"] == ["aws.s3"]
    with pytest.raises(ValueError, match="account"):
        derive("raw", "12345", "aws")
