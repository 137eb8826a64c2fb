"""What an integration failure report needs to be read without the machine it ran on.

When outcomes do not arrive, the test output (all CI keeps) must say why: the function's
own log lines, the queues, the event source mapping and LocalStack's warnings.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from media_ingest.ops.stack import StackOutputs
from media_ingest.ops.status import queue_depths

LOCALSTACK_LOG = (
    Path(os.environ.get("MEDIA_INGEST_CACHE", Path.home() / ".cache/media-ingest"))
    / "localstack-2026.3.0/localstack.log"
)


def describe(stack: str, outputs: StackOutputs) -> str:
    sections = [
        ("queues", _queues(outputs)),
        ("event source mappings", _mappings(stack)),
        ("function log (last 80 lines)", _function_log(stack)),
        ("LocalStack log warnings (last 40)", _localstack_warnings()),
    ]
    return "\n".join(f"--- {title} ---\n{body}" for title, body in sections)


def _guard(fn: Any) -> str:
    try:
        return str(fn())
    except Exception as exc:  # diagnostics must never hide the failure they explain
        return f"(unavailable: {type(exc).__name__}: {exc})"


def _queues(outputs: StackOutputs) -> str:
    return _guard(
        lambda: "\n".join(
            f"{d.name}: {d.visible} visible, {d.in_flight} in flight" for d in queue_depths(outputs)
        )
    )


def _function_name(stack: str, output: str = "IngestFunctionName") -> str:
    cfn = boto3.client("cloudformation")
    outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == output)


def _mappings(stack: str) -> str:
    def read() -> str:
        lam = boto3.client("lambda")
        found = lam.list_event_source_mappings(FunctionName=_function_name(stack))
        return "\n".join(
            f"{m.get('State')} {m.get('StateTransitionReason', '')} batch={m.get('BatchSize')}"
            f" last={m.get('LastProcessingResult', '')}"
            for m in found["EventSourceMappings"]
        )

    return _guard(read)


def function_log(
    stack: str, since: float | None = None, function: str = "IngestFunctionName"
) -> list[str]:
    """Every line one of the stack's functions (by its output's name: IngestFunctionName,
    ExtractFunctionName) logged, since a Unix time, oldest first."""
    logs = boto3.client("logs")
    group = f"/aws/lambda/{_function_name(stack, function)}"
    window = {"startTime": int(since * 1000)} if since is not None else {}
    events: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, **window):
        events.extend(page.get("events", []))
    events.sort(key=lambda e: e.get("timestamp", 0))
    return [e.get("message", "").rstrip() for e in events]


def metric_totals(lines: list[str], names: tuple[str, ...]) -> dict[str, float]:
    """Sums of the EMF metrics in log lines: LocalStack does not turn them into metrics."""
    totals = dict.fromkeys(names, 0.0)
    for line in lines:
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for name in names:
            value = doc.get(name, 0)
            totals[name] += sum(value) if isinstance(value, list) else value
    return totals


def _function_log(stack: str) -> str:
    return _guard(lambda: "\n".join(ln[:400] for ln in function_log(stack)[-80:]) or "(empty)")


def _localstack_warnings() -> str:
    def read() -> str:
        lines = LOCALSTACK_LOG.read_text(errors="replace").splitlines()
        picked = [
            ln[:400] for ln in lines if " WARN " in ln or " ERROR " in ln or "Traceback" in ln
        ]
        picked = [ln for ln in picked if "Signatures do not match" not in ln]
        return "\n".join(picked[-40:]) or "(none)"

    return _guard(read)


_REPORT = re.compile(r"^REPORT RequestId: .*?Max Memory Used: (\d+) MB(.*)$")


@dataclass(frozen=True)
class Reports:
    """What a function's REPORT lines say: its invocations, their peak memory, their errors."""

    invocations: int
    peak_mb: int
    out_of_memory: int
    errors: int


def reports(lines: list[str]) -> Reports:
    """The REPORT lines Lambda (and the process executor) writes after each invocation:
    `Max Memory Used` is the execution environment's peak since its init."""
    found = [m for line in lines if (m := _REPORT.match(line.strip()))]
    return Reports(
        invocations=len(found),
        peak_mb=max((int(m.group(1)) for m in found), default=0),
        out_of_memory=sum("Runtime.OutOfMemory" in m.group(2) for m in found),
        errors=sum("Status: error" in m.group(2) for m in found),
    )
