"""1,000 object-created events on LocalStack: 85% new files, 5% broken, 10% overwrites of
files already registered. The counts must add up exactly and every registered URL must be
in the manifests once. Prints files/s."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from media_ingest.ops.status import manifest_parts
from media_ingest.records import OutcomeKind
from tests.integration import diagnostics
from tests.integration.conftest import Deployed
from tests.support.media import MediaSet

NEW, BROKEN, OVERWRITES = 850, 50, 100


def test_a_thousand_events_add_up_exactly(deployed: Deployed, media: MediaSet) -> None:
    p = deployed.prefix()
    png, broken = media.bytes("plain.png"), media.bytes("truncated.mp4")
    good = [f"{p}img/{i:04d}.png" for i in range(NEW)]
    bad = [f"{p}bad/{i:03d}.mp4" for i in range(BROKEN)]

    started, wall = time.monotonic(), time.time()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: deployed.drop(k, png), good))
        list(pool.map(lambda k: deployed.drop(k, broken), bad))
    first = deployed.wait(set(good) | set(bad), timeout=1200)
    elapsed = time.monotonic() - started

    # Overwrites once the originals are registered (earlier, the original's probe would
    # find a newer version and fail OBJECT_CHANGED: also an outcome, but another count).
    again = good[:OVERWRITES]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: deployed.drop(k, png + b"\0"), again))
    deadline = time.monotonic() + 600
    while True:
        mine = [o for o in deployed.reader().ledger()[0] if o.key.startswith(p)]
        if len(mine) >= NEW + BROKEN + OVERWRITES or time.monotonic() > deadline:
            break
        time.sleep(2)

    counts = Counter(o.kind for o in mine)
    assert counts == {
        OutcomeKind.REGISTERED: NEW,
        OutcomeKind.FAILED: BROKEN,
        OutcomeKind.DUPLICATE: OVERWRITES,
    }
    assert Counter(o.kind for o in first) == {
        OutcomeKind.REGISTERED: NEW,
        OutcomeKind.FAILED: BROKEN,
    }
    urls: list[str] = []
    for part in manifest_parts(deployed.outputs):
        body = deployed.s3.get_object(Bucket=deployed.outputs.ManifestBucketName, Key=part.key)
        urls += [e["objectUrl"] for e in json.loads(body["Body"].read()).get("images", [])]
    registered = [u for u in urls if f"/{p}" in u]
    assert len(registered) == NEW and len(set(registered)) == NEW
    status = json.loads(deployed.cli("status", "--json"))
    dead = {q["name"]: q["visible"] for q in status["queues"]}["dead-letter"]
    assert dead == 0
    retries = diagnostics.metric_totals(
        diagnostics.function_log(deployed.name, since=wall - 5),
        ("AwsRetries", "MessagesRetried", "Redelivered", "ManifestConflicts"),
    )
    print(
        f"\n{NEW + BROKEN} files accounted for in {elapsed:.0f} s "
        f"({(NEW + BROKEN) / elapsed:.1f} files/s); {OVERWRITES} overwrites then; "
        f"dead-lettered: {dead}; retries: "
        + ", ".join(f"{name} {value:g}" for name, value in retries.items())
    )
