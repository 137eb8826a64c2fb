"""Benchmarks of media-ingest against baselines measured in the same run.

Run `.venv/bin/python -m bench --help`. Not part of the test suite: it reports figures and
targets, it never fails on a missed target. Generated media lives in a cache folder
(default ~/.cache/media-ingest/bench), never in the repository.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "layers" / "shared"
LAYER_FFPROBE = ROOT / "build" / "layers" / "ffprobe" / "bin" / "ffprobe"
DEFAULT_CACHE = Path(
    os.environ.get("MEDIA_INGEST_BENCH_CACHE")
    or Path(os.environ.get("MEDIA_INGEST_CACHE", Path.home() / ".cache" / "media-ingest")) / "bench"
)

# The layer's source is the package: import it from there, as the handler would on Lambda.
if str(SHARED) not in sys.path:
    sys.path.insert(0, str(SHARED))
# tests/support/events.py builds S3 events and SQS records exactly as AWS sends them.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

# Fake credentials and a fixed region: nothing here may reach AWS by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
# Powertools logs a line per record: noise in a table (its EMF metrics are swallowed where
# the handler runs; disabling them instead makes Powertools keep and print them at 100).
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")


@dataclass(frozen=True)
class Context:
    """What every benchmark gets: the run's options and shared resources."""

    quick: bool
    cache: Path
    ffprobe: str  # absolute path of the ffprobe binary the probe path runs
    ffprobe_version: str
    e2e: bool = False
    e2e_wait: float = 360.0  # seconds per configuration before the rate is taken as is
    # The latency every simulated S3 request takes (bench/latency.py).
    s3_first_byte_ms: float = 25.0
    s3_mb_per_s: float = 90.0
    # Figures one benchmark measured that a later one builds on (cost -> backfill).
    shared: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    """Progress goes to stderr; the results table to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
