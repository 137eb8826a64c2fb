"""Smoke test of a live Label Studio with label-studio-sdk: what a feeder of ours would do.

Creates an image project and a video project, imports 3 tasks with `s3://` URLs, lists them,
deletes one. With `--s3-endpoint`, also puts 3 objects in a bucket of a local S3 server (moto,
LocalStack), connects an S3 import storage to that bucket and shows what Label Studio makes of
an `s3://` task URL: the proxy URL in the task's data, and where `/tasks/<id>/resolve/` sends a
client (a presigned URL against the local endpoint), fetched and compared byte for byte.

--endpoint-in operator: the storage names no endpoint; the server was started with
LS_S3_ENDPOINT (Label Studio's operator setting S3_ENDPOINT). --endpoint-in storage: the storage
names it (`s3_endpoint`), which Label Studio refuses for a loopback address unless the server
runs with LS_SSRF_PROTECTION=false.

Run with the Label Studio venv's python (label-studio-sdk 2.1.2, boto3): `harness.sh smoke`.
Prints one JSON object per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

import boto3
import requests
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="fish"/><Label value="crab"/>
  </RectangleLabels>
</View>"""
VIDEO_CONFIG = """<View>
  <Video name="video" value="$video"/>
  <VideoRectangle name="box" toName="video"/>
  <Labels name="label" toName="video"><Label value="fish"/></Labels>
</View>"""


def show(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, **fields}, default=str))


def access_token(base: str, pat: str) -> str:
    response = requests.post(f"{base}/api/token/refresh/", json={"refresh": pat}, timeout=30)
    response.raise_for_status()
    return str(response.json()["access"])


def tasks_of(ls: LabelStudio, project: int) -> list[Any]:
    return list(ls.tasks.list(project=project, fields="all"))


def basic(ls: LabelStudio, bucket: str) -> int:
    run = uuid.uuid4().hex[:8]
    images = ls.projects.create(title=f"smoke images {run}", label_config=IMAGE_CONFIG)
    videos = ls.projects.create(title=f"smoke videos {run}", label_config=VIDEO_CONFIG)
    show("create projects", image_project=images.id, video_project=videos.id)

    tasks = [
        {"data": {"image": f"s3://{bucket}/img/{name}"}, "meta": {"key": f"img/{name}"}}
        for name in ("a.png", "b.png", "c.png")
    ]
    result = ls.projects.import_tasks(id=images.id, request=tasks, return_task_ids=True)
    show("import 3 image tasks", task_count=result.task_count, task_ids=result.task_ids)
    clip = [{"data": {"video": f"s3://{bucket}/v/clip.mp4"}}]
    result = ls.projects.import_tasks(id=videos.id, request=clip, return_task_ids=True)
    show("import 1 video task", task_count=result.task_count, task_ids=result.task_ids)

    listed = tasks_of(ls, images.id)
    show("list", tasks=[{"id": t.id, "data": t.data, "meta": t.meta} for t in listed])
    ls.tasks.delete(id=str(listed[0].id))
    left = tasks_of(ls, images.id)
    show("delete one", deleted=listed[0].id, left=[t.id for t in left])
    assert len(left) == 2, left
    return int(images.id)


def fill_bucket(endpoint: str, bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    objects = {f"img/{name}": os.urandom(64) for name in ("a.png", "b.png", "c.png")}
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")
    show("fill bucket", endpoint=endpoint, bucket=bucket, keys=sorted(objects))
    return objects


def storage(ls: LabelStudio, args: argparse.Namespace, project: int, pat: str) -> None:
    objects = fill_bucket(args.s3_endpoint, args.bucket)
    params: dict[str, Any] = dict(
        project=project,
        bucket=args.bucket,
        prefix="img/",
        presign=True,
        presign_ttl=15,
        use_blob_urls=True,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        title="local S3",
    )
    if args.endpoint_in == "storage":
        params["s3endpoint"] = args.s3_endpoint
    try:
        created = ls.import_storage.s3.create(**params)
    except ApiError as error:
        show("create S3 import storage", refused=error.status_code, body=error.body)
        sys.exit(1)
    show("create S3 import storage", id=created.id, s3_endpoint=created.s3endpoint)
    synced = ls.import_storage.s3.sync(id=created.id)
    show("sync storage", status=synced.status, last_sync_count=synced.last_sync_count)

    headers = {"Authorization": f"Bearer {access_token(args.url, pat)}"}
    stored = {t.id: t.data["image"] for t in ls.tasks.list(project=project, resolve_uri=False)}
    for task_id, uri in stored.items():
        got = requests.get(f"{args.url}/api/tasks/{task_id}/", headers=headers, timeout=30)
        resolved = got.json()["data"]["image"]
        step: dict[str, Any] = {"task": task_id, "stored": uri, "api_data": resolved}
        if "/resolve/" in resolved:
            hop = requests.get(resolved, headers=headers, allow_redirects=False, timeout=30)
            step |= {"resolve_status": hop.status_code, "location": hop.headers.get("Location")}
            if hop.is_redirect:
                body = requests.get(hop.headers["Location"], timeout=30).content
                key = str(uri).removeprefix(f"s3://{args.bucket}/")
                step["presigned_get_matches_object"] = body == objects.get(key)
        show("resolve", **step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("LABEL_STUDIO_URL", "http://127.0.0.1:8480")
    )
    parser.add_argument("--bucket", default="media-ingest-ls-smoke")
    parser.add_argument("--s3-endpoint", help="local S3 server, e.g. http://127.0.0.1:5055")
    parser.add_argument("--endpoint-in", choices=("operator", "storage"), default="operator")
    args = parser.parse_args()
    pat = os.environ["LABEL_STUDIO_API_KEY"]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

    ls = LabelStudio(base_url=args.url, api_key=pat)
    me = ls.users.whoami()
    show("whoami", email=me.email)
    project = basic(ls, args.bucket)
    if args.s3_endpoint:
        storage(ls, args, project, pat)


if __name__ == "__main__":
    main()
