"""Encord's CSV registration form: Encord entries as CSV rows, and what that form refuses.

The CSV form carries videos and image groups/sequences only (`ObjectUrl`, `Title`,
`Create video`); every other entry is refused by name, never dropped. Pure: takes entries
(the same ones `manifest.entry_for` builds for the JSON parts), returns rows and refusals.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import BaseModel, ConfigDict

from media_ingest.manifests.writer import Entry, urls_of
from media_ingest.records import Refusal

COLUMNS = ("ObjectUrl", "Title", "Create video")
REASON = "the Encord CSV form carries videos and image groups/sequences only"


class CsvRow(BaseModel):
    """One CSV row: one video, or one frame of an image group or sequence.

    `Create video` is Encord's `createVideo` flag of an image group (true: the group becomes
    an image sequence, a video made of its frames; false: an image group). It means nothing
    for a video file, so video rows leave it empty. The frames of one group share its title
    and follow in frame order.
    """

    model_config = ConfigDict(frozen=True)

    object_url: str
    title: str
    create_video: bool | None = None

    def cells(self) -> dict[str, str]:
        flag = "" if self.create_video is None else str(self.create_video).lower()
        return {"ObjectUrl": self.object_url, "Title": self.title, "Create video": flag}


@dataclass
class CsvExport:
    rows: list[CsvRow] = field(default_factory=list)
    entries: int = 0
    refused: list[Refusal] = field(default_factory=list)


def csv_rows(entries: Iterable[Entry], into: CsvExport | None = None) -> CsvExport:
    """The rows of the entries the CSV form carries; the others as refusals."""
    out = into if into is not None else CsvExport()
    for entry in entries:
        payload = entry.payload
        if entry.section == "videos":
            out.rows.append(CsvRow(object_url=entry.key, title=str(payload.get("title", ""))))
        elif entry.section == "image_groups":
            title = str(payload.get("title", ""))
            flag = bool(payload.get("createVideo", False))
            out.rows.extend(
                CsvRow(object_url=url, title=title, create_video=flag) for url in urls_of(payload)
            )
        else:
            out.refused.append(Refusal(object_url=entry.key, kind=entry.section, reason=REASON))
            continue
        out.entries += 1
    return out


def write_rows(rows: Iterable[CsvRow], stream: TextIO) -> None:
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.cells() for row in rows)
