"""One probe, or one download-then-probe, in a fresh process; prints its figures as JSON.

    python -m bench.probe_worker '{"mode": ..., "endpoint": ..., "bucket": ..., ...}'

Modes:
  probe     the production path: ObjectProber over the S3 adapter (64 KB first range, then
            FfprobeRunner over a presigned URL)
  download  the baseline: boto3 download_file to a temp file, then the same ffprobe (same
            binary, same arguments except the protocol whitelist, `file`) on that file
  consumed  diagnostic: the production ffprobe command at `-v debug`, to read ffprobe's own
            count of the bytes it consumed ("Statistics: N bytes read")
  open      comparison: the production command without its HTTP options (ffprobe's default,
            an open-ended `bytes=N-` per seek on a new connection, which the production
            path replaced with bounded 256 KB ranges on one kept-alive connection)

A fresh process per measurement so the Python peak-RSS increase belongs to this one
operation (clients are created and every module imported before the baseline is taken).
ffprobe's peak RSS cannot be read from RUSAGE_CHILDREN here: a child forked by Python starts
with Python's resident pages counted, and Linux keeps that high-water mark across exec. So
with `"memory": true` ffprobe runs under GNU time (`/usr/bin/time -f %M`), a ~2 MB process
that forks it, which reports ffprobe's own peak; those runs are not timed.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

import bench  # noqa: F401 - puts layers/shared first on sys.path
from media_ingest.adapters.objects import S3Objects
from media_ingest.events import ObjectEvent
from media_ingest.probing.ffprobe import HTTP_OPTIONS, FfprobeRunner, ffprobe_args, interpret
from media_ingest.probing.prober import FIRST_RANGE_BYTES, ObjectProber

GNU_TIME = "/usr/bin/time"


def event_of(job: dict[str, Any]) -> ObjectEvent:
    return ObjectEvent(
        bucket=job["bucket"],
        key=job["key"],
        size=job["size"],
        etag=job["etag"],
        sequencer="0",
        event_name="ObjectCreated:Put",
        event_time=datetime.now(UTC),
        region="us-east-1",
    )


def probe(job: dict[str, Any], s3: Any, binary: str) -> dict[str, Any]:
    prober = ObjectProber(
        reader=S3Objects(presign_seconds=300, client=s3),
        ffprobe=FfprobeRunner(binary=binary, timeout_seconds=300),
    )
    media = prober.probe(event_of(job))
    return {"video": media.video.model_dump(mode="json") if media.video else None}


def download_then_probe(job: dict[str, Any], s3: Any, binary: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=job.get("tmpdir")) as folder:
        path = os.path.join(folder, job["key"])
        s3.download_file(job["bucket"], job["key"], path)
        args = ffprobe_args(binary, path, job["demuxer"])
        args[args.index("-protocol_whitelist") + 1] = "file"
        done = subprocess.run(args, capture_output=True, timeout=300, check=True, env={})
    _, video, _ = interpret(json.loads(done.stdout))
    return {"video": video.model_dump(mode="json") if video else None}


def _over_url(
    job: dict[str, Any], s3: Any, binary: str, open_ended: bool = False, debug: bool = False
) -> dict[str, Any]:
    """The production steps by hand (first range, presign, ffprobe_args); `open_ended`: without
    the HTTP options (ffprobe's default requests)."""
    reader = S3Objects(presign_seconds=300, client=s3)
    event = event_of(job)
    reader.read_range(event, min(FIRST_RANGE_BYTES, event.size))
    signed = reader.presign(event)
    url = signed.url
    args = ffprobe_args(binary, url, job["demuxer"], headers=signed.headers)
    if debug:
        args[args.index("-v") + 1] = "debug"
    if open_ended:
        at = args.index(HTTP_OPTIONS[0])
        del args[at : at + len(HTTP_OPTIONS)]
    done = subprocess.run(args, capture_output=True, timeout=300, check=False, env={})
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").replace(url, "<url>").strip()[-300:]
        return {"error": f"ffprobe exit {done.returncode}: {tail}"}
    _, video, _ = interpret(json.loads(done.stdout))
    found = re.findall(rb"Statistics: (\d+) bytes read", done.stderr)
    return {
        "video": video.model_dump(mode="json") if video else None,
        "consumed": sum(int(n) for n in found) if found else None,
    }


def consumed(job: dict[str, Any], s3: Any, binary: str) -> dict[str, Any]:
    return _over_url(job, s3, binary, debug=True)


def open_ended(job: dict[str, Any], s3: Any, binary: str) -> dict[str, Any]:
    return _over_url(job, s3, binary, open_ended=True)


def measured_binary(ffprobe: str, folder: Path) -> tuple[str, Path]:
    """A wrapper that runs ffprobe under GNU time, writing ffprobe's peak RSS (KB) to a file."""
    report = folder / "ffprobe-peak-kb"
    wrapper = folder / "ffprobe"
    wrapper.write_text(f'#!/bin/sh\nexec {GNU_TIME} -q -f %M -a -o "{report}" "{ffprobe}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), report


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    s3 = boto3.client(
        "s3",
        endpoint_url=job["endpoint"],
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
    )
    run = {
        "probe": probe,
        "download": download_then_probe,
        "consumed": consumed,
        "open": open_ended,
    }[job["mode"]]
    with tempfile.TemporaryDirectory() as scratch:
        binary, report = job["ffprobe"], None
        if job.get("memory") and os.path.exists(GNU_TIME):  # else: no ffprobe figure
            binary, report = measured_binary(job["ffprobe"], Path(scratch))
        python_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        result = run(job, s3, binary)
        result["seconds"] = time.perf_counter() - started
        python_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["python_increase_kb"] = python_after - python_before
        if report is not None:
            peaks = [int(line) for line in report.read_text().split() if line.isdigit()]
            result["ffprobe_peak_kb"] = max(peaks)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
