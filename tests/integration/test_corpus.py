"""The hostile and unusual corpus (tests/support/corpus.py) through the deployed stack on
LocalStack, with each function's MemorySize enforced by the process executor: every object
one outcome, the one its independent reader predicts; no function over its memory (REPORT
lines); nothing retried, nothing dead-lettered.

The figures (cases, outcomes, each function's peak memory) are printed: run with -s.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import boto3

from media_ingest.records import FailureRecord, Outcome
from tests.integration import diagnostics
from tests.integration.conftest import SIDECAR_SUFFIX as STACK_SIDECAR_SUFFIX
from tests.integration.conftest import Deployed
from tests.support.corpus import SIDECAR_SUFFIX, Case, corpus, judge, member_prefix
from tests.support.media import MediaSet

# Well under: a function's peak must leave this share of its MemorySize unused.
HEADROOM = 0.5
MEMORY_MB = {"IngestFunctionName": 1024, "ExtractFunctionName": 1769}


def _upload(deployed: Deployed, key: str, data: bytes, case: Case | None = None) -> None:
    extra: dict[str, Any] = {}
    if case is not None and case.sse_c:
        extra = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(32)}
    metadata = case.metadata if case is not None else {}
    deployed.s3.put_object(
        Bucket=deployed.outputs.DropBucketName, Key=key, Body=data, Metadata=metadata, **extra
    )


def _archive_failures(
    deployed: Deployed, cases: list[Case], prefix: str, timeout: float
) -> list[FailureRecord]:
    """The failure records, once every archive refusal the corpus expects has one."""
    wanted: Counter[str] = Counter()
    for case in cases:
        if case.expect.outcome == "archive":
            wanted[prefix + case.name] = len(case.expect.refused) + bool(case.expect.archive_code)
    deadline = time.monotonic() + timeout
    while True:
        found = deployed.reader().failures()
        have = Counter(f.key for f in found if f.key in wanted)
        if all(have[key] >= count for key, count in wanted.items()):
            return found
        if time.monotonic() > deadline:
            missing = {k: (have[k], n) for k, n in wanted.items() if have[k] < n}
            raise TimeoutError(f"archive failure records missing: {missing}")
        time.sleep(3)


def _depth(url: str | None) -> int:
    if not url:
        return 0
    sqs = boto3.client("sqs")
    got = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(got["ApproximateNumberOfMessages"]) + int(
        got["ApproximateNumberOfMessagesNotVisible"]
    )


def test_the_corpus_through_the_deployed_stack_with_memory_enforced(
    deployed: Deployed, media: MediaSet
) -> None:
    assert SIDECAR_SUFFIX == STACK_SIDECAR_SUFFIX  # the corpus's sidecars are the stack's
    cases = corpus(media)
    prefix = deployed.prefix() + "corpus/"
    started = time.time()
    keys: set[str] = set()
    for case in cases:
        key = prefix + case.name
        for path, data in case.existing.items():
            _upload(deployed, member_prefix(key) + path, data)
            keys.add(member_prefix(key) + path)
        if case.sidecar is not None:
            _upload(deployed, key + SIDECAR_SUFFIX, case.sidecar)
            keys.add(key + SIDECAR_SUFFIX)
    # Their own outcomes first, so no archive is extracted before the keys it must not touch.
    deployed.wait(set(keys), timeout=300)
    for case in cases:
        _upload(deployed, prefix + case.name, case.data, case)
        keys.add(prefix + case.name)
        keys |= {member_prefix(prefix + case.name) + path for path in case.expect.members}
    outcomes: list[Outcome] = deployed.wait(keys, timeout=900)
    failures = _archive_failures(deployed, cases, prefix, timeout=300)
    time.sleep(10)  # anything late (a second outcome, a stray member) shows up by now

    outcomes = [o for o in deployed.reader().ledger()[0] if o.key.startswith(prefix)]
    problems = judge(cases, prefix, outcomes, failures)
    members = sum(len(c.expect.members) for c in cases)
    print(
        f"\ncorpus: {len(cases)} cases ({dict(Counter(c.group for c in cases))}), "
        f"{members} archive members, {len(outcomes)} outcomes, "
        f"{len([f for f in failures if f.key.startswith(prefix)])} failure records"
    )
    assert problems == [], "\n".join(problems)

    # Nothing dead-lettered, nothing retried, no function over (or near) its memory.
    outputs = deployed.outputs
    assert _depth(outputs.DeadLetterQueueUrl) == 0
    assert _depth(outputs.ExtractDeadLetterQueueUrl) == 0
    for function, memory_mb in MEMORY_MB.items():
        lines = diagnostics.function_log(deployed.name, since=started - 5, function=function)
        seen = diagnostics.reports(lines)
        print(
            f"{function}: {seen.invocations} invocations, peak {seen.peak_mb} MB of "
            f"{memory_mb} MB, {seen.out_of_memory} out-of-memory, {seen.errors} errors"
        )
        assert seen.invocations > 0
        assert seen.out_of_memory == 0 and seen.errors == 0
        assert seen.peak_mb < HEADROOM * memory_mb
        retried = [ln for ln in lines if "returns to the queue for a retry" in ln]
        assert retried == [], retried[:3]
