"""Group rules: which group a key or a DICOM file belongs to, member order, the group's entry.

Image groups and sequences come from key layout (`<prefix><title>/<frame>`, a marker object
`<prefix><title>/_SEALED` seals one); DICOM series from the SeriesInstanceUID in the header.
Pure: no AWS, no clock. The group table adapter stores what these rules decide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from media_ingest.media import MediaKind
from media_ingest.records import CatalogItem

DEFAULT_MARKER = "_SEALED"
_DIGITS = re.compile(r"(\d+)")


class GroupKind(StrEnum):
    IMAGE_GROUPS = "image_groups"
    IMAGE_SEQUENCES = "image_sequences"
    DICOM_SERIES = "dicom_series"


class Joined(StrEnum):
    """What adding a member to its group came to."""

    ADDED = "added"
    PRESENT = "present"  # this URL is already a member (a redelivery, or an earlier upload)
    SEALED = "sealed"  # the group was sealed before this member arrived


class GroupStatus(StrEnum):
    OPEN = "open"
    SEALED = "sealed"


class GroupRef(BaseModel):
    """One group: its dataset, kind, scope (prefix + title, or the series UID) and title."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    kind: GroupKind
    scope: str
    title: str

    @property
    def group_id(self) -> str:
        return f"{self.dataset}|{self.kind.value}|{self.scope}"

    @classmethod
    def parse(cls, group_id: str) -> GroupRef:
        """Back from a group id (dataset names and kinds hold no '|'); title unknown."""
        dataset, kind, scope = group_id.split("|", 2)
        return cls(dataset=dataset, kind=GroupKind(kind), scope=scope, title="")

    @property
    def pk(self) -> str:
        """Table key: a digest, because a scope (an S3 key prefix) may exceed the key limit."""
        return "group#" + hashlib.sha256(self.group_id.encode()).hexdigest()


class GroupMeta(BaseModel):
    """The group's state as the table holds it (the `#meta` item)."""

    ref: GroupRef
    status: GroupStatus
    members: int = 0
    last_member_at: datetime | None = None
    sealed_at: datetime | None = None
    appended_at: datetime | None = None

    @property
    def pending_append(self) -> bool:
        return self.status is GroupStatus.SEALED and self.appended_at is None


@dataclass(frozen=True)
class Claim:
    """The right to write a sealed group's entry, until `until` (groups/sealing.py)."""

    until: datetime
    # An earlier claim came first: its writer may have written the entry before it ended.
    retried: bool


@dataclass(frozen=True)
class Located:
    """Where a key sits under a grouping prefix."""

    prefix: str
    kind: GroupKind
    title: str
    name: str
    is_marker: bool

    def ref(self, dataset: str) -> GroupRef:
        return GroupRef(
            dataset=dataset, kind=self.kind, scope=self.prefix + self.title, title=self.title
        )


@dataclass(frozen=True)
class GroupRoutes:
    """Key prefix -> image group kind; the longest matching prefix wins.

    `<prefix><title>/<file>` is a member of group `<title>`; a title may hold slashes
    (`<prefix>a/b/0001.jpg` is group `a/b`). A file directly under the prefix has no title
    and is not grouped. The file named `marker` seals its folder's group.
    """

    routes: dict[str, GroupKind]
    marker: str = DEFAULT_MARKER

    def locate(self, key: str) -> Located | None:
        matches = [p for p in self.routes if key.startswith(p)]
        if not matches:
            return None
        prefix = max(matches, key=len)
        rest = key[len(prefix) :]
        if "/" not in rest:
            return None
        title, name = rest.rsplit("/", 1)
        if not title or not name:
            return None
        return Located(prefix, self.routes[prefix], title, name, name == self.marker)


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """`frame2` before `frame10`: digit runs compare as numbers, the rest case-folded."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.casefold()) for p in parts if p)


def series_ref(item: CatalogItem) -> GroupRef | None:
    """The DICOM series a file belongs to, titled by its description or else its UID."""
    dicom = item.media.dicom
    if item.kind is not MediaKind.DICOM or dicom is None or not dicom.series_instance_uid:
        return None
    uid = dicom.series_instance_uid
    return GroupRef(
        dataset=item.dataset,
        kind=GroupKind.DICOM_SERIES,
        scope=uid,
        title=dicom.series_description or uid,
    )


def _file_name(item: CatalogItem) -> str:
    return item.key.rsplit("/", 1)[-1]


def member_order(kind: GroupKind, item: CatalogItem) -> tuple[Any, ...]:
    """Images: natural sort of the file name. DICOM: InstanceNumber (files without one
    last), ties by SOPInstanceUID, then file name. The full key breaks any remaining tie."""
    name = natural_key(_file_name(item))
    if kind is GroupKind.DICOM_SERIES:
        dicom = item.media.dicom
        number = dicom.instance_number if dicom else None
        sop = (dicom.sop_instance_uid if dicom else None) or ""
        return (number is None, number or 0, sop, name, item.key)
    return (name, item.key)


def ordered(kind: GroupKind, members: Iterable[CatalogItem]) -> list[CatalogItem]:
    unique = {m.object_url: m for m in members}
    return sorted(unique.values(), key=lambda m: member_order(kind, m))


def due_at(last_member_at: datetime, quiet_seconds: int) -> datetime:
    """When an open group is sealed for quiet: its last member plus the quiet period."""
    return last_member_at + timedelta(seconds=quiet_seconds)


def seal_decision(meta: GroupMeta, now: datetime, quiet_seconds: int) -> bool:
    """Whether the sweeper seals an open group now (a sealed one is only finished)."""
    if meta.status is not GroupStatus.OPEN or meta.last_member_at is None:
        return False
    return now >= due_at(meta.last_member_at, quiet_seconds)
