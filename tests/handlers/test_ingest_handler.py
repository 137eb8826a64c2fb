"""Every outcome of the core issue through the real handler, on moto, with real media."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from media_ingest.adapters.objects import S3Objects
from media_ingest.errors import ErrorCode, Stage
from media_ingest.events import ObjectEvent
from media_ingest.ops import failure_log
from media_ingest.records import OutcomeKind
from media_ingest.wiring import build_runner
from tests.handlers.conftest import Stack
from tests.support.events import s3_body
from tests.support.media import MediaSet


def kinds(stack: Stack) -> Counter[str]:
    outcomes, in_progress = stack.reader.ledger()
    assert in_progress == 0
    return Counter(o.kind.value for o in outcomes)


def test_a_video_is_registered_with_accurate_metadata(stack: Stack, media: MediaSet) -> None:
    data = media.bytes("rotated.mp4")
    assert stack.deliver(stack.body("cams/rotated.mp4", data)) == {"batchItemFailures": []}
    [item] = stack.reader.items()
    assert (item.dataset, item.kind, item.mime_type, item.size) == (
        "main",
        "video",
        "video/mp4",
        len(data),
    )
    video = item.media.video
    assert video is not None
    assert (video.fps, video.fps_fraction, video.width, video.height) == (
        29.97,
        "30000/1001",
        240,
        320,
    )
    assert item.object_url == "https://drop.s3.us-east-1.amazonaws.com/cams/rotated.mp4"
    [part] = stack.manifest_parts()
    [entry] = part["videos"]
    assert entry["videoMetadata"]["width"] == 240 and entry["videoMetadata"]["file_size"] == len(
        data
    )
    assert part["skip_duplicate_urls"] is True
    assert kinds(stack) == {"registered": 1}


def test_every_kind_lands_in_its_section(stack: Stack, media: MediaSet) -> None:
    names = [
        "clip.webm",
        "tone.wav",
        "tone.mp3",
        "portrait.jpg",
        "plain.png",
        "scan.dcm",
        "doc.pdf",
        "notes.txt",
    ]
    assert (
        stack.deliver(*(stack.body(f"in/{n}", media.bytes(n)) for n in names))["batchItemFailures"]
        == []
    )
    [part] = stack.manifest_parts()
    assert {k: len(v) for k, v in part.items() if isinstance(v, list)} == {
        "videos": 1,
        "audio": 2,
        "images": 2,
        "dicom_series": 1,
        "pdf": 1,
        "text": 1,
    }
    image = next(i for i in stack.reader.items() if i.key == "in/portrait.jpg")
    assert image.media.image is not None and (
        image.media.image.width,
        image.media.image.height,
    ) == (48, 64)
    dicom = next(i for i in stack.reader.items() if i.kind == "dicom")
    assert dicom.media.dicom is not None and dicom.media.dicom.instance_number == 3
    assert kinds(stack) == {"registered": 8}


def test_redelivery_of_the_same_event_changes_nothing(stack: Stack, media: MediaSet) -> None:
    body = stack.body("a.mp4", media.bytes("clip.mp4"))
    for receive_count in range(1, 6):  # the same event delivered 5 times
        assert stack.deliver(body, receive_count=receive_count) == {"batchItemFailures": []}
    stack.deliver(body, body, receive_count=6)  # and twice in one batch
    assert len(stack.reader.items()) == 1
    assert stack.manifest_urls() == ["https://drop.s3.us-east-1.amazonaws.com/a.mp4"]
    assert kinds(stack) == {"registered": 1}


def test_a_second_upload_of_the_same_key_is_a_duplicate(stack: Stack, media: MediaSet) -> None:
    stack.deliver(stack.body("a.mp4", media.bytes("clip.mp4")))
    stack.deliver(stack.body("a.mp4", media.bytes("clip-moov-end.mp4")))
    outcomes, _ = stack.reader.ledger()
    duplicate = next(o for o in outcomes if o.kind is OutcomeKind.DUPLICATE)
    assert "already registered" in (duplicate.detail or "")
    assert len(stack.reader.items()) == 1
    assert len(stack.manifest_urls()) == 1
    assert kinds(stack) == {"registered": 1, "duplicate": 1}


def test_an_overwrite_is_a_new_event_even_with_a_constant_sequencer(
    stack: Stack, media: MediaSet
) -> None:
    # LocalStack sends the same sequencer for every event: the ETag still tells an
    # overwrite with new content from a redelivery.
    first = stack.put("a.mp4", media.bytes("clip.mp4")) | {"sequencer": "0055AED6DCD90281E5"}
    stack.deliver(s3_body("drop", "a.mp4", **first))
    second = stack.put("a.mp4", media.bytes("clip-moov-end.mp4")) | {
        "sequencer": first["sequencer"]
    }
    stack.deliver(s3_body("drop", "a.mp4", **second))
    stack.deliver(s3_body("drop", "a.mp4", **second), receive_count=2)
    assert kinds(stack) == {"registered": 1, "duplicate": 1}
    assert len(stack.manifest_urls()) == 1


def test_an_update_dataset_replaces_on_overwrite(stack: Stack, media: MediaSet) -> None:
    stack.deliver(stack.body("updates/a.mp4", media.bytes("clip.mp4")))
    stack.deliver(stack.body("updates/a.mp4", media.bytes("rotated.mp4")))
    [item] = stack.reader.items()
    assert (
        item.dataset == "live" and item.media.video is not None and item.media.video.rotation != 0
    )
    assert len(stack.manifest_urls("live")) == 1
    assert kinds(stack) == {"registered": 1, "updated": 1}


def test_a_corrupt_file_fails_with_a_record_on_the_queue_and_in_the_catalog(
    stack: Stack, media: MediaSet
) -> None:
    data = media.bytes("truncated.mp4")
    assert stack.deliver(stack.body("bad/truncated.mp4", data)) == {"batchItemFailures": []}
    [record] = stack.failure_messages()
    assert (record.stage, record.error_code) == (Stage.PROBE, ErrorCode.CORRUPT_MEDIA)
    assert (record.key, record.dataset, record.size, record.attempt) == (
        "bad/truncated.mp4",
        "main",
        len(data),
        1,
    )
    assert record.object_url.endswith("/bad/truncated.mp4")
    assert "X-Amz" not in record.message and stack.endpoint not in record.message
    assert [f.error_code for f in stack.reader.failures()] == [ErrorCode.CORRUPT_MEDIA]
    assert stack.reader.items() == [] and stack.manifest_parts() == []
    assert kinds(stack) == {"failed": 1}


def test_hostile_and_broken_inputs_each_get_a_precise_code(stack: Stack, media: MediaSet) -> None:
    cases = {
        "playlist.mp4": ErrorCode.INDIRECTION_REFUSED,
        "garbage.mp4": ErrorCode.UNSUPPORTED_FORMAT,
        "empty.mp4": ErrorCode.EMPTY_OBJECT,
        "doc-as-video.mp4": ErrorCode.KIND_MISMATCH,
    }
    data = {
        "playlist.mp4": media.bytes("playlist.mp4"),
        "garbage.mp4": media.bytes("garbage.mp4"),
        "empty.mp4": b"",
        "doc-as-video.mp4": media.bytes("doc.pdf"),
    }
    stack.deliver(*(stack.body(k, v) for k, v in data.items()))
    assert {f.key: f.error_code for f in stack.reader.failures()} == cases
    assert kinds(stack) == {"failed": 4}


def test_ignored_names_are_counted_not_probed(stack: Stack) -> None:
    stack.deliver(stack.body("x/.DS_Store", b"\0" * 10), stack.body("x/folder/", b""))
    assert kinds(stack) == {"ignored": 2}
    assert stack.failure_messages() == [] and stack.reader.items() == []


def test_test_event_is_consumed_and_a_poison_message_is_retried(stack: Stack) -> None:
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "drop"})
    result = stack.deliver(test_event, "this is not an S3 event")
    # Only the poison message comes back (and after maxReceiveCount lands in the DLQ).
    assert len(result["batchItemFailures"]) == 1
    assert kinds(stack) == {}


def test_encoded_unicode_and_plus_keys_are_registered_under_their_real_name(
    stack: Stack, media: MediaSet
) -> None:
    key = "raw/my clip+1 ✓ été.mp4"
    stack.deliver(stack.body(key, media.bytes("clip.mp4")))
    [item] = stack.reader.items()
    assert item.key == key
    assert item.object_url == (
        "https://drop.s3.us-east-1.amazonaws.com/raw/my%20clip%2B1%20%E2%9C%93%20%C3%A9t%C3%A9.mp4"
    )


def test_a_1024_byte_key_is_registered(stack: Stack, media: MediaSet) -> None:
    key = "deep/" + "é" * 507 + "x.png"  # 5 + 1014 + 5 bytes: S3's maximum
    assert len(key.encode()) == 1024
    stack.deliver(stack.body(key, media.bytes("plain.png")))
    assert [i.key for i in stack.reader.items()] == [key]


def test_an_object_deleted_before_probing_is_a_clear_failure(stack: Stack, media: MediaSet) -> None:
    body = stack.body("gone.mp4", media.bytes("clip.mp4"))
    stack.s3.delete_object(Bucket="drop", Key="gone.mp4")
    assert stack.deliver(body) == {"batchItemFailures": []}
    assert [f.error_code for f in stack.reader.failures()] == [ErrorCode.OBJECT_NOT_FOUND]


def test_an_object_overwritten_before_probing_is_not_misattributed(
    stack: Stack, media: MediaSet
) -> None:
    old = stack.body("swap.mp4", media.bytes("clip.mp4"))
    new_data = media.bytes("clip-moov-end.mp4")
    new = stack.body("swap.mp4", new_data)
    stack.deliver(old, new)
    assert [f.error_code for f in stack.reader.failures()] == [ErrorCode.OBJECT_CHANGED]
    [item] = stack.reader.items()
    assert item.size == len(new_data)  # the probe read the version its event announced


def test_events_for_one_key_out_of_order_end_with_the_newest_version(
    stack: Stack, media: MediaSet
) -> None:
    old = stack.body("updates/swap.mp4", media.bytes("clip.mp4"))
    new_data = media.bytes("rotated.mp4")
    new = stack.body("updates/swap.mp4", new_data)  # a higher sequencer
    stack.deliver(new)
    stack.deliver(old)  # the older event arrives last
    [item] = stack.reader.items()
    assert (
        item.size == len(new_data)
        and item.sequencer == json.loads(new)["Records"][0]["s3"]["object"]["sequencer"]
    )
    assert kinds(stack) == {"registered": 1, "failed": 1}
    assert [f.error_code for f in stack.reader.failures()] == [ErrorCode.OBJECT_CHANGED]
    # The older version is gone and the newer one registered: nothing left to fix.
    assert failure_log.outstanding(stack.reader.failures(), stack.reader.items()) == []
    assert len(stack.manifest_urls("live")) == 1


def test_user_metadata_tags_and_a_sidecar_become_client_metadata(
    stack: Stack, media: MediaSet
) -> None:
    runner = build_runner(stack.settings.model_copy(update={"sidecar_suffix": ".json"}))
    sidecar = json.dumps({"site": "reef-2", "weather": {"sky": "clear"}}).encode()
    side = stack.s3.put_object(Bucket="drop", Key="cams/clip.mp4.json", Body=sidecar)
    put = stack.s3.put_object(
        Bucket="drop",
        Key="cams/clip.mp4",
        Body=media.bytes("clip.mp4"),
        Metadata={"camera": "cam-7", "site": "reef-1"},
        Tagging="shift=night&site=reef-1b",
    )
    plain = stack.s3.put_object(Bucket="drop", Key="cams/plain.png", Body=media.bytes("plain.png"))
    bodies = [
        s3_body("drop", key, size=size, etag=out["ETag"].strip('"'), sequencer=f"{n:016X}")
        for n, (key, size, out) in enumerate(
            [
                ("cams/clip.mp4.json", len(sidecar), side),
                ("cams/clip.mp4", len(media.bytes("clip.mp4")), put),
                ("cams/plain.png", len(media.bytes("plain.png")), plain),
            ]
        )
    ]
    assert stack.deliver(*bodies, runner=runner) == {"batchItemFailures": []}
    assert kinds(stack) == {"registered": 2, "ignored": 1}  # the sidecar is no object of its own
    [part] = stack.manifest_parts()
    [video], [image] = part["videos"], part["images"]
    client = video["clientMetadata"]
    assert (client["camera"], client["shift"], client["site"]) == ("cam-7", "night", "reef-2")
    assert client["weather"] == {"sky": "clear"} and client["key"] == "cams/clip.mp4"
    assert "site" not in image["clientMetadata"]  # no sidecar: still registered


def test_a_broken_sidecar_fails_its_media_clearly(stack: Stack, media: MediaSet) -> None:
    runner = build_runner(stack.settings.model_copy(update={"sidecar_suffix": ".json"}))
    stack.s3.put_object(Bucket="drop", Key="cams/clip.mp4.json", Body=b'["not", "an object"]')
    stack.deliver(stack.body("cams/clip.mp4", media.bytes("clip.mp4")), runner=runner)
    [failure] = stack.reader.failures()
    assert failure.error_code is ErrorCode.INVALID_SIDECAR and "JSON object" in failure.message


def test_media_that_fails_reads_no_metadata_and_keeps_its_own_code(
    stack: Stack, media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("tags", "read_small"):
        original = getattr(S3Objects, name)

        def counted(*a: Any, _n: str = name, _f: Any = original) -> Any:
            calls.append(_n)
            return _f(*a)

        monkeypatch.setattr(S3Objects, name, counted)
    runner = build_runner(stack.settings.model_copy(update={"sidecar_suffix": ".json"}))
    # Broken media, each with tags and a broken sidecar beside it.
    broken = {
        "bad/garbage.bin": b"\x00\x13garbage" * 64,
        "bad/packed.7z": b"7z\xbc\xaf\x27\x1c" + bytes(200),
        "bad/cut.mp4": media.bytes("clip.mp4")[:1500],
    }
    bodies = []
    for n, (key, data) in enumerate(broken.items()):
        stack.s3.put_object(Bucket="drop", Key=key + ".json", Body=b"{not json")
        out = stack.s3.put_object(Bucket="drop", Key=key, Body=data, Tagging="site=reef")
        bodies.append(
            s3_body("drop", key, size=len(data), etag=out["ETag"].strip('"'), sequencer=f"{n:016X}")
        )
    stack.deliver(*bodies, runner=runner)
    codes = {f.key: f.error_code for f in stack.reader.failures()}
    assert codes == {
        "bad/garbage.bin": ErrorCode.UNSUPPORTED_FORMAT,
        "bad/packed.7z": ErrorCode.UNSUPPORTED_KIND,
        "bad/cut.mp4": ErrorCode.CORRUPT_MEDIA,
    }
    assert calls == []  # no GetObjectTagging, no sidecar GetObject for media that failed


def test_a_transient_error_returns_the_message_and_the_retry_completes(
    stack: Stack, media: MediaSet, monkeypatch: object
) -> None:
    body = stack.body("t.mp4", media.bytes("clip.mp4"))
    writer = stack.runner.manifests
    original = writer.store.write_part
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated S3 500 after the catalog write")
        original(*args, **kwargs)

    writer.store.write_part = flaky  # type: ignore[method-assign]
    first = stack.deliver(body)
    assert len(first["batchItemFailures"]) == 1  # the message goes back to the queue
    assert len(stack.reader.items()) == 1 and stack.manifest_parts() == []
    assert stack.deliver(body, receive_count=2) == {"batchItemFailures": []}
    assert len(stack.manifest_urls()) == 1
    assert kinds(stack) == {"registered": 1}


def test_events_in_one_batch_append_with_one_manifest_write(stack: Stack, media: MediaSet) -> None:
    writes = []
    original = stack.runner.manifests.store.write_part

    def counted(*a: Any, **k: Any) -> None:
        writes.append(a[1])
        original(*a, **k)

    stack.runner.manifests.store.write_part = counted  # type: ignore[method-assign]
    bodies = [stack.body(f"b/{i}.png", media.bytes("plain.png")) for i in range(10)]
    stack.deliver(*bodies)
    assert len(writes) == 1 and len(stack.manifest_urls()) == 10


def test_s3_body_helper_matches_what_s3_sends() -> None:
    body = json.loads(s3_body("b", "a b.mp4"))
    assert body["Records"][0]["s3"]["object"]["key"] == "a+b.mp4"


def test_key_frames_on_add_the_encord_block_and_cost_no_read_more(
    stack: Stack, media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, int, int]] = []
    real_read_at = S3Objects.read_at

    def counting(self: S3Objects, event: ObjectEvent, start: int, length: int) -> bytes:
        reads.append((event.key, start, length))
        return real_read_at(self, event, start, length)

    monkeypatch.setattr(S3Objects, "read_at", counting)
    names = ["gop10-bf2.mp4", "gop10-bf2-moov-end.mp4"]
    off = [stack.body(f"off/{n}", media.bytes(n)) for n in names]
    assert stack.deliver(*off) == {"batchItemFailures": []}
    # KeyFrames off (the default): the index is read for frame timing all the same, one GET
    # for the moov at the end; the faststart file costs nothing.
    assert [key for key, _, _ in reads] == ["off/gop10-bf2-moov-end.mp4"]
    [part] = stack.manifest_parts()
    assert all("$encord" not in v["clientMetadata"] for v in part["videos"])

    runner = build_runner(stack.settings.model_copy(update={"key_frames": "on"}))
    on = [stack.body(f"on/{n}", media.bytes(n)) for n in names]
    assert stack.deliver(*on, runner=runner) == {"batchItemFailures": []}
    # On: not one read more than off.
    assert [key for key, _, _ in reads] == [
        "off/gop10-bf2-moov-end.mp4",
        "on/gop10-bf2-moov-end.mp4",
    ]
    [part] = stack.manifest_parts()
    blocks = {
        v["clientMetadata"]["key"]: v["clientMetadata"].get("$encord") for v in part["videos"]
    }
    block = blocks["on/gop10-bf2.mp4"]
    assert block is not None and blocks["on/gop10-bf2-moov-end.mp4"] == block
    assert block["config"] == {"sampling_rate": 1, "keyframe_mode": "frame"}
    keys = block["keyframes"]  # 8 s at 29.97 fps, a key frame every 10 frames
    assert keys == list(range(0, 240, 10))
    assert blocks["off/gop10-bf2.mp4"] is None and blocks["off/gop10-bf2-moov-end.mp4"] is None
