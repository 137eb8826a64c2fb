"""Group membership, the ingest side: a marker object, and placing a probed object in its group.

One call per decision: `marker` says whether a key is a group's marker (and records it),
`place` puts a probed object into its group (a folder under a grouping prefix, or its DICOM
series) or says it has none. Which group that is comes from groups/rules.py; the store does
the conditional writes. Never creates a client itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from media_ingest.errors import ErrorCode, MediaError, Stage
from media_ingest.groups.rules import GroupMeta, GroupRef, GroupRoutes, Joined, due_at, series_ref
from media_ingest.media import MediaKind
from media_ingest.records import CatalogItem, utcnow


class MemberStore(Protocol):
    def join(self, ref: GroupRef, item: CatalogItem, now: datetime, due: datetime) -> Joined: ...
    def touch(self, ref: GroupRef, now: datetime, due: datetime) -> GroupMeta: ...


@dataclass(frozen=True)
class Marked:
    """A marker object's group and its state once the marker is recorded."""

    ref: GroupRef
    meta: GroupMeta


@dataclass
class Membership:
    routes: GroupRoutes
    store: MemberStore
    quiet_seconds: int
    clock: Callable[[], datetime] = utcnow

    def marker(self, dataset: str, key: str) -> Marked | None:
        """If `key` is a group's marker object, record it (its group may now be sealed) and
        return the group; None for every other key. Markers are never probed."""
        located = self.routes.locate(key)
        if located is None or not located.is_marker:
            return None
        ref = located.ref(dataset)
        now = self.clock()
        return Marked(ref, self.store.touch(ref, now, due_at(now, self.quiet_seconds)))

    def place(self, item: CatalogItem) -> GroupRef | None:
        """Join a probed object to its group: its folder's under a grouping prefix, else its
        DICOM series; None when it has none (an entry of its own).

        Raises GROUP_MEMBER_KIND (only images are frames) and GROUP_SEALED (the group was
        sealed and written before this file arrived)."""
        ref = self._group_of(item)
        if ref is None:
            return None
        now = self.clock()
        if self.store.join(ref, item, now, due_at(now, self.quiet_seconds)) is Joined.SEALED:
            raise MediaError(
                ErrorCode.GROUP_SEALED,
                f"{ref.kind.value} {ref.title!r} was already sealed and written when this "
                "file arrived; it is not added to it, and no new group is started. Upload the "
                "group again under a new title to register it.",
                Stage.REGISTER,
            )
        return ref

    def _group_of(self, item: CatalogItem) -> GroupRef | None:
        located = self.routes.locate(item.key)
        if located is None:
            return series_ref(item)
        if item.kind is not MediaKind.IMAGE:
            raise MediaError(
                ErrorCode.GROUP_MEMBER_KIND,
                f"{located.kind.value} {located.title!r} takes images; this is {item.kind.value}",
                Stage.REGISTER,
            )
        return located.ref(item.dataset)
