"""Ingest function: SQS batches of S3 object-created events -> outcomes, catalog, manifests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media_ingest.ingest.batch_runner import BatchRunner
from media_ingest.observability import logger, metrics, tracer
from media_ingest.settings import load_settings
from media_ingest.wiring import build_runner

if TYPE_CHECKING:  # 40 ms to import, for a type: not on the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

_runner: BatchRunner | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, runner: BatchRunner | None = None
) -> dict[str, Any]:
    global _runner  # noqa: PLW0603 - one runner per execution environment
    if runner is None:
        _runner = _runner or build_runner(load_settings())
        runner = _runner
    return runner.run(event, context)
