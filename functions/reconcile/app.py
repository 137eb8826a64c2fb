"""Reconcile function (scheduled): the latest S3 Inventory report of each configured
destination compared with the catalog; what was missed enqueued; what was found as metrics."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from media_ingest.observability import logger, metrics, tracer
from media_ingest.reconcile.scheduled import ScheduledReconcile
from media_ingest.settings import load_settings
from media_ingest.wiring import build_reconciler

_reconcile: ScheduledReconcile | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, reconcile: ScheduledReconcile | None = None
) -> list[dict[str, Any]]:
    global _reconcile  # noqa: PLW0603 - one graph per execution environment
    if reconcile is None:
        _reconcile = _reconcile or build_reconciler(load_settings())
        reconcile = _reconcile
    return [report.model_dump(mode="json") for report in reconcile.run()]
