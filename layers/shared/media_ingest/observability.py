"""The one Logger, Metrics and Tracer every function shares (Powertools)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "media-ingest"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="MediaIngest", service=SERVICE)
# Per function, so that two stacks in one account and region keep their figures (and the
# template's alarms and dashboard) apart.
metrics.set_default_dimensions(function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"))
tracer = Tracer(service=SERVICE)
