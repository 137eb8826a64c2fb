"""Fixtures: the executor sources on sys.path, and a running LocalStack for `localstack` tests."""

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parent / "harness.sh"
# LOCALSTACK_PORT selects the instance (and its home), as for harness.sh
ENDPOINT = f"http://127.0.0.1:{os.environ.get('LOCALSTACK_PORT') or 4566}"
LS_HOME = Path(
    subprocess.run(
        ["bash", str(HERE.parent / "install.sh"), "--print-home"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
)
RUNTIME = LS_HOME / "runtime-venv"
# test the working copy of the executor, not only the installed one
sys.path.insert(0, str(HERE.parent / "process_executor"))


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=3) as r:
            return r.status == 200 and "services" in json.load(r)
    except OSError:
        return False


@pytest.fixture(scope="session")
def localstack():
    """Start LocalStack via the harness unless it already runs; stop it afterwards only if
    this session started it (set MEDIA_INGEST_KEEP_LOCALSTACK=1 to keep it)."""
    started = False
    if not _healthy():
        subprocess.run([str(HARNESS), "start"], check=True, timeout=600)
        started = True
    for key, value in {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    yield ENDPOINT
    if started and not os.environ.get("MEDIA_INGEST_KEEP_LOCALSTACK"):
        subprocess.run([str(HARNESS), "stop"], check=False, timeout=120)


@pytest.fixture(scope="session")
def clients(localstack):
    cfg = Config(read_timeout=120, retries={"max_attempts": 0})
    return {name: boto3.client(name, config=cfg) for name in ("lambda", "s3", "sqs", "iam")}


@pytest.fixture(scope="session")
def role_arn(clients):
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    name = f"harness-test-{uuid.uuid4().hex[:8]}"
    return clients["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc))[
        "Role"
    ]["Arn"]


def make_zip(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            zf.writestr(info, content)
    return buf.getvalue()


@pytest.fixture
def make_function(clients, role_arn):
    """Create a python3.13 zip function from {path: source}; deleted after the test."""
    lam = clients["lambda"]
    created = []

    def _make(files, *, handler="app.handler", timeout=10, env=None, layers=(), memory=256):
        name = f"t-{uuid.uuid4().hex[:10]}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": make_zip(files)},
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": env or {}},
            Layers=list(layers),
        )
        created.append(name)
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    yield _make
    for name in created:
        with contextlib.suppress(Exception):
            lam.delete_function(FunctionName=name)


def invoke(lam, name, event=None, tail=False):
    """Invoke synchronously: (payload, FunctionError or None, tail of the logs, response)."""
    t0 = time.monotonic()
    resp = lam.invoke(
        FunctionName=name,
        Payload=json.dumps(event or {}).encode(),
        LogType="Tail" if tail else "None",
    )
    payload = json.loads(resp["Payload"].read() or b"null")
    logs = base64.b64decode(resp.get("LogResult", "")).decode() if tail else ""
    resp["elapsed"] = time.monotonic() - t0
    return payload, resp.get("FunctionError"), logs, resp
