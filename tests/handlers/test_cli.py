"""The operator CLI against a moto stack holding real ingestion results."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest

from media_ingest.adapters import clients
from media_ingest.ops.cli import main
from media_ingest.ops.cli.render import table
from media_ingest.wiring import build_runner
from tests.handlers.conftest import Stack
from tests.support.media import MediaSet


@pytest.fixture
def deployed(stack: Stack, media: MediaSet) -> Stack:
    """A CloudFormation stack whose outputs name the fixture's resources, plus a small drop."""
    outputs = {
        "DropBucketName": "drop",
        "RegistryTableName": stack.settings.catalog_table,
        "ManifestBucketName": "manifests",
        "ManifestPrefix": "manifests/",
        "IngestQueueUrl": stack.sqs.create_queue(QueueName="ingest")["QueueUrl"],
        "DeadLetterQueueUrl": stack.sqs.create_queue(QueueName="dlq")["QueueUrl"],
        "FailureQueueUrl": stack.settings.failure_queue_url,
        "IngestFunctionName": _function(stack),
    }
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    cfn = boto3.client("cloudformation", endpoint_url=stack.endpoint)
    cfn.create_stack(StackName="media-ingest", TemplateBody=json.dumps(template))
    stack.deliver(
        stack.body("v/clip.mp4", media.bytes("clip.mp4")),
        stack.body("v/clip.mp4", media.bytes("clip.mp4")),
        stack.body("a/tone.wav", media.bytes("tone.wav")),
        stack.body("bad.mp4", media.bytes("truncated.mp4")),
        stack.body("x/.DS_Store", b"junk"),
    )
    return stack


def _function(stack: Stack) -> str:
    """The ingest function as deployed (its environment is what backfill routes by)."""
    iam = boto3.client("iam", endpoint_url=stack.endpoint)
    role = iam.create_role(RoleName="ingest", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("app.py", "def lambda_handler(event, context): pass\n")
    s = stack.settings
    boto3.client("lambda", endpoint_url=stack.endpoint).create_function(
        FunctionName="ingest",
        Runtime="python3.13",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Environment={
            "Variables": {
                "CATALOG_TABLE": s.catalog_table,
                "MANIFEST_BUCKET": s.manifest_bucket,
                "FAILURE_QUEUE_URL": s.failure_queue_url,
                "DEFAULT_DATASET": s.default_dataset,
                "DATASET_ROUTES": json.dumps(s.dataset_routes),
                "IGNORE_PATTERNS": ".DS_Store,*/",
            }
        },
    )
    return "ingest"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()  # drop what the handler logged before (Lambda logs go to stdout)
    assert main(["--stack", "media-ingest", *argv]) == 0
    return capsys.readouterr().out


def test_status_counts_every_outcome(deployed: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    state = json.loads(run(capsys, "status", "--json"))
    assert state["events"] == 5
    assert state["outcomes"] == {
        "registered": 2,
        "duplicate": 1,
        "updated": 0,
        "failed": 1,
        "ignored": 1,
        "archive": 0,
        "marker": 0,
        "deleted": 0,
    }
    assert state["accounted"] is True
    human = run(capsys, "status")
    assert "events received: 5" in human and "all events accounted for" in human


def test_items_failures_and_manifests(deployed: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    items = json.loads(run(capsys, "items", "--json"))
    assert sorted(i["key"] for i in items) == ["a/tone.wav", "v/clip.mp4"]
    human = run(capsys, "items")
    assert "320x240 29.97fps" in human and "44.1kHz 2ch" in human
    failures = json.loads(run(capsys, "failures", "--json"))
    assert [(f["key"], f["error_code"]) for f in failures] == [("bad.mp4", "CORRUPT_MEDIA")]
    assert "CORRUPT_MEDIA" in run(capsys, "failures")
    parts = json.loads(run(capsys, "manifests", "--json"))
    assert [(p["dataset"], p["number"], p["entries"], p["sealed"]) for p in parts] == [
        ("main", 1, 2, False)
    ]
    assert "s3://manifests/manifests/main/part-00001.json" in run(capsys, "manifests")


def test_items_show_and_filter_variable_frame_rates(
    deployed: Stack, media: MediaSet, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.deliver(
        deployed.body("v/phone.mov", media.bytes("vfr-phone.mov")),
        deployed.body("v/long.mkv", media.bytes("long.mkv")),
    )
    lines = run(capsys, "items").splitlines()
    assert lines[0].split() == ["dataset", "kind", "key", "bytes", "vfr", "metadata"]
    at, end = lines[0].index("vfr"), lines[0].index("metadata")
    rows = {line.split()[2]: line[at:end].strip() for line in lines[2:-1]}
    assert rows == {"a/tone.wav": "", "v/clip.mp4": "no", "v/long.mkv": "unknown"} | {
        "v/phone.mov": "yes"
    }
    # A variable rate is shown as an average with its range, never as the rate.
    [phone] = [line for line in lines if "v/phone.mov" in line]
    assert phone.endswith("160x120 avg 28.333fps (33.333-66.667ms) 3.00s 85f h264")
    only = {
        state: json.loads(run(capsys, "items", "--vfr", state, "--json"))
        for state in ("yes", "no", "unknown")
    }
    assert [i["key"] for i in only["yes"]] == ["v/phone.mov"]
    assert [i["key"] for i in only["no"]] == ["v/clip.mp4"]
    assert [i["key"] for i in only["unknown"]] == ["v/long.mkv"]
    assert run(capsys, "items", "--vfr").count("v/phone.mov") == 1  # --vfr alone: yes


def test_unknown_stack_is_a_clear_error(
    deployed: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stack", "nope", "status"]) == 2
    assert "stack 'nope' not found" in capsys.readouterr().err


def test_stack_may_come_after_the_command_as_with_the_aws_cli(
    deployed: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["items", "--stack", "media-ingest", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    # After the command it wins over the one before it.
    assert main(["--stack", "media-ingest", "items", "--stack", "nope"]) == 2
    assert "stack 'nope' not found" in capsys.readouterr().err


def test_missing_region_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    clients.client.cache_clear()
    assert main(["--stack", "any", "status"]) == 2
    assert "source infra/localenv.sh" in capsys.readouterr().err
    clients.client.cache_clear()


def test_table_aligns_columns() -> None:
    assert table(["a", "bb"], [("xxx", 1)]).splitlines() == ["a    bb", "---  --", "xxx  1"]


def test_failures_csv_and_filters(
    deployed: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = list(csv.DictReader(io.StringIO(run(capsys, "failures", "--csv"))))
    assert [(r["key"], r["stage"], r["error_code"]) for r in rows] == [
        ("bad.mp4", "probe", "CORRUPT_MEDIA")
    ]
    assert rows[0]["object_url"] == "https://drop.s3.us-east-1.amazonaws.com/bad.mp4"
    assert "1 failures written" in run(
        capsys, "failures", "--csv", "--out", str(tmp_path / "f.csv")
    )
    assert (tmp_path / "f.csv").read_text().count("\n") == 2
    assert len(run(capsys, "failures", "--csv", "--code", "EMPTY_OBJECT").splitlines()) == 1
    assert len(run(capsys, "failures", "--csv", "--since", "1h").splitlines()) == 2
    assert main(["--stack", "media-ingest", "failures", "--code", "NOPE"]) == 2
    assert "unknown error code" in capsys.readouterr().err


def test_status_watch_stops_once_everything_is_accounted_for(
    deployed: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "status", "--watch", "--interval", "0.1", "--until-done")
    assert out.count("events received: 5") == 1 and "all events accounted for" in out


def test_backfill_enqueues_what_is_not_registered_and_a_rerun_registers_nothing_twice(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet, tmp_path: Path
) -> None:
    for name in ("one.png", "two.png", "sub dir/three ✓.png"):
        deployed.s3.put_object(Bucket="drop", Key=f"old/{name}", Body=media.bytes("plain.png"))
    deployed.s3.put_object(Bucket="drop", Key="old/.DS_Store", Body=b"junk")
    state = str(tmp_path / "state.json")
    summary = run(capsys, "backfill", "s3://drop/", "--state", state, "--json")
    counts = json.loads(summary)["counts"]
    # Registered already: v/clip.mp4 and a/tone.wav. bad.mp4 failed, so it gets another go.
    assert counts == {"listed": 8, "enqueued": 4, "ignored": 2, "registered": 2}
    _deliver_ingest_queue(deployed)
    keys = sorted(i["key"] for i in json.loads(run(capsys, "items", "--json")))
    assert keys == [
        "a/tone.wav",
        "old/one.png",
        "old/sub dir/three ✓.png",
        "old/two.png",
        "v/clip.mp4",
    ]
    before = json.loads(run(capsys, "status", "--json"))
    again = json.loads(run(capsys, "backfill", "s3://drop/", "--state", state, "--json"))
    assert again["counts"] == {"listed": 8, "enqueued": 1, "ignored": 2, "registered": 5}
    _deliver_ingest_queue(deployed)
    after = json.loads(run(capsys, "status", "--json"))
    assert after["events"] == before["events"] == 9  # 5 drops + 4 backfilled, nothing twice
    assert len(deployed.manifest_urls()) == 5


def _deliver_ingest_queue(stack: Stack) -> None:
    url = stack.sqs.get_queue_url(QueueName="ingest")["QueueUrl"]
    while got := stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        stack.deliver(*(m["Body"] for m in got))
        stack.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def test_backfill_from_an_s3_inventory_report(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet, tmp_path: Path
) -> None:
    deployed.s3.create_bucket(Bucket="inventory")
    keys = ["inv/a.png", "inv/b c+d.png", "other/skip.png", "inv/.DS_Store"]
    etags = [
        deployed.s3.put_object(Bucket="drop", Key=key, Body=media.bytes("plain.png"))["ETag"]
        for key in keys
    ]
    # Inventory CSVs URL-encode keys; the report lists other prefixes and old versions too.
    size = len(media.bytes("plain.png"))
    lines = [
        f'"drop","{quote_plus(k)}","{size}","{e.strip(chr(34))}","true"'
        for k, e in zip(keys, etags, strict=True)
    ]
    lines.append(f'"drop","inv/old.png","{size}","e9","false"')
    deployed.s3.put_object(
        Bucket="inventory",
        Key="drop/inv-1/data/1.csv.gz",
        Body=gzip.compress("\n".join(lines).encode()),
    )
    manifest = {
        "sourceBucket": "drop",
        "destinationBucket": "arn:aws:s3:::inventory",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag, IsLatest",
        "files": [{"key": "drop/inv-1/data/1.csv.gz", "size": 1, "MD5checksum": "x"}],
    }
    deployed.s3.put_object(
        Bucket="inventory", Key="drop/inv-1/manifest.json", Body=json.dumps(manifest)
    )
    out = run(
        capsys,
        "backfill",
        "s3://drop/inv/",
        "--inventory",
        "s3://inventory/drop/inv-1/manifest.json",
        "--state",
        str(tmp_path / "s.json"),
        "--json",
    )
    assert json.loads(out)["counts"] == {"listed": 3, "enqueued": 2, "ignored": 1, "registered": 0}
    _deliver_ingest_queue(deployed)
    keys_now = {i["key"] for i in json.loads(run(capsys, "items", "--json"))}
    assert {"inv/a.png", "inv/b c+d.png"} <= keys_now and "other/skip.png" not in keys_now


def test_redrive_failures_after_a_fix_registers_each_file_once(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet
) -> None:
    # A probe timeout too short for anything: the "bug" a later deployment fixes.
    broken = build_runner(deployed.settings.model_copy(update={"probe_timeout_seconds": 1e-4}))
    deployed.deliver(deployed.body("slow/clip.mp4", media.bytes("clip.mp4")), runner=broken)
    codes = {f["key"]: f["error_code"] for f in json.loads(run(capsys, "failures", "--json"))}
    assert codes["slow/clip.mp4"] == "PROBE_TIMEOUT"
    assert "would redrive 2 failure records" in run(capsys, "redrive", "--failures", "--dry-run")
    counts = json.loads(run(capsys, "redrive", "--failures", "--code", "PROBE_TIMEOUT", "--json"))
    assert counts == {
        "moved": 0,
        "poison_left": 0,
        "redriven": 1,
        "gone": 0,
        "sink_moved": 0,
        "sink_records_left": 0,
    }
    # Redriving twice before the queue is drained: the same event, one outcome.
    run(capsys, "redrive", "--failures", "--code", "PROBE_TIMEOUT")
    _deliver_ingest_queue(deployed)  # the fixed code
    items = [i for i in json.loads(run(capsys, "items", "--json")) if i["key"] == "slow/clip.mp4"]
    assert len(items) == 1
    status = json.loads(run(capsys, "status", "--json"))
    assert status["events"] == 7 and status["outcomes"]["registered"] == 3  # 5 + fail + redrive
    again = json.loads(run(capsys, "redrive", "--failures", "--code", "PROBE_TIMEOUT", "--json"))
    assert again["redriven"] == 0  # registered since it failed: nothing left to redrive
    assert "PROBE_TIMEOUT" not in run(capsys, "failures", "--csv")


def test_redrive_dead_letters_moves_s3_events_and_leaves_poison(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet
) -> None:
    dlq = deployed.sqs.get_queue_url(QueueName="dlq")["QueueUrl"]
    deployed.sqs.send_message(
        QueueUrl=dlq, MessageBody=deployed.body("late.png", media.bytes("plain.png"))
    )
    deployed.sqs.send_message(QueueUrl=dlq, MessageBody="not an S3 event")
    counts = json.loads(run(capsys, "redrive", "--dead-letters", "--json"))
    assert counts == {
        "moved": 1,
        "poison_left": 1,
        "redriven": 0,
        "gone": 0,
        "sink_moved": 0,
        "sink_records_left": 0,
    }
    _deliver_ingest_queue(deployed)
    assert "late.png" in {i["key"] for i in json.loads(run(capsys, "items", "--json"))}
    attrs = deployed.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    left = int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
    assert left == 1
    assert main(["--stack", "media-ingest", "redrive"]) == 2


def _drop_more(stack: Stack, media: MediaSet) -> None:
    stack.deliver(
        stack.body("img/portrait.jpg", media.bytes("portrait.jpg")),
        stack.body("img/plain.png", media.bytes("plain.png")),
        stack.body("med/scan.dcm", media.bytes("scan.dcm")),
    )


def test_export_nucleus_loads_with_the_official_client_classes(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet, tmp_path: Path
) -> None:
    import nucleus

    _drop_more(deployed, media)
    catalog = {i["key"]: i for i in json.loads(run(capsys, "items", "--json"))}
    out = run(
        capsys,
        "export",
        "--dataset",
        "main",
        "--format",
        "nucleus",
        "--out",
        str(tmp_path),
        "--update",
    )
    assert "3 items and scenes" in out
    assert "refused 2 objects this format cannot carry (1 audio, 1 dicom)" in out
    folder = tmp_path / "nucleus"
    lines = (folder / "items.jsonl").read_text().splitlines()
    items = {i.reference_id: i for i in map(nucleus.DatasetItem.from_json, map(json.loads, lines))}
    assert set(items) == {"drop/img/portrait.jpg", "drop/img/plain.png"}
    portrait = items["drop/img/portrait.jpg"]
    assert portrait.image_location == catalog["img/portrait.jpg"]["object_url"]
    assert portrait.metadata is not None
    assert (portrait.metadata["width"], portrait.metadata["height"]) == (48, 64)  # EXIF turn
    assert portrait.metadata["orientation"] == 6
    assert portrait.metadata["etag"] == catalog["img/portrait.jpg"]["etag"]
    [line] = (folder / "scenes.jsonl").read_text().splitlines()
    scene = nucleus.VideoScene.from_json(json.loads(line))
    video = catalog["v/clip.mp4"]
    assert scene.reference_id == "drop/v/clip.mp4"
    assert scene.video_location == video["object_url"]
    assert scene.frame_rate is None  # the client refuses one beside a video URL
    probed = video["media"]["video"]
    assert scene.metadata["fps"] == probed["fps"] and round(scene.metadata["fps"], 2) == 29.97
    assert scene.metadata["fps_fraction"] == "30000/1001"
    assert (scene.metadata["width"], scene.metadata["height"]) == (320, 240)
    assert scene.metadata["duration"] == probed["duration"]
    assert scene.to_payload()["video_url"] == video["object_url"]  # validates
    assert json.loads((folder / "export.json").read_text())["update"] is True
    refused = list(csv.DictReader((folder / "refused.csv").open()))
    assert sorted(r["kind"] for r in refused) == ["audio", "dicom"]


def test_export_encord_csv_rows_and_refusals(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet, tmp_path: Path
) -> None:
    _drop_more(deployed, media)
    summary = json.loads(
        run(
            capsys,
            "export",
            "--dataset",
            "main",
            "--format",
            "encord-csv",
            "--out",
            str(tmp_path),
            "--json",
        )
    )
    assert summary["files"] == ["refused.csv", "registration.csv"]
    assert summary["entries"] == 1
    assert summary["refused"] == {"audio": 1, "dicom_series": 1, "images": 2}
    folder = tmp_path / "encord-csv"
    rows = list(csv.DictReader((folder / "registration.csv").open()))
    assert rows == [
        {
            "ObjectUrl": "https://drop.s3.us-east-1.amazonaws.com/v/clip.mp4",
            "Title": "v/clip.mp4",
            "Create video": "",
        }
    ]
    refused = {
        r["object_url"].rsplit("/", 1)[-1]: r["kind"]
        for r in csv.DictReader((folder / "refused.csv").open())
    }
    assert refused == {
        "tone.wav": "audio",
        "scan.dcm": "dicom_series",
        "portrait.jpg": "images",
        "plain.png": "images",
    }
    assert (
        main(
            [
                "--stack",
                "media-ingest",
                "export",
                "--dataset",
                "main",
                "--format",
                "encord-csv",
                "--out",
                str(tmp_path),
                "--update",
            ]
        )
        == 2
    )
    assert "applies to --format nucleus" in capsys.readouterr().err
    assert (
        main(
            [
                "--stack",
                "media-ingest",
                "export",
                "--dataset",
                "nope",
                "--format",
                "nucleus",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "'nope' has no registered items" in capsys.readouterr().err


def test_export_encord_json_equals_the_stored_parts(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet, tmp_path: Path
) -> None:
    _drop_more(deployed, media)
    out = run(
        capsys, "export", "--dataset", "main", "--format", "encord-json", "--out", str(tmp_path)
    )
    assert "5 entries" in out and "2 files written: index.json, part-00001.json" in out
    folder = tmp_path / "encord-json"
    for name in ("part-00001.json", "index.json"):
        stored = deployed.s3.get_object(Bucket="manifests", Key=f"manifests/main/{name}")
        assert (folder / name).read_bytes() == stored["Body"].read()
    assert json.loads((folder / "part-00001.json").read_text()) == deployed.manifest_parts()[0]
    urls = {u.rsplit("/", 1)[-1] for u in deployed.manifest_urls()}
    assert urls == {"clip.mp4", "tone.wav", "portrait.jpg", "plain.png", "scan.dcm"}


def test_backfill_refuses_a_bucket_the_stack_may_not_read_before_enqueuing_anything(
    deployed: Stack, capsys: pytest.CaptureFixture[str], media: MediaSet, tmp_path: Path
) -> None:
    deployed.s3.create_bucket(Bucket="legacy")
    deployed.s3.put_object(Bucket="legacy", Key="old/a.png", Body=media.bytes("plain.png"))
    queue = deployed.sqs.get_queue_url(QueueName="ingest")["QueueUrl"]
    state = str(tmp_path / "s.json")
    capsys.readouterr()
    assert main(["--stack", "media-ingest", "backfill", "s3://legacy/old/", "--state", state]) == 2
    err = capsys.readouterr().err
    assert "may not read s3://legacy" in err and "ExtraSourceBucketArns" in err
    assert _visible(deployed, queue) == 0
    # Deployed with the bucket among its extra sources, the same backfill goes ahead.
    cfn = boto3.client("cloudformation", endpoint_url=deployed.endpoint)
    template = dict(cfn.get_template(StackName="media-ingest")["TemplateBody"])  # moto: a dict
    template["Parameters"] = {"ExtraSourceBucketArns": {"Type": "String", "Default": ""}}
    cfn.create_stack(
        StackName="with-legacy",
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "ExtraSourceBucketArns", "ParameterValue": "arn:aws:s3:::legacy"}
        ],
    )
    assert main(["--stack", "with-legacy", "backfill", "s3://legacy/old/", "--state", state]) == 0
    assert _visible(deployed, queue) == 1


def _visible(stack: Stack, queue: str) -> int:
    got = stack.sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(got["Attributes"]["ApproximateNumberOfMessages"])
