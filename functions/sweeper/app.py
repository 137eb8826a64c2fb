"""Sweeper function: every minute, seal groups quiet for the quiet period and write them."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from media_ingest.groups.sealing import GroupSealer
from media_ingest.observability import logger, metrics, tracer
from media_ingest.settings import load_settings
from media_ingest.wiring import build_sealer

if TYPE_CHECKING:  # 40 ms to import, for a type: not on the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

_sealer: GroupSealer | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, sealer: GroupSealer | None = None
) -> dict[str, Any]:
    global _sealer  # noqa: PLW0603 - one sealer per execution environment
    if sealer is None:
        _sealer = _sealer or build_sealer(load_settings())
        sealer = _sealer
    result = sealer.sweep()
    logger.info("sweep", extra=asdict(result))
    if result.errors:
        # Raise so the Errors alarm sees it; every group that did not fail is done, and the
        # next run (a minute later) retries the rest.
        raise RuntimeError(f"{len(result.errors)} groups failed: {result.errors[:5]}")
    return asdict(result)
