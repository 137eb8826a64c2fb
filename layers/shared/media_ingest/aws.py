"""boto3 clients: created once per execution environment, lazily, with bounded retries.

boto3 honours AWS_ENDPOINT_URL, so the same code reaches AWS, LocalStack or a moto server
by configuration alone. Adapters take an optional client and only call this without one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    s3={"addressing_style": "auto"},
)


@cache
def client(service: str) -> Any:
    """The shared client for a service (retries: standard mode, 5 attempts)."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
