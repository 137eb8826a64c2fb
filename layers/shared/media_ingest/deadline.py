"""The invocation's deadline: how long the work of one message may still take.

A batch of slow objects (each probe may take up to PROBE_TIMEOUT_SECONDS) could otherwise
outlast the function's timeout, and a timeout returns the whole batch, innocent messages
included, to the queue until they are dead-lettered. Work that cannot finish before the
deadline is not started: its message is retried (TransientError), the others are kept.
Never reads a clock other than `time.monotonic`.
"""

from __future__ import annotations

import math
import time
from typing import Protocol


class RemainingTime(Protocol):
    """What the Lambda context tells of its deadline."""

    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """Set from the context when an invocation starts; read by whatever may run long."""

    def __init__(self) -> None:
        self._end: float | None = None
        self.total = math.inf  # the seconds the invocation had when it started

    def start(self, context: RemainingTime) -> None:
        self.total = context.get_remaining_time_in_millis() / 1000
        self._end = time.monotonic() + self.total

    def remaining(self) -> float:
        """Seconds left (infinite outside an invocation: tests, tools)."""
        return math.inf if self._end is None else self._end - time.monotonic()
