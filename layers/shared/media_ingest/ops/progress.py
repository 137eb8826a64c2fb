"""A one-line progress bar for operator commands: count, rate and ETA, on stderr.

On a terminal it redraws in place; elsewhere (CI logs, pipes) it prints a line every
`every_s` seconds. Knows nothing about what is counted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

WIDTH = 30


def format_eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render(done: int, total: int | None, elapsed: float, note: str = "") -> str:
    """`[#####.....] 500/2000 25%  83.3/s  ETA 0:00:18  note` (no bar without a total)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    parts = []
    if total:
        filled = min(WIDTH, WIDTH * done // total)
        parts.append(
            f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} {100 * done // total}%"
        )
    else:
        parts.append(f"{done}")
    parts.append(f"{rate:.1f}/s")
    if total and rate > 0:
        parts.append(f"ETA {format_eta(max(total - done, 0) / rate)}")
    if note:
        parts.append(note)
    return "  ".join(parts)


@dataclass
class ProgressBar:
    total: int | None
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every_s: float = 0.2
    clock: Callable[[], float] = time.monotonic
    _start: float = field(init=False)
    _last: float = field(init=False, default=float("-inf"))

    def __post_init__(self) -> None:
        self._start = self.clock()
        if not self.stream.isatty():
            self.every_s = max(self.every_s, 5.0)

    def show(self, done: int, note: str = "", force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        line = render(done, self.total, now - self._start, note)
        if self.stream.isatty():
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self, done: int, note: str = "") -> None:
        self.show(done, note, force=True)
        if self.stream.isatty():
            self.stream.write("\n")
