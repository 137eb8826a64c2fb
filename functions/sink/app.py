"""Sink function: SQS (FIFO) batches of catalog changes -> tasks in Label Studio projects."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from media_ingest.observability import logger, metrics, tracer
from media_ingest.settings import load_settings
from media_ingest.sinks.runner import SinkRunner
from media_ingest.wiring import build_sink_runner

_runner: SinkRunner | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, runner: SinkRunner | None = None
) -> dict[str, Any]:
    global _runner  # noqa: PLW0603 - one runner per execution environment
    if runner is None:
        _runner = _runner or build_sink_runner(load_settings())
        runner = _runner
    return runner.run(event, context)
