"""The catalog's side of one reconcile: its rows for the bucket and prefix, in a local SQLite
file, with whether the listing showed each key. Bounded memory whatever the bucket's size,
and it survives an interruption with the run's state (resumable like backfill).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

from media_ingest.reconcile.rules import RowState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    key TEXT NOT NULL, dataset TEXT NOT NULL, doc TEXT NOT NULL,
    listed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (key, dataset));
CREATE INDEX IF NOT EXISTS unlisted ON rows (listed, key, dataset);
"""


class Snapshot:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path else ":memory:")
        self.db.executescript(_SCHEMA)

    @classmethod
    def temporary(cls) -> Snapshot:
        """A snapshot in a file of its own under the temp directory (/tmp on Lambda)."""
        return cls(Path(tempfile.mkdtemp(prefix="reconcile-")) / "snapshot.db")

    def close(self, remove: bool = False) -> None:
        self.db.close()
        if remove and self.path is not None:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    def add(self, rows: Iterable[RowState]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO rows (key, dataset, doc) VALUES (?, ?, ?)",
                [(r.key, r.dataset, r.model_dump_json()) for r in rows],
            )

    def get(self, key: str, dataset: str) -> RowState | None:
        found = self.db.execute(
            "SELECT doc FROM rows WHERE key = ? AND dataset = ?", (key, dataset)
        ).fetchone()
        return RowState.model_validate_json(found[0]) if found else None

    def mark_listed(self, keys: Iterable[str]) -> None:
        with self.db:
            self.db.executemany("UPDATE rows SET listed = 1 WHERE key = ?", [(k,) for k in keys])

    def unlisted(self, after: tuple[str, str] | None, limit: int) -> list[RowState]:
        """Rows whose key was not listed, in (key, dataset) order, after `after`."""
        key, dataset = after or ("", "")
        found = self.db.execute(
            "SELECT doc FROM rows WHERE listed = 0 AND (key > ? OR (key = ? AND dataset > ?)) "
            "ORDER BY key, dataset LIMIT ?",
            (key, key, dataset, limit),
        ).fetchall()
        return [RowState.model_validate_json(doc) for (doc,) in found]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def clear(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM rows")
