"""The scheduled reconcile: each configured S3 Inventory destination's latest report compared
with the catalog (runner.py), what was missed enqueued (unless ReconcileApply is off), and
what was found counted as metrics, which the template's alarm watches.

A run starts over each time (no state is kept between invocations: the next report is a new
listing); it must finish within the function's timeout (docs/operations.md gives the measured
rate). Never creates a client: wiring.build_reconciler gives it the runner's collaborators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from media_ingest.listing import Lister, Source
from media_ingest.observability import logger, metrics
from media_ingest.reconcile.runner import Reconciler, ReconcileState
from media_ingest.records import utcnow


class Report(BaseModel):
    """One inventory's reconcile, as the function returns it."""

    inventory: str
    manifest: str | None
    state: ReconcileState | None = None


@dataclass
class ScheduledReconcile:
    inventories: tuple[str, ...]
    apply: bool
    grace_seconds: int
    latest: Callable[[Source], Source | None]
    lister: Callable[[Source], Lister]
    reconciler: Callable[[Lister], Reconciler]

    def run(self) -> list[Report]:
        reports = []
        for location in self.inventories:
            manifest = self.latest(Source.parse(location))
            if manifest is None:
                logger.warning("no inventory report yet", extra={"inventory": location})
                reports.append(Report(inventory=location, manifest=None))
                continue
            lister = self.lister(manifest)
            source = getattr(lister, "source", None)
            state = ReconcileState(
                source=str(source),
                inventory=str(manifest),
                apply=self.apply,
                listed_at=getattr(lister, "created_at", None) or utcnow(),
                grace_seconds=self.grace_seconds,
            )
            run = self.reconciler(lister)
            try:
                run.run(state)
            finally:
                run.snapshot.close(remove=True)
            _emit(state)
            logger.info(
                "reconciled",
                extra={"inventory": str(manifest), "counts": state.counts.model_dump()},
            )
            reports.append(Report(inventory=location, manifest=str(manifest), state=state))
        return reports


def _emit(state: ReconcileState) -> None:
    counts = state.counts
    for name, value in (
        ("ReconcileListed", counts.listed),
        ("ReconcileLost", counts.lost),
        ("ReconcileOverwritten", counts.overwritten),
        ("ReconcileDeleted", counts.deleted),
        ("ReconcileEnqueued", counts.enqueued),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
