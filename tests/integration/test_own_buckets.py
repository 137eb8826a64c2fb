"""Buckets teams already have, on LocalStack through the real event path (EventBridge rule ->
ingest queue -> function): attach beside another consumer's notification, deletions,
reconcile of lost events and missed deletions, and the same content under several keys."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config

from media_ingest.ops.attach import READ_ACTIONS, normalized
from media_ingest.records import OutcomeKind
from tests.integration.conftest import ROOT, Deployed, own_buckets
from tests.support.content import forge_crc32

FILES = 200
OTHER = "111111111111"  # another account on LocalStack


@dataclass
class Theirs:
    """A bucket a team already has, with its own notification to its own queue."""

    bucket: str
    queue_url: str
    config: dict[str, Any]


def _empty(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


@pytest.fixture
def theirs(deployed: Deployed) -> Iterator[Theirs]:
    bucket = own_buckets(deployed.name)["attached"]
    sqs = deployed.sqs
    queue_url = sqs.create_queue(QueueName=f"{bucket}-their-pipeline")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    deployed.s3.create_bucket(Bucket=bucket)
    _detach(deployed, bucket)  # an interrupted run may have left it attached
    _empty(deployed.s3, bucket)
    config = {
        "QueueConfigurations": [
            {"Id": "their-pipeline", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
        ]
    }
    deployed.s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=config
    )
    _drain(sqs, queue_url)  # S3's test event for their configuration
    try:
        yield Theirs(bucket, queue_url, config)
    finally:
        _detach(deployed, bucket)  # if a failed test left it attached
        _empty(deployed.s3, bucket)
        deployed.s3.delete_bucket(Bucket=bucket)
        sqs.delete_queue(QueueUrl=queue_url)


def _detach(deployed: Deployed, bucket: str) -> None:
    """`media-ingest detach`, whether or not it is attached (exit status 2 when it is not)."""
    subprocess.run(
        [
            str(ROOT / ".venv/bin/media-ingest"),
            "--stack",
            deployed.name,
            "detach",
            f"s3://{bucket}",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def _drain(sqs: Any, queue_url: str, until: int = 0, timeout: float = 5) -> list[dict[str, Any]]:
    """Receive (and delete) messages until `until` S3 records came, or `timeout` passed."""
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not until or len(records) < until):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        for message in messages:
            records += json.loads(message["Body"]).get("Records", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
    return records


def _config(s3: Any, bucket: str) -> dict[str, Any]:
    return normalized(s3.get_bucket_notification_configuration(Bucket=bucket))


def test_attach_keeps_their_notification_ingests_every_file_and_detach_restores_it(
    deployed: Deployed, theirs: Theirs
) -> None:
    s3, bucket = deployed.s3, theirs.bucket
    before = _config(s3, bucket)
    said = deployed.cli("attach", f"s3://{bucket}")
    assert f"s3://{bucket}: EventBridge delivery turned on" in said
    assert "queue arn:aws:sqs:" in said and "id their-pipeline" in said
    assert _config(s3, bucket) == {**before, "EventBridgeConfiguration": {}}
    assert _drain(deployed.sqs, theirs.queue_url, timeout=2) == []  # no test event for them

    run = uuid.uuid4().hex[:8]
    keys = [f"incoming/{run}/{n:03d}.txt" for n in range(FILES)]
    outside = [f"elsewhere/{run}/{n}.txt" for n in range(5)]  # not under the attached prefix
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=f"{k}\n".encode()), keys))
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x\n"), outside))

    # Their consumer still gets every event, ours or not.
    records = _drain(deployed.sqs, theirs.queue_url, until=FILES + 5, timeout=120)
    assert sorted(r["s3"]["object"]["key"] for r in records) == sorted(keys + outside)
    # The stack ingests every file under the prefix, once, in the dataset of its source.
    outcomes = [o for o in deployed.wait(set(keys), timeout=600) if o.bucket == bucket]
    assert len(outcomes) == FILES and {o.kind for o in outcomes} == {OutcomeKind.REGISTERED}
    assert {o.dataset for o in outcomes} == {"own"}
    ledger = [o for o in deployed.reader().ledger()[0] if o.bucket == bucket]
    assert not [o for o in ledger if o.key in outside]

    said = deployed.cli("detach", f"s3://{bucket}")
    assert "EventBridge delivery turned off" in said
    assert "the configuration is exactly as attach found it" in said
    assert _config(s3, bucket) == before == normalized(theirs.config)


def test_an_attached_deletion_marks_the_item_removed_and_the_key_comes_back(
    deployed: Deployed, theirs: Theirs
) -> None:
    s3, bucket = deployed.s3, theirs.bucket
    deployed.cli("attach", f"s3://{bucket}")
    key = f"incoming/{uuid.uuid4().hex[:8]}/clip.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"first\n")
    deployed.wait({key})
    s3.delete_object(Bucket=bucket, Key=key)
    gone = deployed.wait_count(key, 2)
    assert sorted(o.kind.value for o in gone) == ["deleted", "registered"]
    assert key not in {i.key for i in deployed.reader().items()}
    removed = deployed.reader().removals()
    assert any(url.endswith(key) for url in removed)
    s3.put_object(Bucket=bucket, Key=key, Body=b"second\n")
    back = deployed.wait_count(key, 3)
    again = next(o for o in back if o.detail and "registered again" in o.detail)
    assert again.kind is OutcomeKind.REGISTERED
    assert key in {i.key for i in deployed.reader().items()}
    index = json.loads(
        s3.get_object(
            Bucket=deployed.outputs.ManifestBucketName,
            Key=f"{deployed.outputs.ManifestPrefix}own/index.json",
        )["Body"].read()
    )
    changes = []
    for part in index["removals"]:
        body = s3.get_object(Bucket=deployed.outputs.ManifestBucketName, Key=part["key"])
        changes += [c for c in json.loads(body["Body"].read())["changes"] if c["key"] == key]
    assert [c["change"] for c in changes] == ["removed", "restored"]


def test_a_bucket_of_another_account_is_checked_with_its_own_credentials(
    deployed: Deployed, tmp_path: Path
) -> None:
    """LocalStack keeps accounts apart by access key: account 111111111111 owns this bucket,
    encrypted with its own KMS key; attach reads its policy, key and rules with a profile."""
    other = boto3.session.Session(
        aws_access_key_id=OTHER, aws_secret_access_key="test", region_name="us-east-1"
    )
    bucket = own_buckets(deployed.name)["attached"] + "-x"
    s3, kms = other.client("s3"), other.client("kms")
    s3.create_bucket(Bucket=bucket)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key,
                    }
                }
            ]
        },
    )
    (tmp_path / "credentials").write_text(
        f"[theirs]\naws_access_key_id = {OTHER}\naws_secret_access_key = test\n"
    )
    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)  # the profile, not the environment, must speak for the bucket
    stack_env = {**env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

    def attach(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(ROOT / ".venv/bin/media-ingest"),
                "--stack",
                deployed.name,
                "attach",
                f"s3://{bucket}",
                "--bucket-profile",
                "theirs",
                *argv,
            ],
            capture_output=True,
            text=True,
            env=stack_env,
            timeout=120,
            check=False,
        )

    try:
        refused = attach()
        assert refused.returncode == 2, refused.stderr
        for missing in (
            "stack rule covers the bucket",
            "bucket policy (other account)",
            "KMS key in the stack",
            "KMS key policy",
            "events forwarded from the other account",
        ):
            assert f"- {missing}" in refused.stderr
        role = deployed.outputs.IngestFunctionRoleArn
        assert role is not None and role in refused.stderr  # the grant to add names it
        assert (
            s3.get_bucket_notification_configuration(Bucket=bucket).get("EventBridgeConfiguration")
            is None
        )  # refused: nothing written
        grant = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": list(READ_ACTIONS),
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                },
            ],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(grant))
        forced = attach("--force", "--json")
        assert forced.returncode == 0, forced.stderr
        statuses = {c["name"]: c["status"] for c in json.loads(forced.stdout)["checks"]}
        assert statuses["bucket policy (other account)"] == "ok"
        assert statuses["KMS key policy"] == "missing"
        assert (
            s3.get_bucket_notification_configuration(Bucket=bucket)["EventBridgeConfiguration"]
            == {}
        )
    finally:
        subprocess.run(
            [
                str(ROOT / ".venv/bin/media-ingest"),
                "--stack",
                deployed.name,
                "detach",
                f"s3://{bucket}",
                "--bucket-profile",
                "theirs",
            ],
            capture_output=True,
            env=stack_env,
            timeout=120,
            check=False,
        )
        s3.delete_bucket(Bucket=bucket)


# -- reconcile -----------------------------------------------------------------------------
# The counts: 1,000 objects, 50 events lost, 20 deleted (`python -m bench --only
# own_buckets` runs this test and reads its figures back; MEDIA_INGEST_RECONCILE_OBJECTS
# scales it for a quick local run).
OBJECTS = int(os.environ.get("MEDIA_INGEST_RECONCILE_OBJECTS", "1000"))
LOST, DELETED = OBJECTS // 20, OBJECTS // 50
FIGURES = os.environ.get("MEDIA_INGEST_FIGURES")  # a JSON file the bench reads back


@pytest.fixture
def attached_bucket(deployed: Deployed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A source bucket of the stack (by role: reconciled or scheduled), attached, emptied and
    removed afterwards."""
    bucket = own_buckets(deployed.name)[request.param]
    deployed.s3.create_bucket(Bucket=bucket)
    # Start clean even after an interrupted run: nothing attached, nothing in the bucket.
    _detach(deployed, bucket)
    deployed.s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={}, SkipDestinationValidation=True
    )
    _empty(deployed.s3, bucket)
    deployed.cli("attach", f"s3://{bucket}")
    try:
        yield bucket
    finally:
        deployed.cli("detach", f"s3://{bucket}")
        _empty(deployed.s3, bucket)
        deployed.s3.delete_bucket(Bucket=bucket)


class EventSource:
    """The ingest function's SQS event source mapping, switched off and on."""

    def __init__(self, deployed: Deployed) -> None:
        self.lam = boto3.client("lambda")
        function = deployed.outputs.IngestFunctionName
        [mapping] = self.lam.list_event_source_mappings(FunctionName=function)[
            "EventSourceMappings"
        ]
        self.uuid = mapping["UUID"]

    def switch(self, enabled: bool) -> None:
        self.lam.update_event_source_mapping(UUID=self.uuid, Enabled=enabled)
        wanted = "Enabled" if enabled else "Disabled"
        deadline = time.monotonic() + 60
        while self.lam.get_event_source_mapping(UUID=self.uuid)["State"] != wanted:
            assert time.monotonic() < deadline, f"event source mapping not {wanted}"
            time.sleep(1)
        if not enabled:
            # A receive already waiting (long polling, up to 20 s) still delivers its batch.
            time.sleep(25)


def _lose(deployed: Deployed, events: int) -> int:
    """Receive and delete `events` S3 events from the ingest queue: events lost on purpose."""
    lost = 0
    deadline = time.monotonic() + 120
    while lost < events and time.monotonic() < deadline:
        got = deployed.sqs.receive_message(
            QueueUrl=deployed.outputs.IngestQueueUrl, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if got:
            lost += sum(1 for m in got if "aws.s3" in m["Body"])
            deployed.sqs.delete_message_batch(
                QueueUrl=deployed.outputs.IngestQueueUrl,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
    return lost


def _put_all(s3: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=f"{k}\n".encode()), keys))


@pytest.mark.parametrize("attached_bucket", ["reconciled"], indirect=True)
def test_reconcile_finds_lost_events_and_missed_deletions_and_apply_settles_them(
    deployed: Deployed, attached_bucket: str
) -> None:
    s3, bucket = deployed.s3, attached_bucket
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}/{n:04d}.txt" for n in range(OBJECTS)]
    kept, late = keys[: OBJECTS - LOST], keys[OBJECTS - LOST :]
    clock = time.monotonic()
    _put_all(s3, bucket, kept)
    deployed.wait(set(kept), timeout=900)
    ingested = time.monotonic() - clock

    mapping = EventSource(deployed)
    mapping.switch(False)
    try:
        _put_all(s3, bucket, late)  # created while nothing consumes the queue...
        gone = kept[:: len(kept) // DELETED][:DELETED]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in gone]})
        assert _lose(deployed, LOST + DELETED) == LOST + DELETED  # ...and their events lost
    finally:
        mapping.switch(True)

    source = f"s3://{bucket}/{run}/"
    report = json.loads(deployed.cli("reconcile", source, "--grace", "0s", "--json"))
    counts = report["counts"]
    assert (counts["listed"], counts["lost"], counts["deleted"], counts["overwritten"]) == (
        OBJECTS - DELETED,
        LOST,
        DELETED,
        0,
    )
    assert counts["enqueued"] == 0 and counts["rows"] == OBJECTS - LOST
    calls = report["calls"]
    assert not any(name.endswith("GetObject") for name in calls)  # no object byte read
    assert calls.get("S3.ListObjectsV2", 0) >= 1 and calls.get("DynamoDB.Scan", 0) >= 1  # counted

    clock = time.monotonic()
    applied = json.loads(deployed.cli("reconcile", source, "--grace", "0s", "--apply", "--json"))
    assert applied["counts"]["enqueued"] == LOST + DELETED
    deployed.wait(set(late), timeout=600)
    for key in gone:
        assert {o.kind for o in deployed.wait_count(key, 2)} == {
            OutcomeKind.REGISTERED,
            OutcomeKind.DELETED,
        }

    # Every object has exactly one live outcome: one outcome per present key, and a recorded
    # deletion (the item kept, removed) for each deleted one.
    ledger = [o for o in deployed.reader().ledger()[0] if o.bucket == bucket and o.key in keys]
    per_key: dict[str, list[str]] = {}
    for outcome in ledger:
        per_key.setdefault(outcome.key, []).append(outcome.kind.value)
    present = set(keys) - set(gone)
    assert {k: v for k, v in per_key.items() if k in present and v != ["registered"]} == {}
    assert {k: sorted(v) for k, v in per_key.items() if k in gone} == {
        k: ["deleted", "registered"] for k in gone
    }
    live = {i.key for i in deployed.reader().items() if i.bucket == bucket}
    assert live & set(keys) == present
    assert {
        u.rsplit("/", 2)[-2] + "/" + u.rsplit("/", 1)[-1]
        for u in deployed.reader().removals()
        if f"/{run}/" in u
    } == set(gone)

    # No manifest entry twice, and the removal log names the deleted URLs once each.
    urls, removed = _manifest(deployed, "recon", run)
    assert len(urls) == len(set(urls)) == OBJECTS
    assert sorted(removed) == sorted(set(removed)) and len(removed) == DELETED

    settled = time.monotonic() - clock
    again = json.loads(deployed.cli("reconcile", source, "--grace", "0s", "--json"))["counts"]
    assert (again["lost"], again["deleted"], again["overwritten"]) == (0, 0, 0)
    if FIGURES:
        Path(FIGURES).write_text(
            json.dumps(
                {
                    "objects": OBJECTS,
                    "lost": LOST,
                    "deleted": DELETED,
                    "report": counts,
                    "calls": calls,
                    "applied": applied["counts"],
                    "outcomes": dict(Counter(o.kind.value for o in ledger)),
                    "ledger": len(ledger),
                    "seconds": {"ingest": ingested, "apply_until_settled": settled},
                }
            )
        )


def _manifest(deployed: Deployed, dataset: str, run: str) -> tuple[list[str], list[str]]:
    """The object URLs of a run in a dataset's manifest parts, and in its removal log."""
    bucket, prefix = deployed.outputs.ManifestBucketName, deployed.outputs.ManifestPrefix
    index = json.loads(
        deployed.s3.get_object(Bucket=bucket, Key=f"{prefix}{dataset}/index.json")["Body"].read()
    )
    urls: list[str] = []
    for number in range(1, index["open_part"] + 1):
        key = f"{prefix}{dataset}/part-{number:05d}.json"
        try:
            part = json.loads(deployed.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except deployed.s3.exceptions.NoSuchKey:  # the open part is made by its first entry
            continue
        urls += [e["objectUrl"] for e in part.get("text", []) if f"/{run}/" in e["objectUrl"]]
    removed: list[str] = []
    for info in index.get("removals", []):
        log = json.loads(deployed.s3.get_object(Bucket=bucket, Key=info["key"])["Body"].read())
        removed += [
            c["object_url"]
            for c in log["changes"]
            if c["change"] == "removed" and f"/{run}/" in c["object_url"]
        ]
    return urls, removed


@pytest.mark.parametrize("attached_bucket", ["scheduled"], indirect=True)
def test_the_scheduled_reconcile_reads_the_latest_inventory_and_enqueues_what_was_lost(
    deployed: Deployed, attached_bucket: str
) -> None:
    s3, bucket = deployed.s3, attached_bucket
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}/{n:03d}.txt" for n in range(30)]
    _put_all(s3, bucket, keys[:25])
    deployed.wait(set(keys[:25]))
    mapping = EventSource(deployed)
    mapping.switch(False)
    try:
        _put_all(s3, bucket, keys[25:])
        assert _lose(deployed, 5) == 5
    finally:
        mapping.switch(True)
    _write_inventory(deployed, bucket)
    function = deployed.outputs.ReconcileFunctionName
    assert function is not None
    lam = boto3.client("lambda", config=Config(read_timeout=900))
    answer = lam.invoke(FunctionName=function, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    [report] = json.loads(answer["Payload"].read())
    assert report["manifest"].endswith("/2026-11-29T00-00Z/manifest.json")
    counts = report["state"]["counts"]
    assert counts["lost"] == 5 and counts["enqueued"] >= 5
    lost = [o for o in deployed.wait(set(keys[25:])) if o.bucket == bucket]
    assert {o.kind for o in lost} == {OutcomeKind.REGISTERED} and len(lost) == 5


def _write_inventory(deployed: Deployed, bucket: str) -> None:
    """An S3 Inventory report (CSV) of the bucket as it is, written where S3 would: two
    reports, so that the newest is the one read."""
    inventory = own_buckets(deployed.name)["inventory"]
    s3 = deployed.s3
    if inventory not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=inventory)
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            modified = o["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
            rows.append(
                f'"{bucket}","{quote(o["Key"])}","{o["Size"]}","{modified}",'
                f'"{o["ETag"].strip(chr(34))}"'
            )
    base = f"inventory/{bucket}/daily"
    data = f"{base}/data/{uuid.uuid4()}.csv.gz"
    s3.put_object(Bucket=inventory, Key=data, Body=gzip.compress("\n".join(rows).encode()))
    for day, files in (("2026-11-28T00-00Z", []), ("2026-11-29T00-00Z", [{"key": data}])):
        manifest = {
            "sourceBucket": bucket,
            "destinationBucket": f"arn:aws:s3:::{inventory}",
            "version": "2016-11-30",
            "creationTimestamp": str(int(time.time() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
            "files": files,
        }
        s3.put_object(
            Bucket=inventory, Key=f"{base}/{day}/manifest.json", Body=json.dumps(manifest).encode()
        )


# -- the same content under several keys -----------------------------------------------------
PART = 5 * 1024 * 1024  # S3's smallest part (but the last)


def _multipart(s3: Any, bucket: str, key: str, data: bytes) -> None:
    """A multipart upload with a FULL_OBJECT CRC32 (its ETag is no MD5, -N)."""
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    parts = []
    for number, begin in enumerate(range(0, len(data), PART), 1):
        got = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=data[begin : begin + PART],
            ChecksumAlgorithm="CRC32",
        )
        parts.append(
            {"PartNumber": number, "ETag": got["ETag"], "ChecksumCRC32": got["ChecksumCRC32"]}
        )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": parts},
        ChecksumType="FULL_OBJECT",
    )


def test_the_same_bytes_under_three_keys_are_one_group_and_a_crc32_collision_is_not(
    deployed: Deployed,
) -> None:
    s3, drop = deployed.s3, deployed.outputs.DropBucketName
    run = uuid.uuid4().hex[:8]
    text = (f"{run} " * (PART // 9 + 1000)).encode()  # a text file over one part
    one, two, three = f"it-{run}/one.txt", f"it-{run}/two.txt", f"it-{run}/three.txt"
    skipped = f"it-no-copies/{run}/four.txt"
    s3.put_object(Bucket=drop, Key=one, Body=text)
    deployed.wait({one})
    s3.put_object(Bucket=drop, Key=two, Body=text)
    _multipart(s3, drop, three, text)
    s3.put_object(Bucket=drop, Key=skipped, Body=text)
    # Two different files with the same size and CRC32, uploaded so that CRC32 is all S3 has.
    x, y = f"it-{run}/x.txt", f"it-{run}/y.txt"
    head = text[: PART + 10]
    first = forge_crc32(head + b"first", 0x5EED5EED)
    second = forge_crc32(head + b"other", 0x5EED5EED)
    assert first != second and len(first) == len(second)
    _multipart(s3, drop, x, first)
    _multipart(s3, drop, y, second)
    outcomes = {o.key: o for o in deployed.wait({two, three, skipped, x, y})}
    assert {k: o.kind.value for k, o in outcomes.items()} == {
        two: "registered",
        three: "registered",
        skipped: "duplicate",
        x: "registered",
        y: "registered",
    }
    items = {i.key: i for i in deployed.reader().items() if i.key.startswith(f"it-{run}/")}
    original = items[one].object_url
    assert outcomes[skipped].detail == f"same content as {original}"
    assert {k: i.content.duplicate_of for k, i in items.items() if i.content} == {
        one: None,
        two: original,
        three: original,  # only a CRC32 in common: confirmed by hashing both
        x: None,
        y: None,  # same CRC32 and size, refuted by hashing both
    }
    groups = json.loads(deployed.cli("duplicates", "--json"))
    mine = [g for g in groups if any(f"/{run}/" in m["object_url"] for m in g["members"])]
    assert len(mine) == 1
    assert sorted((m["key"], m["registered"]) for m in mine[0]["members"]) == sorted(
        [(one, True), (two, True), (three, True), (skipped, False)]
    )
    text_out = deployed.cli("duplicates", "--dataset", "no-copies")
    assert "skipped" in text_out and original in text_out
