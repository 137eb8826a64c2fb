"""The one Logger, Metrics and Tracer every function shares (Powertools)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "media-ingest"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="MediaIngest", service=SERVICE)
tracer = Tracer(service=SERVICE)
