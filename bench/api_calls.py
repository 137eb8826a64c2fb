"""Benchmark 3: AWS API calls per ingested file, at SQS batch sizes 1, 10 and 100.

Measured: the real handler (functions/ingest/app.py `lambda_handler` with a runner from
`media_ingest.wiring.build_runner`) against a moto server on loopback, set up as
tests/handlers/conftest.py does (drop and manifest buckets, failure queue, catalog table).
Each batch holds N distinct small real files (half ~20 KB MP4s cut by ffmpeg, half PNGs).
Every boto3 client created while counting gets botocore hooks (`provide-client-params`
remembers the call's Bucket/Range, `before-call` counts it: once per API call, retries not
included); the project's cached client factory is cleared first so that the runner creates
its clients under the hook. The probe's range reads (GetObject with Range on the drop
bucket) are counted apart and excluded; ffprobe's own GETs on the presigned URL are plain
HTTP, not API calls. Each batch size gets a fresh runner (a cold start) and its own
dataset; the figure is its second batch (warm), the first is shown as "cold".

Baseline: a naive per-file ingest counted the same way: HeadObject, GetObject of the whole
object, PutItem of a catalog item, then GetObject + PutObject of one whole manifest, per
file. Physical limit: one catalog write per file plus 1/N of one manifest write per batch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from bench import ROOT, Context, environment, log
from bench.media import MediaCache, tiny_png
from bench.report import Section, Table, Target
from media_ingest.adapters import clients
from media_ingest.settings import Settings
from media_ingest.wiring import build_runner
from tests.support.events import s3_body, sqs_record

DROP, MANIFESTS, TABLE = "drop", "manifests", "catalog"
BATCH_SIZES = (1, 10, 100)
QUICK_BATCH_SIZES = (1, 10)
TARGET_BATCH, TARGET_CALLS = 10, 1.3


@dataclass
class CallCounter:
    """Counts API calls made by every boto3 client created inside `hooking_new_clients()`."""

    probe_bucket: str
    counted: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.counted.clear()
        self.excluded.clear()

    def hook(self, client: Any) -> None:
        client.meta.events.register("provide-client-params", self._remember)
        client.meta.events.register("before-call", self._count)

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # Also emitted by generate_presigned_url, which makes no call: only noted here.
        context["bench_params"] = {"Bucket": params.get("Bucket"), "Range": params.get("Range")}

    def _count(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_id}.{model.name}"
        params = context.get("bench_params") or {}
        if (
            model.name == "GetObject"
            and params.get("Range")
            and params["Bucket"] == self.probe_bucket
        ):
            self.excluded[name] += 1
        else:
            self.counted[name] += 1

    @contextmanager
    def hooking_new_clients(self) -> Iterator[None]:
        original = boto3.session.Session.client

        def client(session: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
            made = original(session, *args, **kwargs)
            self.hook(made)
            return made

        with mock.patch.object(boto3.session.Session, "client", client):
            yield


class FakeContext:
    """The LambdaContext fields Powertools reads."""

    function_name = "media-ingest-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:media-ingest-bench"
    memory_limit_in_mb = 1024
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_handler() -> ModuleType:
    """functions/ingest/app.py, imported from its file as Lambda does."""
    spec = importlib.util.spec_from_file_location("ingest_app", ROOT / "functions/ingest/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Files:
    """Distinct small files, handed out in order: even numbers MP4s, odd numbers PNGs."""

    def __init__(self, cache: MediaCache, count: int) -> None:
        self.videos = cache.tiny_videos(count // 2 + 1)
        self.used = 0

    def take(self, n: int) -> list[tuple[str, bytes]]:
        out = []
        for number in range(self.used, self.used + n):
            if number % 2 == 0:
                out.append((f"clips/{number:05d}.mp4", self.videos[number // 2].read_bytes()))
            else:
                out.append((f"photos/{number:05d}.png", tiny_png(number)))
        self.used += n
        return out


@dataclass
class Moto:
    endpoint: str
    s3: Any
    failure_queue: str

    @classmethod
    def create(cls, endpoint: str) -> Moto:
        s3: Any = boto3.client("s3", endpoint_url=endpoint)
        sqs: Any = boto3.client("sqs", endpoint_url=endpoint)
        ddb: Any = boto3.client("dynamodb", endpoint_url=endpoint)
        s3.create_bucket(Bucket=DROP)
        s3.create_bucket(Bucket=MANIFESTS)
        queue = sqs.create_queue(QueueName="failures")["QueueUrl"]
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        return cls(endpoint, s3, queue)

    def drop(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Put the files; return the SQS message bodies S3 would send for them."""
        bodies = []
        for number, (key, data) in enumerate(files):
            put = self.s3.put_object(Bucket=DROP, Key=key, Body=data)
            bodies.append(
                s3_body(
                    DROP,
                    key,
                    size=len(data),
                    etag=put["ETag"].strip('"'),
                    sequencer=f"{0x1000 + number:016X}",
                )
            )
        return bodies

    def manifest_entries(self, dataset: str) -> int:
        listed = self.s3.list_objects_v2(Bucket=MANIFESTS, Prefix=f"manifests/{dataset}/part-")
        total = 0
        for obj in listed.get("Contents", []):
            doc = json.loads(self.s3.get_object(Bucket=MANIFESTS, Key=obj["Key"])["Body"].read())
            total += sum(len(v) for v in doc.values() if isinstance(v, list))
        return total


def per_file(counts: Counter[str], files: int) -> dict[str, float]:
    return {name: n / files for name, n in sorted(counts.items())}


@dataclass
class Harness:
    """Everything one measurement needs: moto, the counter, the files, the handler module."""

    ctx: Context
    moto: Moto
    counter: CallCounter
    files: Files
    handler: ModuleType

    def ours(self, n: int, content_identity: str = "off") -> dict[str, Any]:
        """A fresh runner (cold start) and dataset; its first batch of n, then its second.
        `content_identity`: the ContentIdentity parameter ("off", the default, or "on")."""
        dataset = f"batch-{n}-identity-{content_identity}"
        settings = Settings(
            CATALOG_TABLE=TABLE,
            MANIFEST_BUCKET=MANIFESTS,
            FAILURE_QUEUE_URL=self.moto.failure_queue,
            DEFAULT_DATASET=dataset,
            FFPROBE_PATH=self.ctx.ffprobe,
            CONTENT_IDENTITY=content_identity,
        )
        result: dict[str, Any] = {}
        clients.client.cache_clear()  # a new execution environment: its clients made under the hook
        with self.counter.hooking_new_clients():  # adapters create their clients on first use
            runner = build_runner(settings)
            for phase in ("cold", "warm"):
                bodies = self.moto.drop(self.files.take(n))
                self.counter.reset()
                event = {"Records": [sqs_record(body) for body in bodies]}
                with contextlib.redirect_stdout(io.StringIO()):  # EMF metrics, printed
                    response = self.handler.lambda_handler(event, FakeContext(), runner=runner)
                if response["batchItemFailures"]:
                    failed = response["batchItemFailures"]
                    raise RuntimeError(f"batch of {n}: messages failed: {failed}")
                result[phase] = {
                    "calls": sum(self.counter.counted.values()) / n,
                    "by_operation": per_file(self.counter.counted, n),
                    "excluded_probe_range_reads": per_file(self.counter.excluded, n),
                }
        clients.client.cache_clear()
        entries = self.moto.manifest_entries(dataset)
        if entries != 2 * n:
            raise RuntimeError(f"batch of {n}: {entries} manifest entries, expected {2 * n}")
        return result

    def naive(self, n: int) -> dict[str, Any]:
        batch = self.files.take(n)
        self.moto.drop(batch)
        with self.counter.hooking_new_clients():
            s3 = boto3.client("s3", endpoint_url=self.moto.endpoint)
            ddb = boto3.client("dynamodb", endpoint_url=self.moto.endpoint)
        self.counter.reset()
        naive_ingest(s3, ddb, [key for key, _ in batch])
        return {
            "calls": sum(self.counter.counted.values()) / n,
            "by_operation": per_file(self.counter.counted, n),
        }


def naive_ingest(s3: Any, ddb: Any, keys: list[str]) -> None:
    """The per-file helper script everyone writes first (the baseline)."""
    manifest = "naive/manifest.json"
    for key in keys:
        head = s3.head_object(Bucket=DROP, Key=key)
        data = s3.get_object(Bucket=DROP, Key=key)["Body"].read()  # to probe it locally
        ddb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"naive#{key}"},
                "size": {"N": str(len(data))},
                "etag": {"S": head["ETag"]},
            },
        )
        try:
            doc = json.loads(s3.get_object(Bucket=MANIFESTS, Key=manifest)["Body"].read())
        except ClientError:
            doc = {"videos": [], "images": [], "skip_duplicate_urls": True}
        doc["videos" if key.endswith(".mp4") else "images"].append({"objectUrl": key})
        s3.put_object(Bucket=MANIFESTS, Key=manifest, Body=json.dumps(doc).encode())


def run(ctx: Context) -> list[Section]:
    sizes = QUICK_BATCH_SIZES if ctx.quick else BATCH_SIZES
    files = Files(MediaCache(ctx.cache), 3 * sum(sizes) + 2 * TARGET_BATCH)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=30)  # moto's state is the process's
    ours, naive, identity = {}, {}, {}
    try:
        with environment(AWS_ENDPOINT_URL=endpoint, AWS_LAMBDA_FUNCTION_NAME="media-ingest-bench"):
            harness = Harness(
                ctx, Moto.create(endpoint), CallCounter(probe_bucket=DROP), files, load_handler()
            )
            for n in sizes:
                log(f"api calls: batch of {n}, two batches through the handler, one naive")
                ours[n] = harness.ours(n)
                naive[n] = harness.naive(n)
            log(f"api calls: batch of {TARGET_BATCH} with ContentIdentity=on")
            identity = harness.ours(TARGET_BATCH, content_identity="on")
    finally:
        clients.client.cache_clear()
        server.stop()
    return [section(ours, naive, identity)]


def section(
    ours: dict[int, dict[str, Any]],
    naive: dict[int, dict[str, Any]],
    identity: dict[str, Any] | None = None,
) -> Section:
    out = Section(
        name="api_calls",
        title="3. AWS API calls per ingested file",
        measured="real lambda_handler + build_runner on moto, botocore before-call hooks on "
        "every client; warm batch (the runner's second); probe range GETs excluded",
        baseline="naive per-file ingest: HeadObject, GetObject (whole), PutItem, GetObject + "
        "PutObject of the whole manifest; physical limit 1 catalog write + 1/N manifest write",
    )
    summary = Table(
        "calls per file",
        [
            "batch size",
            "ours",
            "limit",
            "ours/limit",
            "naive",
            "naive/ours",
            "ours cold",
            "probe range GETs (excluded)",
        ],
    )
    for n, figures in ours.items():
        warm, cold = figures["warm"], figures["cold"]
        limit = 1 + 1 / n
        summary.add(
            n,
            f"{warm['calls']:.2f}",
            f"{limit:.2f}",
            f"{warm['calls'] / limit:.2f}x",
            f"{naive[n]['calls']:.2f}",
            f"{naive[n]['calls'] / warm['calls']:.2f}x",
            f"{cold['calls']:.2f}",
            f"{sum(warm['excluded_probe_range_reads'].values()):.2f}",
        )
    out.tables.append(summary)

    operations = sorted(
        {op for f in ours.values() for op in f["warm"]["by_operation"]}
        | {op for f in naive.values() for op in f["by_operation"]}
    )
    by_op = Table(
        "calls per file by operation (warm batch)",
        ["operation", *(f"batch {n}" for n in ours), "naive"],
    )
    for op in operations:
        by_op.add(
            op,
            *(f"{f['warm']['by_operation'].get(op, 0):.2f}" for f in ours.values()),
            f"{next(iter(naive.values()))['by_operation'].get(op, 0):.2f}",
        )
    out.tables.append(by_op)

    goal = f"<= {TARGET_CALLS:g} calls per file at batch size {TARGET_BATCH}"
    if TARGET_BATCH in ours:
        warm = ours[TARGET_BATCH]["warm"]
        met = warm["calls"] <= TARGET_CALLS
        why = (
            ""
            if met
            else "see the calls by operation: one catalog PutItem a file is the floor, and "
            "the manifest one PutObject a batch"
        )
        out.targets.append(Target(goal, f"{warm['calls']:.2f} calls per file", met, why))
    if identity:
        on = identity["warm"]
        ops = ", ".join(f"{op} {v:.2f}" for op, v in sorted(on["by_operation"].items()))
        out.notes.append(
            f"ContentIdentity=on (not the default), batch {TARGET_BATCH}: {on['calls']:.2f} "
            f"calls per file ({ops}): a HeadObject of the checksums and a conditional PutItem "
            "per content claim (usually two) beside the catalog's one PutItem"
        )
    out.notes.append(
        "cold = the runner's first batch (a new execution environment): it also reads the "
        "manifest index and part, and numbers its own part when it makes one"
    )
    out.data = {"ours": ours, "naive": naive, "content_identity_on": identity}
    return out
