"""Metrics added from a batch's worker threads are printed from the main thread only."""

from __future__ import annotations

import json
import threading

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from media_ingest.observability import metrics


def test_worker_threads_never_print_metrics_and_every_value_is_published(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics.clear_metrics()
    capsys.readouterr()

    def work() -> None:  # 150 values: Powertools prints an EMF line at the 100th
        for n in range(150):
            metrics.add_metric(name="ProbeDuration", unit=MetricUnit.Milliseconds, value=n)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert capsys.readouterr().out == ""  # nothing printed from the worker
    metrics.publish_waiting()
    metrics.flush_metrics()
    lines = capsys.readouterr().out.splitlines()
    values = [v for line in lines for v in json.loads(line)["ProbeDuration"]]
    assert sorted(values) == list(range(150))
