"""boto3 clients: created once per execution environment, lazily, with bounded retries.

boto3 honours AWS_ENDPOINT_URL, so the same code reaches AWS, LocalStack or a moto server
by configuration alone. Adapters take an optional client and only call this without one.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
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
# Presigned URLs signed with SigV4, which signs the headers a GET is given (If-Match for
# ffprobe's reads); botocore would otherwise presign with SigV2 in us-east-1, which does not.
_SERVICE_CONFIG = {"s3": Config(signature_version="s3v4")}


class RetryCounter:
    """SDK retries over every shared client (for the AwsRetries metric).

    Read from each call's ResponseMetadata.RetryAttempts ('after-call' fires for successes
    and error responses alike), which every botocore the Lambda runtime may ship reports;
    a counting hook must never break the call it watches.
    """

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()  # calls come from a batch's worker threads

    def on_call(self, parsed: Any = None, **_: Any) -> None:
        with contextlib.suppress(Exception):  # no metadata: nothing to count
            attempts = int(parsed["ResponseMetadata"].get("RetryAttempts", 0))
            with self.lock:
                self.count += attempts

    def take(self) -> int:
        with self.lock:
            taken, self.count = self.count, 0
        return taken


retries = RetryCounter()


class CallCounter:
    """API calls made through the shared clients, by `Service.Operation` (what an operator
    command reports it cost; retries are not calls of their own)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def on_call(self, model: Any = None, **_: Any) -> None:
        with contextlib.suppress(Exception):  # a counting hook must never break the call
            self.counts[f"{model.service_model.service_id}.{model.name}"] += 1

    def snapshot(self) -> Counter[str]:
        return Counter(self.counts)


calls = CallCounter()


@cache
def client(service: str) -> Any:
    """The shared client for a service (retries: standard mode, 5 attempts, counted)."""
    config = _CONFIG.merge(_SERVICE_CONFIG[service]) if service in _SERVICE_CONFIG else _CONFIG
    made = boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
    made.meta.events.register("after-call", retries.on_call)
    made.meta.events.register("before-call", calls.on_call)
    return made


def client_as(service: str, credentials: dict[str, Any]) -> Any:
    """A client of its own signing with `credentials` (an AssumeRole answer's Credentials),
    configured as the shared one is. Not cached: the credentials are the caller's."""
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    config = _CONFIG.merge(_SERVICE_CONFIG[service]) if service in _SERVICE_CONFIG else _CONFIG
    made = session.client(service, config=config)  # type: ignore[call-overload]
    made.meta.events.register("after-call", retries.on_call)
    made.meta.events.register("before-call", calls.on_call)
    return made


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class ClientSlot[C]:
    """An adapter attribute holding its boto3 client: the one injected, else the shared one.

    `s3: ClientSlot[S3Client] = ClientSlot("s3")` on the class, `self.s3 = client` (possibly
    None) in `__init__`; the default client is only created on first use.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.attr = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = f"_{name}_client"

    def __get__(self, obj: object, owner: type | None = None) -> C:
        found: C | None = obj.__dict__.get(self.attr)
        if found is None:
            found = client(self.service)
            obj.__dict__[self.attr] = found
        return found

    def __set__(self, obj: object, value: C | None) -> None:
        obj.__dict__[self.attr] = value
