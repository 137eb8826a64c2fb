"""Archive drops on LocalStack: S3 -> ingest -> extract queue -> extract -> members as drops."""

from __future__ import annotations

import time
from collections import Counter

from media_ingest.errors import ErrorCode
from media_ingest.records import FailureRecord, OutcomeKind
from tests.integration.conftest import Deployed
from tests.support.archives import make_tar, make_zip
from tests.support.media import MediaSet

BOX = b"frame,x,y,width,height,label\n0,0.1,0.1,0.2,0.2,fish\n"


def _failures(
    deployed: Deployed, key: str, count: int, timeout: float = 240
) -> list[FailureRecord]:
    deadline = time.monotonic() + timeout
    while True:
        found = [f for f in deployed.reader().failures() if f.key == key]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_zip_and_tar_gz_drops_are_extracted_registered_and_linked(
    deployed: Deployed, media: MediaSet
) -> None:
    p = deployed.prefix()
    zipped = deployed.drop(
        p + "dive.zip",
        make_zip(
            {
                "clip.mp4": media.bytes("clip.mp4"),
                "still.png": media.bytes("plain.png"),
                "clip/localizations/box.csv": BOX,
            }
        ),
    )
    tarred = deployed.drop(
        p + "cam.tar.gz",
        make_tar(
            {
                "cam/rotated.mp4": media.bytes("rotated.mp4"),
                "cam/rotated/localizations/box.csv": BOX,
            }
        ),
    )
    members = {p + "dive/clip.mp4", p + "dive/still.png", p + "cam/cam/rotated.mp4"}
    outcomes = deployed.wait({zipped, tarred} | members, timeout=420)
    kinds = {o.key: o.kind for o in outcomes}
    assert kinds == {
        zipped: OutcomeKind.ARCHIVE,
        tarred: OutcomeKind.ARCHIVE,
        **dict.fromkeys(members, OutcomeKind.REGISTERED),
    }
    items = {i.key: i for i in deployed.reader().items() if i.key in members}
    for key in (p + "dive/clip.mp4", p + "cam/cam/rotated.mp4"):
        links = items[key].media.annotations
        assert links is not None and links.localizations["box"].rows == 1
        assert "/annotations/" in links.localizations["box"].url
    assert items[p + "dive/still.png"].media.annotations is None
    assert Counter(i.kind.value for i in items.values()) == {"video": 2, "image": 1}


def test_a_traversal_member_is_refused_and_the_rest_extracted(
    deployed: Deployed, media: MediaSet
) -> None:
    p = deployed.prefix()
    key = deployed.drop(
        p + "evil.zip",
        make_zip(
            {
                "../../escape.png": media.bytes("plain.png"),
                "ok.png": media.bytes("plain.png"),
            }
        ),
    )
    outcomes = deployed.wait({key, p + "evil/ok.png"}, timeout=300)
    assert {o.key: o.kind for o in outcomes} == {
        key: OutcomeKind.ARCHIVE,
        p + "evil/ok.png": OutcomeKind.REGISTERED,
    }
    [record] = _failures(deployed, key, 1)
    assert record.error_code is ErrorCode.ARCHIVE_PATH_REFUSED
    assert record.object_url.endswith("#../../escape.png")
    listed = deployed.s3.list_objects_v2(Bucket=deployed.outputs.DropBucketName, Prefix=p)
    assert sorted(o["Key"] for o in listed["Contents"]) == [key, p + "evil/ok.png"]
    assert not any("escape" in o["Key"] for o in listed["Contents"])
