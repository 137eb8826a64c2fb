"""Label Studio, real and live: a stack with the sink deployed on LocalStack feeds the real
Label Studio server that infra/integration.sh starts (infra/labelstudio/harness.sh), and the
exports are imported into it. What Label Studio holds is read back with label-studio-sdk.
The sink tests run in file order on one stack (the first drops the files the others use).

Needs LABEL_STUDIO_URL (the server, started with LS_S3_ENDPOINT pointing at LocalStack, so
its S3 storages resolve against it) and LS_PORT for the harness's token command.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from label_studio_sdk import LabelStudio

from media_ingest.errors import ErrorCode, Stage
from media_ingest.media import MediaKind
from media_ingest.ops.export import ExportFormat, export
from media_ingest.platforms.label_studio import DATA_KEYS, LABEL_CONFIGS
from media_ingest.records import CatalogItem, Outcome, OutcomeKind
from media_ingest.sinks.changes import ChangeAction, ChangeBatch, batches_of
from tests.integration.conftest import ROOT, Deployed, deploy, stack_name
from tests.support.items import mixed_dataset
from tests.support.media import MediaSet

FILES = 50


@dataclass
class Server:
    url: str
    token: str
    ls: LabelStudio

    def headers(self) -> dict[str, str]:
        refreshed = requests.post(
            f"{self.url}/api/token/refresh/", json={"refresh": self.token}, timeout=30
        )
        refreshed.raise_for_status()
        return {"Authorization": f"Bearer {refreshed.json()['access']}"}

    def project(self, kind: MediaKind, title: str) -> int:
        created = self.ls.projects.create(
            title=f"{title} {uuid.uuid4().hex[:6]}", label_config=LABEL_CONFIGS[kind]
        )
        assert created.id is not None
        return int(created.id)

    def tasks(self, project: int) -> list[Any]:
        return list(self.ls.tasks.list(project=project, fields="all", resolve_uri=False))


@pytest.fixture(scope="module")
def server() -> Server:
    url = os.environ.get("LABEL_STUDIO_URL")
    if not url:
        pytest.fail("LABEL_STUDIO_URL is not set: run make test (infra/integration.sh starts it)")
    token = subprocess.run(
        ["bash", str(ROOT / "infra/labelstudio/harness.sh"), "token"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    client = LabelStudio(base_url=url, api_key=token)  # type: ignore[no-untyped-call]
    return Server(url, token, client)


@dataclass
class Live:
    stack: Deployed
    images: int
    secret_arn: str


@pytest.fixture(scope="module")
def live(server: Server) -> Live:
    """A stack whose sink sends the default dataset's images to a fresh project; its token
    reaches the function only through a Secrets Manager secret (LocalStack's)."""
    images = server.project(MediaKind.IMAGE, "sink images")
    name = stack_name("ls")
    secrets = boto3.client("secretsmanager")
    secret = json.dumps({"url": server.url, "api_key": server.token})
    secret_name = f"{name}-label-studio-{uuid.uuid4().hex[:6]}"
    arn = secrets.create_secret(Name=secret_name, SecretString=secret)["ARN"]
    stack = deploy(
        name,
        f"LabelStudioSecretArn={arn}",
        # Videos named for the image project too: the failure record test's.
        f"LabelStudioProjects={json.dumps({'default': {'image': images, 'video': images}})}",
        "UpdateDatasets=default",
    )
    return Live(stack, images, arn)


def _until(what: str, check: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:g} s")
        time.sleep(2)


def _send(live: Live, batch: ChangeBatch) -> None:
    """A message on the sink queue as the ingest function sends one, with a deduplication
    id of its own: a redelivery after SQS's 5-minute window, which only the sink stops."""
    live.stack.sqs.send_message(
        QueueUrl=live.stack.outputs.SinkQueueUrl,
        MessageBody=batch.body(),
        MessageGroupId=batch.dataset,
        MessageDeduplicationId=uuid.uuid4().hex,
    )


def _item_outcome(item: CatalogItem) -> Outcome:
    return Outcome(
        kind=OutcomeKind.REGISTERED,
        event_id=item.event_id,
        bucket=item.bucket,
        key=item.key,
        item=item,
        dataset=item.dataset,
    )


def test_fifty_files_become_fifty_tasks_whose_media_resolve_through_s3_storage(
    live: Live, server: Server, media: MediaSet
) -> None:
    stack, project = live.stack, live.images
    prefix = stack.prefix()
    png = media.bytes("plain.png")
    keys = {stack.drop(f"{prefix}{n:02d}.png", png) for n in range(FILES)}
    outcomes = stack.wait(keys, timeout=600)
    assert {o.kind for o in outcomes} == {OutcomeKind.REGISTERED}
    _until(f"{FILES} tasks", lambda: len(server.tasks(project)) >= FILES, timeout=300)
    time.sleep(5)  # anything extra would have landed by now
    tasks = server.tasks(project)
    bucket = stack.outputs.DropBucketName
    assert sorted(t.data["image"] for t in tasks) == sorted(f"s3://{bucket}/{k}" for k in keys)
    assert {t.meta["key"] for t in tasks} == keys
    assert all(t.meta["probe"]["width"] > 0 and t.meta["size"] == len(png) for t in tasks)

    # Their media resolve through a Label Studio S3 storage on the drop bucket (LocalStack).
    storage = server.ls.import_storage.s3.create(
        project=project,
        bucket=bucket,
        prefix=prefix,
        presign=True,
        presign_ttl=15,
        use_blob_urls=True,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        title="drop bucket",
    )
    assert storage.id is not None
    headers = server.headers()
    for task in tasks:
        got = requests.get(f"{server.url}/api/tasks/{task.id}/", headers=headers, timeout=30)
        resolved = got.json()["data"]["image"]
        uri = base64.urlsafe_b64decode(resolved.split("fileuri=")[1] + "==").decode()
        assert uri == task.data["image"]
        hop = requests.get(resolved, headers=headers, allow_redirects=False, timeout=30)
        assert hop.status_code in (302, 303), hop.text[:200]
        assert requests.get(hop.headers["Location"], timeout=30).content == png


def test_a_redelivered_batch_adds_nothing(live: Live, server: Server) -> None:
    """Every registration sent to the sink again, past SQS's deduplication: the sink finds
    each object's task and leaves it as it is. (Updates, `updated` outcomes, need S3's
    sequencer, which LocalStack sends constant: tests/handlers/test_sink.py covers them.)"""
    stack, project = live.stack, live.images
    before = {t.id: (t.data, t.meta) for t in server.tasks(project)}
    assert len(before) >= FILES
    keys = {meta["key"] for _, meta in before.values()}
    items = [i for i in stack.reader().dataset_items("default") if i.key in keys]
    assert len(items) == len(before)
    for batch in batches_of(_item_outcome(i) for i in items):
        _send(live, batch)
    marker = stack.outputs.SinkQueueUrl
    assert marker is not None

    def drained() -> bool:
        attributes = stack.sqs.get_queue_attributes(
            QueueUrl=marker,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(v == "0" for v in attributes.values())

    _until("the sink queue to drain", drained)
    time.sleep(3)
    after = {t.id: (t.data, t.meta) for t in server.tasks(project)}
    assert after == before


def test_a_deletion_removes_the_task_or_flags_an_annotated_one(live: Live, server: Server) -> None:
    stack, project = live.stack, live.images
    tasks = sorted(server.tasks(project), key=lambda t: t.meta["key"])
    plain, annotated = tasks[0], tasks[1]
    server.ls.annotations.create(
        id=annotated.id,
        result=[
            {
                "from_name": "label",
                "to_name": "image",
                "type": "rectanglelabels",
                "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["object"]},
            }
        ],
    )
    items = {i.key: i for i in stack.reader().dataset_items("default")}
    for task in (plain, annotated):
        item = items[task.meta["key"]]
        [batch] = batches_of([_item_outcome(item)])
        deleted = ChangeBatch(
            dataset=batch.dataset,
            changes=[c.model_copy(update={"action": ChangeAction.DELETE}) for c in batch.changes],
        )
        _send(live, deleted)

    def flagged() -> dict[str, Any]:
        held = [t for t in server.tasks(project) if t.id == annotated.id]
        return dict(held[0].meta or {}) if held else {}

    _until(
        "the deletions",
        lambda: (
            {t.id for t in server.tasks(project)} == {t.id for t in tasks} - {plain.id}
            and "deleted" in flagged()
        ),
    )
    [kept] = [t for t in server.tasks(project) if t.id == annotated.id]
    assert kept.total_annotations == 1 and kept.meta["key"] == annotated.meta["key"]


def test_a_kind_the_project_does_not_label_is_a_sink_failure_record(
    live: Live, server: Server, media: MediaSet
) -> None:
    stack = live.stack
    key = stack.drop(stack.prefix() + "clip.mp4", media.bytes("clip.mp4"))
    [outcome] = stack.wait({key})
    assert outcome.kind is OutcomeKind.REGISTERED

    def recorded() -> bool:
        return any(f.key == key and f.stage is Stage.SINK for f in stack.reader().failures())

    _until("the sink's failure record", recorded)
    [failure] = [f for f in stack.reader().failures() if f.key == key]
    assert failure.error_code is ErrorCode.SINK_REFUSED
    assert f"project {live.images}'s labelling config has no $video" in failure.message
    listed = stack.cli("failures", "--csv", "--code", "SINK_REFUSED")
    assert key in listed and ",sink,SINK_REFUSED," in listed


def test_the_export_imports_whole_into_projects_with_the_documented_configs(
    server: Server, tmp_path: Path
) -> None:
    """Every kind of the mixed dataset, through the real server's import: all accepted, read
    back with every data and meta field as exported."""
    items, groups = mixed_dataset()

    class Catalog:
        def dataset_items(self, dataset: str) -> list[CatalogItem]:
            return items

    class Groups:
        def sealed_groups(self, dataset: str) -> Any:
            return groups

    class NoParts:
        def index_body(self, dataset: str) -> bytes | None:
            return None

        def part_body(self, dataset: str, number: int) -> bytes | None:
            return None

        def removals_body(self, dataset: str, number: int) -> bytes | None:
            return None

    export(ExportFormat.LABEL_STUDIO, "main", tmp_path, Catalog(), NoParts(), groups=Groups())
    folder = tmp_path / "label-studio"
    info = json.loads((folder / "export.json").read_text())
    assert {f["kind"] for f in info["files"]} == {k.value for k in DATA_KEYS}
    for entry in info["files"]:
        config = (folder / entry["config"]).read_text()
        created = server.ls.projects.create(title=f"export {entry['kind']}", label_config=config)
        assert created.id is not None
        exported = json.loads((folder / entry["tasks"]).read_text())
        result = server.ls.projects.import_tasks(id=created.id, request=exported)
        assert result.task_count == len(exported)
        held = sorted(
            ({"data": t.data, "meta": t.meta} for t in server.tasks(int(created.id))),
            key=lambda t: json.dumps(t, sort_keys=True),
        )
        assert held == sorted(exported, key=lambda t: json.dumps(t, sort_keys=True))
