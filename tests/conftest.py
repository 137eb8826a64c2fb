from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from media_ingest.manifests.writer import Part
from tests.support import encord_oracle
from tests.support.media import MediaSet

# No test may reach AWS by accident: credentials are fake, the region fixed.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MediaIngestTest")

# The ffprobe the Lambda layer ships (built by `make setup`), found first on PATH as /opt/bin
# is on Lambda: the probe is tested with the binary that runs in production, not the system
# one (older, without the HTTP options the runner passes). ffmpeg stays the system one.
LAYER_BIN = Path(__file__).resolve().parents[1] / "build/layers/ffprobe/bin"
if not (LAYER_BIN / "ffprobe").exists():
    raise RuntimeError(f"{LAYER_BIN}/ffprobe is missing: run `make setup` first")
os.environ["PATH"] = f"{LAYER_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def media() -> MediaSet:
    """Generated media, made once and kept between runs (and shared by parallel workers) in
    a folder named after the generators' source, so a change to them makes everything anew."""
    generators = Path(__file__).parent / "support/media.py"
    version = hashlib.sha256(generators.read_bytes()).hexdigest()[:16]
    default = Path(__file__).resolve().parents[1] / ".cache/test-media"
    return MediaSet(Path(os.environ.get("MEDIA_INGEST_TEST_MEDIA") or default) / version)


@pytest.fixture(autouse=True)
def parts_checked_by_encord(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every manifest part any test writes is loaded by the official encord SDK first: a
    section, entry key or metadata field it does not know fails that test (the SDK itself
    would drop it without a word). The part is returned unchanged."""
    to_encord = Part.to_encord

    def checked(part: Part) -> dict[str, object]:
        doc = to_encord(part)
        encord_oracle.assert_loads(doc)
        return doc

    monkeypatch.setattr(Part, "to_encord", checked)
