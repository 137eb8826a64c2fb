"""Label Studio's projects through the official label-studio-sdk (2.1.2): the sink's only
door to Label Studio (sinks/label_studio.py decides what to do; this says how).

- A project's data keys come from its labelling config, parsed by the SDK's own
  `LabelInterface` (each object tag's `value="$key"`).
- Finding a project's tasks for some URIs is one filtered list per data key and chunk of
  URIs: the Data Manager filter `filter:tasks:data.<key>` with operator `in_list`
  (`data_manager/managers.py` `apply_filters`; checked against 1.23.2), chunked so the
  query string stays well under the 8 KB request line proxies allow.
- Errors: an import refused with a 4xx is `TaskRefused` (the tasks are at fault). Everything
  else (connection errors, timeouts, 5xx, 429, and 401/403, which a rotated or revoked token
  gives) is transient; after 401/403 the next call reads the secret again. Messages carry
  the status and Label Studio's detail, never headers or the token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.core.request_options import RequestOptions
from label_studio_sdk.label_interface.interface import LabelInterface
from label_studio_sdk.types import ImportApiRequest, LseTask

from media_ingest.adapters.secrets import LabelStudioCredentials
from media_ingest.errors import ErrorCode, TransientError
from media_ingest.sinks.label_studio import ProjectTask, TaskRefused

# httpx logs every request URL at INFO: quiet it (no secret is in a URL, but the volume is).
logging.getLogger("httpx").setLevel(logging.WARNING)

TIMEOUT_SECONDS = 30.0
SDK_RETRIES = 2
QUERY_CHARS = 6000
_CREDENTIALS = {401, 403}
_RETRYABLE = {408, 409, 423, 425, 429}
T = TypeVar("T")


def _detail(error: ApiError) -> str:
    body = error.body
    if isinstance(body, dict):
        detail = body.get("validation_errors") or body.get("detail") or body
        return json.dumps(detail, default=str)[:500]
    return str(body)[:500]


class SdkTaskStore:
    """The sink's TaskStore on a live Label Studio."""

    def __init__(
        self,
        credentials: Callable[[], LabelStudioCredentials],
        timeout: float = TIMEOUT_SECONDS,
        retries: int = SDK_RETRIES,
        client: LabelStudio | None = None,
    ) -> None:
        self.credentials = credentials
        self.timeout = timeout
        # The SDK's own retries of 408/429/5xx and connection errors, with backoff, within
        # one call; past them the message is retried by SQS.
        self.options: RequestOptions = {"max_retries": retries}
        self._client = client

    @property
    def client(self) -> LabelStudio:
        if self._client is None:
            secret = self.credentials()
            # The SDK's constructor is not annotated (label-studio-sdk 2.1.2).
            self._client = LabelStudio(  # type: ignore[no-untyped-call]
                base_url=secret.url.rstrip("/"),
                api_key=secret.api_key.get_secret_value(),
                timeout=self.timeout,
            )
        return self._client

    def _call(self, what: str, call: Callable[[LabelStudio], T]) -> T:
        try:
            return call(self.client)
        except ApiError as error:
            status = error.status_code or 0
            if status in _CREDENTIALS:
                self._client = None  # read the secret again next time: it may be rotated
            if 400 <= status < 500 and status not in _CREDENTIALS | _RETRYABLE:
                raise TaskRefused(
                    f"Label Studio refused {what} ({status}): {_detail(error)}"
                ) from None
            raise TransientError(
                ErrorCode.SINK_UNAVAILABLE, f"Label Studio answered {status} to {what}"
            ) from None
        except httpx.HTTPError as error:
            raise TransientError(
                ErrorCode.SINK_UNAVAILABLE,
                f"Label Studio unreachable for {what}: {type(error).__name__}",
            ) from None

    def data_keys(self, project: int) -> frozenset[str]:
        config = self._call(
            f"reading project {project}",
            lambda ls: ls.projects.get(id=project, request_options=self.options).label_config,
        )
        objects = LabelInterface(config or "<View/>").objects
        return frozenset(
            str(tag.value).removeprefix("$") for tag in objects if str(tag.value).startswith("$")
        )

    def find(self, project: int, data_key: str, uris: Sequence[str]) -> list[ProjectTask]:
        found: list[ProjectTask] = []
        for chunk in _chunks(uris):
            query = json.dumps(
                {
                    "filters": {
                        "conjunction": "and",
                        "items": [
                            {
                                "filter": f"filter:tasks:data.{data_key}",
                                "operator": "in_list",
                                "type": "List",
                                "value": chunk,
                            }
                        ],
                    }
                }
            )
            found += self._call(
                f"listing project {project}'s tasks",
                partial(_listed, project, query, self.options),
            )
        return found

    def create(self, project: int, tasks: Sequence[dict[str, Any]]) -> None:
        self._call(
            f"importing {len(tasks)} tasks into project {project}",
            lambda ls: ls.projects.import_tasks(
                id=project,
                request=[ImportApiRequest.model_validate(t) for t in tasks],
                request_options=self.options,
            ),
        )

    def update(self, task_id: int, data: dict[str, Any], meta: dict[str, Any]) -> None:
        self._call(
            f"updating task {task_id}",
            lambda ls: ls.tasks.update(
                id=str(task_id), data=data, meta=meta, request_options=self.options
            ),
        )

    def delete(self, task_id: int) -> None:
        try:
            self._call(
                f"deleting task {task_id}",
                lambda ls: ls.tasks.delete(id=str(task_id), request_options=self.options),
            )
        except TaskRefused as refusal:
            if "(404)" not in str(refusal):  # already gone: what a redelivery finds
                raise


def _listed(
    project: int, query: str, options: RequestOptions, ls: LabelStudio
) -> list[ProjectTask]:
    # resolve_uri=False: with an S3 storage on the project, Label Studio answers the data
    # rewritten to its /resolve/ proxy URLs by default; the sink compares what is stored.
    pages: Iterable[LseTask] = ls.tasks.list(
        project=project, query=query, fields="all", resolve_uri=False, request_options=options
    )
    return [_task(t) for t in pages]


def _task(task: LseTask) -> ProjectTask:
    annotations = (task.total_annotations or 0) + (task.cancelled_annotations or 0)
    return ProjectTask(
        id=task.id,
        data=dict(task.data or {}),
        meta=dict(task.meta or {}),
        annotations=annotations + len(task.drafts or []),
    )


def _chunks(uris: Sequence[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for uri in uris:
        cost = len(json.dumps(uri)) * 3  # URL-encoded, worst case
        if chunk and size + cost > QUERY_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(uri)
        size += cost
    if chunk:
        yield chunk
