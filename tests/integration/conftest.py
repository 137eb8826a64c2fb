"""Integration tests: template.yaml deployed to the running LocalStack, real event path.

infra/integration.sh starts LocalStack and sets AWS_ENDPOINT_URL; the stack is deployed once
per session by infra/deploy.sh, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from media_ingest.adapters import clients
from media_ingest.ops.adapters.catalog import CatalogReader
from media_ingest.ops.stack import StackOutputs, stack_outputs
from media_ingest.ops.status import wait_for_outcomes
from media_ingest.records import Outcome
from tests.integration import diagnostics

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class Deployed:
    name: str
    outputs: StackOutputs
    s3: Any
    sqs: Any

    def reader(self) -> CatalogReader:
        return CatalogReader(self.outputs.RegistryTableName)

    def prefix(self) -> str:
        """A fresh key prefix, so each test counts only its own objects."""
        return f"it-{uuid.uuid4().hex[:8]}/"

    def drop(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.outputs.DropBucketName, Key=key, Body=data)
        return key

    def wait(self, keys: set[str], timeout: float = 240) -> list[Outcome]:
        try:
            return wait_for_outcomes(self.outputs, keys, timeout=timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{diagnostics.describe(self.name, self.outputs)}") from None

    def wait_count(self, key: str, events: int, timeout: float = 180) -> list[Outcome]:
        """Outcomes of `key` once `events` S3 events for it have one each (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [o for o in self.reader().ledger()[0] if o.key == key]
            if len(found) >= events or time.monotonic() > deadline:
                return found
            time.sleep(2)

    def cli(self, *argv: str) -> str:
        done = subprocess.run(
            [str(ROOT / ".venv/bin/media-ingest"), "--stack", self.name, *argv],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return done.stdout


def stack_name(suffix: str = "") -> str:
    """A stack of this test session's own: `$MEDIA_INGEST_STACK` (default media-ingest-it),
    then the xdist worker (`-gw0`) so parallel workers never share a stack, then `suffix`."""
    base = os.environ.get("MEDIA_INGEST_STACK", "media-ingest-it")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return "-".join(part for part in (base, worker, suffix) if part)


def deploy(name: str, *parameters: str) -> Deployed:
    """Deploy template.yaml as stack `name` with infra/deploy.sh, as a user would."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if "127.0.0.1" not in endpoint and "localhost" not in endpoint:
        pytest.fail(
            "integration tests need AWS_ENDPOINT_URL pointing at LocalStack (run make test)"
        )
    subprocess.run(
        ["bash", str(ROOT / "infra/deploy.sh"), name, *parameters], check=True, timeout=900
    )
    clients.client.cache_clear()
    stack = Deployed(name, stack_outputs(name), boto3.client("s3"), boto3.client("sqs"))
    # One object through the whole path first: if the function cannot run at all, every
    # test fails here at once, with the diagnostics, instead of each after its own timeout.
    stack.wait({stack.drop(stack.prefix() + "preflight.txt", b"preflight\n")}, timeout=300)
    return stack


# Grouping prefixes of the session stack (tests/integration/test_groups.py); keys of the other
# tests never fall under them.
GROUP_ROUTES = '{"it-groups/":"image_groups","it-sequences/":"image_sequences"}'
# Short, so that the sweeper (every minute) seals the DICOM series test's series in time.
GROUP_QUIET_SECONDS = 20
# Sidecars on, with a suffix no other test's keys end in (tests/integration/test_stack.py).
SIDECAR_SUFFIX = ".meta.json"
# A dataset that skips objects whose bytes are already registered (test_own_buckets.py).
SKIP_DUPLICATE_DATASETS = "no-copies"
DATASET_ROUTES = '{"it-no-copies/":"no-copies"}'


def own_buckets(name: str) -> dict[str, str]:
    """The buckets of the session stack's SourceBuckets (tests/integration/test_own_buckets.py
    creates them: the stack's rule names them before they exist), and where the scheduled
    reconcile finds the inventory reports of the last one."""
    return {
        "attached": f"{name}-own",
        "reconciled": f"{name}-recon",
        "scheduled": f"{name}-sched",
        "inventory": f"{name}-inv",
    }


def source_buckets(name: str) -> str:
    buckets = own_buckets(name)
    return (
        f"{buckets['attached']}/incoming/=own,{buckets['reconciled']}=recon,"
        f"{buckets['scheduled']}=sched"
    )


def inventory_location(name: str) -> str:
    buckets = own_buckets(name)
    return f"s3://{buckets['inventory']}/inventory/{buckets['scheduled']}/daily/"


def legacy_bucket(stack: str) -> str:
    """The bucket the stack is deployed to read besides its drop bucket (backfill's source)."""
    return f"{stack}-legacy"


@pytest.fixture(scope="session")
def deployed() -> Iterator[Deployed]:
    name = stack_name()
    yield deploy(
        name,
        f"ExtraSourceBucketArns=arn:aws:s3:::{legacy_bucket(name)}",
        f"GroupRoutes={GROUP_ROUTES}",
        f"GroupQuietSeconds={GROUP_QUIET_SECONDS}",
        "KeyFrames=on",
        f"SidecarSuffix={SIDECAR_SUFFIX}",
        f"SourceBuckets={source_buckets(name)}",
        f"SkipDuplicateDatasets={SKIP_DUPLICATE_DATASETS}",
        "ContentIdentity=on",  # not the default: the content-group tests need it
        f"DatasetRoutes={DATASET_ROUTES}",
        # Daily: never fires during a test run; the test invokes the function itself.
        "ReconcileSchedule=rate(1 day)",
        f"ReconcileInventories={inventory_location(name)}",
        "ReconcileGraceMinutes=0",
    )
