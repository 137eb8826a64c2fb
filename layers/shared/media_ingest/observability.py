"""The one Logger, Metrics and Tracer every function shares (Powertools)."""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "media-ingest"


class _Metrics(Metrics):
    """Powertools' Metrics, added to from a batch's worker threads (ingest/batch_runner.py).

    A value added on another thread waits for the main thread's next one (or for
    `publish_waiting`): Powertools prints its EMF line when a metric reaches 100 values, and
    that print, made beside a worker's log line, can share one line with it, which CloudWatch
    then cannot read as metrics (the LocalStack load test saw it)."""

    _lock = threading.Lock()
    _waiting: ClassVar[list[tuple[tuple[Any, ...], dict[str, Any]]]] = []

    def add_metric(self, *args: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            with self._lock:
                self._waiting.append((args, kwargs))
            return
        self.publish_waiting()
        super().add_metric(*args, **kwargs)

    def publish_waiting(self) -> None:
        """Add the values worker threads left (call on the main thread)."""
        with self._lock:
            waiting, self._waiting[:] = list(self._waiting), []
        for args, kwargs in waiting:
            super().add_metric(*args, **kwargs)


logger = Logger(service=SERVICE)
metrics = _Metrics(namespace="MediaIngest", service=SERVICE)
# Per function, so that two stacks in one account and region keep their figures (and the
# template's alarms and dashboard) apart.
metrics.set_default_dimensions(function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"))
tracer = Tracer(service=SERVICE)
