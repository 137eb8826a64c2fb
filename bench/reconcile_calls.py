"""Benchmark 14: what reconcile costs in AWS calls per 1,000 objects, and how fast it runs.

Measured: the real `Reconciler` (media_ingest.reconcile) with the real adapters against a moto
server on loopback: a bucket of N objects (10,000; 2,000 with --quick), of which 5% have no
catalog row (lost events), 1% a different ETag than registered (missed overwrites), and 2%
catalog rows whose object was deleted (missed deletions). Every call of every boto3 client
is counted by operation (botocore `before-call`, retries excluded). Two listings: S3
ListObjectsV2, and an S3 Inventory report (CSV, gzipped) of the same bucket. Report mode:
nothing enqueued (--apply adds one SendMessageBatch per ten findings).

Baseline, the same run, the same data: the per-object check everyone writes first, a GetItem
of the catalog row per listed object and a HeadObject per catalog row (to find deletions).
Neither reads object bytes; the target is that reconcile never does either (0 GetObject of
the source bucket).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
from moto.server import ThreadedMotoServer

from bench import Context, environment, log
from bench.api_calls import CallCounter
from bench.report import Section, Table, Target
from media_ingest.adapters import clients
from media_ingest.adapters.catalog import CatalogRows, DynamoCatalog, item_pk
from media_ingest.adapters.listing import InventoryLister, S3Lister
from media_ingest.adapters.objects import S3Objects
from media_ingest.adapters.queues import SqsIngestQueue
from media_ingest.events import ObjectEvent
from media_ingest.groups.rules import GroupRoutes
from media_ingest.listing import RateLimit, Source
from media_ingest.media import MediaInfo, MediaKind
from media_ingest.reconcile.runner import Reconciler, ReconcileState, Unsaved
from media_ingest.reconcile.snapshot import Snapshot
from media_ingest.records import CatalogItem
from media_ingest.routing import Router
from media_ingest.urls import object_url

BUCKET, INVENTORY, TABLE = "legacy", "inventory", "catalog"
LOST, OVERWRITTEN, DELETED = 0.05, 0.01, 0.02


def _populate(s3: Any, ddb: Any, n: int) -> dict[str, int]:
    """The bucket, and the catalog as the live path would have left it (minus the misses)."""
    s3.create_bucket(Bucket=BUCKET)
    catalog = DynamoCatalog(TABLE, ddb)
    media = MediaInfo(kind=MediaKind.TEXT, mime_type="text/plain", container="text", size=9)
    lost = set(range(0, n, int(1 / LOST)))
    overwritten = set(range(1, n, int(1 / OVERWRITTEN)))
    deleted = set(range(2, n, int(1 / DELETED)))
    for number in range(n):
        key = f"media/{number:06d}.txt"
        etag = str(s3.put_object(Bucket=BUCKET, Key=key, Body=f"{number}\n".encode())["ETag"])
        if number in lost:
            continue
        event = ObjectEvent(
            bucket=BUCKET,
            key=key,
            size=9,
            etag="stale" if number in overwritten else etag.strip('"'),
            event_name="ObjectCreated:Put",
            event_time=datetime.now(UTC) - timedelta(days=1),
            region="us-east-1",
        )
        url = object_url(BUCKET, key, "us-east-1")
        catalog.put_new(CatalogItem.from_probe(event, "main", url, media))
        if number in deleted:
            s3.delete_object(Bucket=BUCKET, Key=key)
    return {
        "lost": len(lost - deleted),
        "overwritten": len(overwritten - lost - deleted),
        "deleted": len(deleted - lost),
    }


def _settle(s3: Any, ddb: Any) -> None:
    """The catalog as if nothing had been missed: one live row per object, its own ETag."""
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE):
        for row in page.get("Items", []):
            ddb.delete_item(TableName=TABLE, Key={"pk": row["pk"]})
    catalog = DynamoCatalog(TABLE, ddb)
    media = MediaInfo(kind=MediaKind.TEXT, mime_type="text/plain", container="text", size=9)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            event = ObjectEvent(
                bucket=BUCKET,
                key=o["Key"],
                size=o["Size"],
                etag=o["ETag"].strip('"'),
                event_name="ObjectCreated:Put",
                event_time=datetime.now(UTC) - timedelta(days=1),
                region="us-east-1",
            )
            url = object_url(BUCKET, o["Key"], "us-east-1")
            catalog.put_new(CatalogItem.from_probe(event, "main", url, media))


def _inventory(s3: Any) -> Source:
    """An S3 Inventory report (CSV) of the bucket as it is, as S3 would write it."""
    s3.create_bucket(Bucket=INVENTORY)
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            modified = o["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
            etag = o["ETag"].strip('"')
            rows.append(f'"{BUCKET}","{quote(o["Key"])}","{o["Size"]}","{modified}","{etag}"')
    data = "inv/legacy/all/data/report.csv.gz"
    s3.put_object(Bucket=INVENTORY, Key=data, Body=gzip.compress("\n".join(rows).encode()))
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{INVENTORY}",
        "creationTimestamp": str(int(time.time() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{"key": data}],
    }
    key = "inv/legacy/all/2026-11-29T00-00Z/manifest.json"
    s3.put_object(Bucket=INVENTORY, Key=key, Body=json.dumps(manifest).encode())
    return Source(bucket=INVENTORY, prefix=key)


def _ours(
    counter: CallCounter, endpoint: str, queue_url: str, manifest: Source | None
) -> dict[str, Any]:
    clients.client.cache_clear()
    with counter.hooking_new_clients():
        counter.reset()
        source = Source(bucket=BUCKET)
        lister = InventoryLister(source, manifest) if manifest else S3Lister(source)
        run = Reconciler(
            catalog=CatalogRows(TABLE),
            lister=lister,
            objects=S3Objects(),
            queue=SqsIngestQueue(queue_url),
            router=Router("main", {}),
            groups=GroupRoutes({}),
            region="us-east-1",
            url_style="virtual",
            snapshot=Snapshot(),
            store=Unsaved(),
            rate=RateLimit(1e9),
        )
        started = time.perf_counter()
        state = run.run(ReconcileState(source=f"s3://{BUCKET}/", grace_seconds=0))
        seconds = time.perf_counter() - started
    clients.client.cache_clear()
    return {"state": state, "calls": Counter(counter.counted), "seconds": seconds}


def _naive(counter: CallCounter, endpoint: str) -> dict[str, Any]:
    with counter.hooking_new_clients():
        s3: Any = boto3.client("s3", endpoint_url=endpoint)
        ddb: Any = boto3.client("dynamodb", endpoint_url=endpoint)
    counter.reset()
    started = time.perf_counter()
    found = Counter[str]()
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        listed += page.get("Contents", [])
    for o in listed:
        pk = item_pk("main", object_url(BUCKET, o["Key"], "us-east-1"))
        if "Item" not in ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}):
            found["lost"] += 1
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE):
        for row in page.get("Items", []):
            if "okey" in row:
                try:
                    s3.head_object(Bucket=BUCKET, Key=row["okey"]["S"])
                except Exception:
                    found["deleted"] += 1
    return {
        "found": found,
        "calls": Counter(counter.counted),
        "seconds": time.perf_counter() - started,
        "listed": len(listed),
    }


def run(ctx: Context) -> list[Section]:
    n = 2_000 if ctx.quick else 10_000
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with environment(AWS_ENDPOINT_URL=endpoint):
            s3 = boto3.client("s3", endpoint_url=endpoint)
            ddb = boto3.client("dynamodb", endpoint_url=endpoint)
            ddb.create_table(
                TableName=TABLE,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            )
            queue = boto3.client("sqs", endpoint_url=endpoint).create_queue(QueueName="ingest")
            log(f"reconcile: {n:,} objects and their catalog rows into moto")
            truth = _populate(s3, ddb, n)
            manifest = _inventory(s3)
            counter = CallCounter(probe_bucket=BUCKET)
            log("reconcile: ListObjectsV2, then the inventory, then the naive check")
            listing = _ours(counter, endpoint, queue["QueueUrl"], None)
            inventory = _ours(counter, endpoint, queue["QueueUrl"], manifest)
            naive = _naive(counter, endpoint)
            log("reconcile: the same bucket with nothing missed (the scheduled run's usual case)")
            _settle(s3, ddb)
            clean = _ours(counter, endpoint, queue["QueueUrl"], None)
    finally:
        clients.client.cache_clear()
        server.stop()
    return [section(n, truth, {"listing": listing, "inventory": inventory, "clean": clean}, naive)]


def section(
    n: int, truth: dict[str, int], ours: dict[str, dict[str, Any]], naive: dict[str, Any]
) -> Section:
    listing, inventory, clean = ours["listing"], ours["inventory"], ours["clean"]
    out = Section(
        name="reconcile_calls",
        title="14. reconcile: AWS calls per 1,000 objects, no object bytes read",
        measured=f"Reconciler with the real adapters on moto, {n:,} objects, report mode; "
        "botocore before-call hooks on every client",
        baseline="per-object check: GetItem per listed object, HeadObject per catalog row",
    )
    listed = listing["state"].counts.listed
    runs = (listing, inventory, clean, naive)
    table = Table(
        "calls per 1,000 listed objects",
        ["operation", "ListObjectsV2", "inventory", "nothing missed", "naive"],
    )
    operations = sorted({op for run in runs for op in run["calls"]})
    for operation in operations:
        table.add(
            operation,
            *(f"{run['calls'].get(operation, 0) * 1000 / listed:.2f}" for run in runs),
        )
    table.add("total", *(f"{sum(run['calls'].values()) * 1000 / listed:.2f}" for run in runs))
    out.tables.append(table)
    found = Table("what each found", ["", "lost", "overwritten", "deleted", "seconds", "objects/s"])
    for name, run in (("ListObjectsV2", listing), ("inventory", inventory), ("clean", clean)):
        c = run["state"].counts
        found.add(
            name,
            c.lost,
            c.overwritten,
            c.deleted,
            f"{run['seconds']:.1f}",
            f"{listed / run['seconds']:.0f}",
        )
    found.add(
        "naive",
        naive["found"]["lost"],
        "-",
        naive["found"]["deleted"],
        f"{naive['seconds']:.1f}",
        f"{naive['listed'] / naive['seconds']:.0f}",
    )
    found.add("truth", truth["lost"], truth["overwritten"], truth["deleted"], "", "")
    out.tables.append(found)
    source_reads = sum(
        count
        for run in (listing, inventory)
        for op, count in run["calls"].items()
        if op == "S3.GetObject"
    )
    ours_total = sum(listing["calls"].values()) * 1000 / listed
    naive_total = sum(naive["calls"].values()) * 1000 / naive["listed"]
    exact = all(
        (run["state"].counts.lost, run["state"].counts.overwritten, run["state"].counts.deleted)
        == (truth["lost"], truth["overwritten"], truth["deleted"])
        for run in (listing, inventory)
    )
    out.targets.append(
        Target(
            goal="finds exactly the planted misses, reading no object byte",
            figure=f"{'exact' if exact else 'WRONG'}; GetObject of objects: "
            f"{source_reads - 2} (the inventory run reads its manifest and one CSV)",
            met=exact and source_reads == 2,
        )
    )
    out.targets.append(
        Target(
            goal="fewer calls than the per-object check",
            figure=f"{ours_total:.1f} vs {naive_total:.1f} per 1,000 objects "
            f"({naive_total / ours_total:.0f}x)",
            met=ours_total < naive_total,
        )
    )
    out.notes.append(
        "Scan calls depend on the table's size (1 MB pages), not on the prefix: the whole "
        "catalog is read once per run; HeadObject and BatchGetItem only for candidates."
    )
    out.data = {
        "objects": n,
        "listing": {k: v for k, v in listing["calls"].items()},
        "inventory": {k: v for k, v in inventory["calls"].items()},
        "clean": dict(clean["calls"]),
        "naive": {k: v for k, v in naive["calls"].items()},
        "seconds": {
            "listing": listing["seconds"],
            "inventory": inventory["seconds"],
            "naive": naive["seconds"],
        },
    }
    return out
