"""The demo's sample drop: generate a few real media files, drop them, show what happened.

Run by infra/demo.sh against the stack it deployed (AWS_ENDPOINT_URL points at LocalStack).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media_ingest.ops import cli  # noqa: E402
from media_ingest.ops import status as report  # noqa: E402
from media_ingest.ops.adapters.catalog import CatalogReader  # noqa: E402
from media_ingest.ops.stack import stack_outputs  # noqa: E402
from tests.support.media import MediaSet  # noqa: E402

SAMPLE = {
    "cams/front/clip.mp4": "clip.mp4",
    "cams/phone/portrait.mp4": "rotated.mp4",
    "cams/web/clip.webm": "clip.webm",
    "photos/portrait.jpg": "portrait.jpg",
    "photos/plain.png": "plain.png",
    "audio/tone.flac": "tone.flac",
    "audio/tone.mp3": "tone.mp3",
    "scans/ct-0003.dcm": "scan.dcm",
    "docs/report.pdf": "doc.pdf",
    "broken/truncated.mp4": "truncated.mp4",
    "broken/holiday.mp4": "playlist.mp4",
    "photos/.DS_Store": "notes.txt",
}
DUPLICATE = ("cams/front/clip.mp4", "clip-moov-end.mp4")


def step(message: str) -> None:
    print(f"\033[1m[demo]\033[0m {message}", flush=True)


def main() -> int:
    stack = os.environ.get("MEDIA_INGEST_STACK", "media-ingest")
    outputs = stack_outputs(stack)
    s3 = boto3.client("s3")
    media = MediaSet(Path(tempfile.mkdtemp(prefix="media-ingest-demo-")))
    step(f"generating {len(SAMPLE)} sample files with ffmpeg, Pillow and pydicom")
    started = time.monotonic()
    for key, name in SAMPLE.items():
        s3.put_object(Bucket=outputs.DropBucketName, Key=key, Body=media.bytes(name))
    step(f"dropped {len(SAMPLE)} files into s3://{outputs.DropBucketName}/; waiting for outcomes")
    first = report.wait_for_outcomes(outputs, set(SAMPLE), timeout=300)
    step("dropping a second upload of cams/front/clip.mp4 (a duplicate URL)")
    s3.put_object(Bucket=outputs.DropBucketName, Key=DUPLICATE[0], Body=media.bytes(DUPLICATE[1]))
    deadline = time.monotonic() + 180
    while (
        sum(
            1 for o in CatalogReader(outputs.RegistryTableName).ledger()[0] if o.key == DUPLICATE[0]
        )
        < 2
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("the duplicate drop got no outcome in 180 s")
        time.sleep(2)
    step(f"{len(first) + 1} events accounted for in {time.monotonic() - started:.1f} s\n")
    for command in ("status", "items", "failures", "manifests"):
        print(f"$ media-ingest {command}")
        cli.main(["--stack", stack, command])
        print()
    parts = report.manifest_parts(outputs)
    if parts:
        body = s3.get_object(Bucket=outputs.ManifestBucketName, Key=parts[0].key)["Body"].read()
        text = json.dumps(json.loads(body), indent=2)
        print(f"first lines of s3://{outputs.ManifestBucketName}/{parts[0].key}:")
        print("\n".join(text.splitlines()[:24]) + "\n  ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
