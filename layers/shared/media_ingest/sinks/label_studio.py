"""The Label Studio sink: a project brought in line with the catalog's changes, one task per
object URL whatever the redeliveries; a deleted object's task removed, or flagged when
someone has annotated it. Pure orchestration over small interfaces (the projects, the
catalog, the failure recorder); the task itself is platforms/label_studio.py's.

Exactly one task per URL without a ledger of our own: the sink queue is FIFO with one
message group per dataset, so no two applications for one dataset run at once, and each
application first asks the project which of its URIs have tasks already (one filtered list
per data key), then creates only the others. A crash between the creation and the end of
the message leaves tasks the next attempt finds. Label Studio is the one record of what it
holds.

Errors: a task Label Studio refuses (4xx) is a failure record of its own (stage `sink`,
SINK_REFUSED) and the rest of the message goes on; Label Studio unreachable, failing (5xx)
or refusing our credentials is transient (TransientError): the message is retried, and on
its last attempt each of its changes gets a SINK_UNAVAILABLE failure record before the
message goes to the sink's dead-letter queue. Ingestion never waits for any of this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from media_ingest.errors import ErrorCode, Stage
from media_ingest.failure_recorder import FailureRecorder
from media_ingest.groups.rules import GroupRef
from media_ingest.media import MediaKind
from media_ingest.observability import logger
from media_ingest.platforms.label_studio import (
    DATA_KEYS,
    LabelStudioTask,
    UnresolvableKey,
    s3_uri,
    task_for,
)
from media_ingest.records import CatalogItem, FailureRecord, Refusal
from media_ingest.sinks.changes import Change, ChangeAction, ChangeBatch

ANY_DATASET = "*"
# Tasks sent in one import call: Label Studio takes 250K tasks or 200 MB per POST
# (label-studio-sdk `projects.import_tasks`); a message holds at most a batch's objects.
IMPORT_CHUNK = 500


class TaskRefused(Exception):
    """Label Studio refused what we sent for these tasks (a 4xx): retrying cannot help."""


class ProjectTask(BaseModel):
    """A task a project holds, as far as the sink needs it."""

    id: int
    data: dict[str, Any]
    meta: dict[str, Any] = Field(default_factory=dict)
    annotations: int = 0


class TaskStore(Protocol):
    """Label Studio's projects (adapters/label_studio.py). Transient trouble raises
    TransientError; a refusal of what was sent raises TaskRefused."""

    def data_keys(self, project: int) -> frozenset[str]: ...
    def find(self, project: int, data_key: str, uris: Sequence[str]) -> list[ProjectTask]: ...
    def create(self, project: int, tasks: Sequence[dict[str, Any]]) -> None: ...
    def update(self, task_id: int, data: dict[str, Any], meta: dict[str, Any]) -> None: ...
    def delete(self, task_id: int) -> None: ...


class CatalogItems(Protocol):
    def items_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CatalogItem]: ...


class ProjectRoutes(BaseModel):
    """`LabelStudioProjects`: dataset (or `*`) -> a project id, or kind -> project id.

    `{"main": 12}` offers every kind of dataset `main` to project 12, whose labelling config
    decides which kinds it takes (the others are skipped); `{"main": {"image": 12, "video":
    13}, "*": {"image": 9}}` names a project per kind, `*` for the other datasets, and a kind
    named for a project whose config cannot show it is a failure (SINK_REFUSED): someone
    meant it to be there.
    """

    model_config = ConfigDict(frozen=True)

    routes: dict[str, int | dict[MediaKind, int]] = Field(default_factory=dict)

    @field_validator("routes")
    @classmethod
    def _kinds_with_a_tag(
        cls, value: dict[str, int | dict[MediaKind, int]]
    ) -> dict[str, int | dict[MediaKind, int]]:
        for dataset, target in value.items():
            if isinstance(target, dict):
                untagged = [k.value for k in target if k not in DATA_KEYS]
                if untagged:
                    raise ValueError(
                        f"{dataset}: Label Studio has no object tag for {', '.join(untagged)}"
                    )
        return value

    def _target(self, dataset: str) -> int | dict[MediaKind, int] | None:
        return self.routes.get(dataset, self.routes.get(ANY_DATASET))

    def project(self, dataset: str, kind: MediaKind) -> int | None:
        target = self._target(dataset)
        return target.get(kind) if isinstance(target, dict) else target

    def named(self, dataset: str) -> bool:
        """Whether the routes name this kind's project (not just the dataset's)."""
        return isinstance(self._target(dataset), dict)

    def projects(self, dataset: str) -> set[int]:
        target = self._target(dataset)
        if target is None:
            return set()
        return set(target.values()) if isinstance(target, dict) else {target}


@dataclass
class SinkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    flagged: int = 0
    skipped: int = 0
    refused: int = 0


type Planned = dict[int, list[tuple[Change, LabelStudioTask]]]


@dataclass
class LabelStudioSink:
    tasks: TaskStore
    catalog: CatalogItems
    routes: ProjectRoutes
    failures: FailureRecorder
    # Data keys per project, read once per execution environment (a config change in Label
    # Studio is seen after the next cold start).
    _keys: dict[int, frozenset[str]] = field(default_factory=dict)

    def apply(self, batch: ChangeBatch, attempt: int = 1) -> SinkResult:
        """Bring the projects in line with one batch. Raises TransientError to be retried."""
        result = SinkResult()
        upserts = [c for c in batch.changes if c.action is ChangeAction.UPSERT]
        planned = self._plan(upserts, result, attempt)
        for project, pairs in planned.items():
            self._upsert(project, pairs, result, attempt)
        for change in batch.changes:
            if change.action is ChangeAction.DELETE:
                self._delete(change, result)
        counts = {f"tasks_{name}": value for name, value in vars(result).items()}
        logger.info("sink applied", extra={"dataset": batch.dataset, **counts})
        return result

    def give_up(self, batch: ChangeBatch, reason: str, attempt: int) -> None:
        """The message's last attempt failed: every change is a SINK_UNAVAILABLE failure."""
        for change in batch.changes:
            self._record(change, ErrorCode.SINK_UNAVAILABLE, reason, attempt)

    def _data_keys(self, project: int) -> frozenset[str]:
        if project not in self._keys:
            self._keys[project] = self.tasks.data_keys(project)
        return self._keys[project]

    def _plan(self, upserts: list[Change], result: SinkResult, attempt: int) -> Planned:
        """Each upsert's task and project; what has none is skipped (said why) or refused."""
        keys = [(c.dataset, c.object_url) for c in upserts]
        items = self.catalog.items_of(keys) if keys else {}
        planned: Planned = defaultdict(list)
        for change in upserts:
            item = items.get((change.dataset, change.object_url))
            if item is None:
                # Deleted since (its own change follows), or the catalog lost a race: nothing
                # to show.
                self._skip(change, "no catalog item", result)
                continue
            task = task_for(item, GroupRef.parse(change.group) if change.group else None)
            project = self.routes.project(change.dataset, item.kind)
            if isinstance(task, Refusal):
                if item.kind in DATA_KEYS:
                    result.refused += 1
                    self._record(change, ErrorCode.SINK_REFUSED, task.reason, attempt)
                else:
                    self._skip(change, task.reason, result)
            elif project is None:
                self._skip(change, f"no project for {item.kind.value}", result)
            elif task.data_key not in self._data_keys(project):
                message = (
                    f"Label Studio project {project}'s labelling config has no "
                    f"${task.data_key} object tag for this {item.kind.value}"
                )
                if self.routes.named(change.dataset):
                    result.refused += 1
                    self._record(change, ErrorCode.SINK_REFUSED, message, attempt)
                else:  # the dataset's one project does not label this kind: as configured
                    self._skip(change, message, result)
            else:
                planned[project].append((change, task))
        return planned

    def _upsert(
        self,
        project: int,
        pairs: list[tuple[Change, LabelStudioTask]],
        result: SinkResult,
        attempt: int,
    ) -> None:
        held = self._held(project, [task for _, task in pairs])
        fresh = []
        for change, task in pairs:
            if task.uri not in held:
                fresh.append((change, task))
                continue
            for existing in held[task.uri]:
                if existing.data == task.data and existing.meta == task.meta:
                    result.unchanged += 1
                else:
                    self.tasks.update(existing.id, task.data, task.meta)
                    result.updated += 1
        for start in range(0, len(fresh), IMPORT_CHUNK):
            self._create(project, fresh[start : start + IMPORT_CHUNK], result, attempt)

    def _held(self, project: int, tasks: list[LabelStudioTask]) -> dict[str, list[ProjectTask]]:
        """The project's tasks for these URIs, by URI (one lookup per data key)."""
        by_key: dict[str, list[str]] = defaultdict(list)
        for task in tasks:
            by_key[task.data_key].append(task.uri)
        held: dict[str, list[ProjectTask]] = defaultdict(list)
        for data_key, uris in by_key.items():
            for existing in self.tasks.find(project, data_key, uris):
                held[str(existing.data.get(data_key))].append(existing)
        return held

    def _create(
        self,
        project: int,
        pairs: list[tuple[Change, LabelStudioTask]],
        result: SinkResult,
        attempt: int,
    ) -> None:
        """One import for all; if Label Studio refuses it (an import is all or nothing), one
        import per task, so only the tasks it refuses fail."""
        try:
            self.tasks.create(project, [task.payload() for _, task in pairs])
            result.created += len(pairs)
            return
        except TaskRefused as refusal:
            if len(pairs) == 1:
                result.refused += 1
                self._record(pairs[0][0], ErrorCode.SINK_REFUSED, str(refusal), attempt)
                return
        for change, task in pairs:
            try:
                self.tasks.create(project, [task.payload()])
                result.created += 1
            except TaskRefused as refusal:
                result.refused += 1
                self._record(change, ErrorCode.SINK_REFUSED, str(refusal), attempt)

    def _delete(self, change: Change, result: SinkResult) -> None:
        """Remove the object's tasks; one with annotations is flagged in `meta.deleted`
        instead (the object is gone, the labelling work is not thrown away)."""
        try:
            uri = s3_uri(change.bucket, change.key)
        except UnresolvableKey:
            self._skip(change, "no task can name this key", result)
            return
        if change.kind is not None:
            project = self.routes.project(change.dataset, change.kind)
            projects = {project} if project is not None else set()
        else:
            projects = self.routes.projects(change.dataset)
        flag = {"at": change.event_time.isoformat(), "event_id": change.event_id}
        for project in sorted(projects):
            for data_key in sorted(self._data_keys(project)):
                for existing in self.tasks.find(project, data_key, [uri]):
                    if not existing.annotations:
                        self.tasks.delete(existing.id)
                        result.deleted += 1
                    elif existing.meta.get("deleted") != flag:
                        self.tasks.update(
                            existing.id, existing.data, existing.meta | {"deleted": flag}
                        )
                        result.flagged += 1

    def _skip(self, change: Change, why: str, result: SinkResult) -> None:
        result.skipped += 1
        logger.info("sink skipped", extra={"object_url": change.object_url, "reason": why})

    def _record(self, change: Change, code: ErrorCode, message: str, attempt: int) -> None:
        self.failures.write(
            FailureRecord(
                object_url=change.object_url,
                bucket=change.bucket,
                key=change.key,
                dataset=change.dataset,
                stage=Stage.SINK,
                error_code=code,
                message=message,
                attempt=attempt,
                # One record per change: the catalog keys failure records by event id.
                event_id=f"{change.event_id}#sink",
                event_time=change.event_time,
                size=change.size,
            )
        )
