"""Archive drops through both real handlers on moto: ingest -> extract queue -> extract ->
members written as drops -> their S3 events -> ingest, with annotations linked."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections import Counter
from typing import Any

import pytest

from media_ingest.errors import ErrorCode
from media_ingest.wiring import build_extract_runner, build_runner
from tests.handlers.conftest import FakeContext, Stack, load_function
from tests.support.archives import make_zip
from tests.support.events import s3_body, sqs_record
from tests.support.media import MediaSet

BOX = b"frame,x,y,width,height,label\n0,0.1,0.1,0.2,0.2,fish\n3,0.5,0.5,0.1,0.1,crab\n"
STATE = b"frame,visibility\n,clear\n"


class Archives:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        queue = stack.sqs.create_queue(QueueName="extract")["QueueUrl"]
        self.queue = queue
        settings = stack.settings.model_copy(
            update={"extract_queue_url": queue, "drop_bucket": "drop"}
        )
        self.ingest = build_runner(settings)
        self.extract_runner = build_extract_runner(settings)
        self.extract_app = load_function("extract")

    def drop(self, key: str, data: bytes) -> list[dict[str, Any]]:
        """Drop an archive, run ingest and then the extract function; return the messages."""
        assert self.stack.deliver(self.stack.body(key, data), runner=self.ingest) == {
            "batchItemFailures": []
        }
        got = self.stack.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
        messages: list[dict[str, Any]] = list(got.get("Messages", []))
        for message in messages:
            self.extract(message["Body"])
        return messages

    def extract(self, body: str, receive_count: int = 1) -> None:
        event = {"Records": [sqs_record(body, receive_count)]}
        result = self.extract_app.lambda_handler(event, FakeContext(), runner=self.extract_runner)
        assert result == {"batchItemFailures": []}

    def objects(self, prefix: str) -> dict[str, dict[str, Any]]:
        listed = self.stack.s3.list_objects_v2(Bucket="drop", Prefix=prefix)
        return {o["Key"]: o for o in listed.get("Contents", [])}

    def ingest_members(self, prefix: str) -> None:
        """Deliver the S3 events the members' writes made, as S3 would."""
        bodies = [
            s3_body(
                "drop",
                key,
                size=o["Size"],
                etag=o["ETag"].strip('"'),
                sequencer=f"{next(self.stack.sequencer):016X}",
            )
            for key, o in self.objects(prefix).items()
        ]
        assert self.stack.deliver(*bodies, runner=self.ingest) == {"batchItemFailures": []}


@pytest.fixture
def archives(stack: Stack) -> Archives:
    return Archives(stack)


def test_an_archive_is_extracted_ingested_and_its_annotations_linked(
    stack: Stack, archives: Archives, media: MediaSet
) -> None:
    data = make_zip(
        {
            "reef/clip.mp4": media.bytes("clip.mp4"),
            "reef/rotated.mp4": media.bytes("rotated.mp4"),
            "reef/still.png": media.bytes("plain.png"),
            "reef/clip/localizations/box.csv": BOX,
            "reef/clip/states/visibility.csv": STATE,
            "__MACOSX/reef/._clip.mp4": b"junk",
        }
    )
    [message] = archives.drop("packs/dive.zip", data)
    members = archives.objects("packs/dive/")
    assert sorted(members) == [
        "packs/dive/reef/clip.mp4",
        "packs/dive/reef/rotated.mp4",
        "packs/dive/reef/still.png",
    ]
    archives.ingest_members("packs/dive/")
    outcomes, in_progress = stack.reader.ledger()
    assert in_progress == 0
    assert Counter(o.kind.value for o in outcomes) == {"archive": 1, "registered": 3}
    items = {i.key: i for i in stack.reader.items()}
    assert {items[k].kind.value for k in members} == {"video", "image"}
    urls = stack.manifest_urls()
    assert sorted(urls) == sorted(items[k].object_url for k in members)  # each member once
    [part] = stack.manifest_parts()
    clip = next(e for e in part["videos"] if e["title"] == "packs/dive/reef/clip.mp4")
    links = clip["clientMetadata"]["annotations"]
    assert links["localizations"]["box"]["rows"] == 2
    assert links["states"]["visibility"]["rows"] == 1
    box_url = links["localizations"]["box"]["url"]
    assert box_url == (
        "https://manifests.s3.us-east-1.amazonaws.com/annotations/packs/dive/reef/clip/"
        "localizations/box.csv"
    )
    stored = stack.s3.get_object(
        Bucket="manifests", Key="annotations/packs/dive/reef/clip/localizations/box.csv"
    )
    assert stored["Body"].read() == BOX
    rotated = next(e for e in part["videos"] if e["title"] == "packs/dive/reef/rotated.mp4")
    assert "annotations" not in rotated["clientMetadata"]
    assert stack.failure_messages() == []

    # The same extract message again (a redelivery): nothing is written, nothing changes.
    before = {k: o["ETag"] for k, o in archives.objects("packs/").items()}
    archives.extract(message["Body"], receive_count=2)
    assert {k: o["ETag"] for k, o in archives.objects("packs/").items()} == before
    assert stack.failure_messages() == []


def test_a_tar_gz_with_annotations_after_the_media_links_them(
    stack: Stack, archives: Archives, media: MediaSet
) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in (
            ("cam/clip.mp4", media.bytes("clip.mp4")),
            ("cam/clip/localizations/box.csv", BOX),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    archives.drop("t/cam.tar.gz", out.getvalue())
    archives.ingest_members("t/cam/")
    [item] = stack.reader.items()
    assert item.key == "t/cam/cam/clip.mp4"
    assert item.media.annotations is not None
    assert item.media.annotations.localizations["box"].rows == 2


def test_hostile_archives_become_failure_records_and_nothing_lands_outside_the_prefix(
    stack: Stack, archives: Archives, media: MediaSet
) -> None:
    png = media.bytes("plain.png")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../escape.png", png)
        archive.writestr("/etc/abs.png", png)
        link = zipfile.ZipInfo("link.png")
        link.create_system, link.external_attr = 3, 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("inner.zip", make_zip({"x.png": png}))
        archive.writestr("ok.png", png)
        archive.writestr("ok/localizations/box.csv", b"frame,x,y,width\n0,1,1,1\n")
    archives.drop("evil/pack.zip", out.getvalue())
    assert sorted(archives.objects("")) == ["evil/pack.zip", "evil/pack/ok.png"]
    records = {r.object_url.split("#", 1)[1]: r for r in stack.failure_messages()}
    assert {m: r.error_code for m, r in records.items()} == {
        "../../escape.png": ErrorCode.ARCHIVE_PATH_REFUSED,
        "/etc/abs.png": ErrorCode.ARCHIVE_PATH_REFUSED,
        "link.png": ErrorCode.ARCHIVE_LINK_REFUSED,
        "inner.zip": ErrorCode.ARCHIVE_NESTED,
        "ok/localizations/box.csv": ErrorCode.INVALID_ANNOTATION,
    }
    assert all(r.key == "evil/pack.zip" for r in records.values())
    assert "column 'height'" in records["ok/localizations/box.csv"].message
    assert len(stack.reader.failures()) == 5  # one catalog record per refused member


def test_a_zip_bomb_is_refused_whole(stack: Stack, archives: Archives) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(1024 * 1024))
        archive.writestr("ok.txt", b"fine\n")
    archives.drop("bomb.zip", out.getvalue())
    assert sorted(archives.objects("")) == ["bomb.zip"]
    [record] = stack.failure_messages()
    assert (record.key, record.error_code) == ("bomb.zip", ErrorCode.ARCHIVE_BOMB)


def test_without_an_extract_queue_archives_stay_unsupported(stack: Stack) -> None:
    stack.deliver(stack.body("old.zip", make_zip({"a.txt": b"a"})))
    [record] = stack.failure_messages()
    assert record.error_code is ErrorCode.UNSUPPORTED_KIND
    assert json.loads(record.model_dump_json())["stage"] == "probe"
