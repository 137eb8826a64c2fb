"""Batches through the real ingest handler in a process of their own; prints their figures as JSON.

    python -m bench.handler_worker < job.json   # {"endpoint": ..., "batches": [[body, ...]]}

The handler (functions/ingest/app.py with `wiring.build_runner`, as Lambda runs it) takes
each batch in turn after one untimed warm-up batch (the cold start is bench/cold_start.py's).
A process of its own so that its CPU (all its threads, and the ffprobe processes it waits
for: RUSAGE_SELF + RUSAGE_CHILDREN) is the handler's alone: the moto server, the file server
and the latency proxy run in the parent. Per batch: wall time, CPU, bytes written to stdout
(what Lambda ships to CloudWatch Logs: log lines and EMF metrics), AWS API calls by operation
(botocore hooks, retries apart; the probe's range reads of the drop bucket counted apart)
and, with "memory": true, the peak resident memory of the process and its live children
together (sampled every 2 ms, so those batches are not timed).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import bench  # noqa: F401 - puts layers/shared first on sys.path
from bench.api_calls import CallCounter, FakeContext, load_handler
from media_ingest.settings import Settings
from media_ingest.wiring import build_runner
from tests.support.events import sqs_record


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


class PeakMemory:
    """The most resident memory the process and its children held at once."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self.most_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            kids = children(me)
            self.most_children = max(self.most_children, len(kids))
            self.peak_kb = max(self.peak_kb, rss_kb(me) + sum(rss_kb(k) for k in kids))
            time.sleep(0.002)


def main(job: dict[str, Any]) -> dict[str, Any]:
    os.environ.update(job["env"])
    os.environ["AWS_ENDPOINT_URL"] = job["endpoint"]
    counter = CallCounter(probe_bucket=job["drop_bucket"])
    with counter.hooking_new_clients():
        handler = load_handler()
        runner = build_runner(Settings())
        runner.workers = job["workers"]

        def deliver(bodies: list[str]) -> tuple[dict[str, Any], int]:
            event = {"Records": [sqs_record(body) for body in bodies]}
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                response = handler.lambda_handler(event, FakeContext(), runner=runner)
            return response, len(out.getvalue().encode())

        deliver(job["warmup"])
        # The proxy counts what reaches S3 from here on (the warm-up's reads are not ours).
        urllib.request.urlopen(f"{job['endpoint']}/_bench/reset", timeout=10).close()
        figures = []
        for bodies in job["batches"]:
            counter.reset()
            began_cpu, began = cpu_seconds(), time.perf_counter()
            if job.get("memory"):
                with PeakMemory() as memory:
                    response, logged = deliver(bodies)
                peak = {"peak_mb": memory.peak_kb / 1024, "most_children": memory.most_children}
            else:
                response, logged = deliver(bodies)
                peak = {}
            wall = time.perf_counter() - began
            figures.append(
                {
                    "files": len(bodies),
                    "wall_ms": wall * 1000,
                    "cpu_ms": (cpu_seconds() - began_cpu) * 1000,
                    "log_bytes": logged,
                    "calls": dict(counter.counted),
                    "probe_reads": dict(counter.excluded),
                    "failed": len(response["batchItemFailures"]),
                    **peak,
                }
            )
    return {"batches": figures}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.stdin.read()))))
