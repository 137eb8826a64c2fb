"""The one Logger, Metrics and Tracer every function shares (Powertools)."""

from __future__ import annotations

import os
import threading
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "media-ingest"


class _Metrics(Metrics):
    """Powertools' Metrics, added to from a batch's worker threads (ingest/batch_runner.py):
    one lock, so that a value is never lost to a flush at 100 values running beside it."""

    _lock = threading.Lock()

    def add_metric(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            super().add_metric(*args, **kwargs)


logger = Logger(service=SERVICE)
metrics = _Metrics(namespace="MediaIngest", service=SERVICE)
# Per function, so that two stacks in one account and region keep their figures (and the
# template's alarms and dashboard) apart.
metrics.set_default_dimensions(function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"))
tracer = Tracer(service=SERVICE)
