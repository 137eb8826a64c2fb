"""Virtual time for many simulated machines in one process: the real code, one thread each.

A two-core machine cannot run 100 functions' worth of CPU at once, and sleeping through
real network latency would measure this machine's scheduler rather than the design. Here
every actor (a thread standing for one Lambda execution environment) runs the project's
real code, but only one actor runs at a time, and time is virtual:

- `sleep(seconds)` (a network round trip in bench/memory_s3.py, a backoff) moves the actor
  `seconds` into its future and lets the actor with the earliest moment run;
- the CPU an actor spends between two sleeps (measured with `time.thread_time`, so other
  load on the machine does not count) is added to its own clock, times `cpu_scale` (how
  much slower the simulated machine's CPU is than this one's: a 1,024 MB function has
  about 0.58 of a vCPU), as if each actor had a CPU of its own.

Because exactly one actor runs at a time, what a simulated server does between two sleeps is
atomic and happens in virtual-time order: conditional writes race as they would on S3.
Actors must not block on anything but `sleep` (no real locks held across it, no threads of
their own).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass
class _Actor:
    name: str
    go: threading.Event = field(default_factory=threading.Event)
    # This actor's own clock: where it is in virtual time while it runs.
    at: float = 0.0
    cpu_mark: float = 0.0
    cpu: float = 0.0
    error: BaseException | None = None


class VirtualTime:
    """The scheduler (module doc). `spawn` actors, then `run()` until all have finished."""

    def __init__(self, cpu_scale: float = 1.0, start: datetime = EPOCH) -> None:
        self.cpu_scale = cpu_scale
        self.start = start
        self.now_s = 0.0
        self._queue: list[tuple[float, int, _Actor]] = []
        self._order = itertools.count()
        self._local = threading.local()
        self._yielded = threading.Event()
        self._actors: list[_Actor] = []

    # -- inside actors --------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        actor: _Actor | None = getattr(self._local, "actor", None)
        if actor is None:  # outside the simulation (set-up code): no time passes
            return
        self._charge(actor)
        heapq.heappush(self._queue, (actor.at + max(seconds, 0.0), next(self._order), actor))
        actor.go.clear()
        self._yielded.set()
        actor.go.wait()
        actor.cpu_mark = time.thread_time()

    def now(self) -> datetime:
        """The virtual moment as the running actor sees it (its own clock)."""
        actor: _Actor | None = getattr(self._local, "actor", None)
        at = self.now_s if actor is None else actor.at + self._pending_cpu(actor)
        return self.start + timedelta(seconds=at)

    def seconds(self) -> float:
        return (self.now() - self.start).total_seconds()

    # -- outside --------------------------------------------------------------------------
    def spawn(self, name: str, target: Callable[..., Any], *args: Any) -> None:
        actor = _Actor(name, at=self.now_s)
        self._actors.append(actor)

        def body() -> None:
            self._local.actor = actor
            actor.go.wait()
            actor.cpu_mark = time.thread_time()
            try:
                target(*args)
            except BaseException as exc:  # reported by run()
                actor.error = exc
            finally:
                self._charge(actor)
                self._yielded.set()

        heapq.heappush(self._queue, (actor.at, next(self._order), actor))
        threading.Thread(target=body, name=name, daemon=True).start()

    def run(self) -> float:
        """Run every actor to its end; the virtual seconds that took. Re-raises the first
        error an actor raised."""
        while self._queue:
            at, _, actor = heapq.heappop(self._queue)
            self.now_s = max(self.now_s, at)
            actor.at = self.now_s
            self._yielded.clear()
            actor.go.set()
            self._yielded.wait()
        errors = [a.error for a in self._actors if a.error is not None]
        if errors:
            raise errors[0]
        return self.now_s

    @property
    def cpu_seconds(self) -> float:
        """The CPU all actors spent (on this machine, before scaling)."""
        return sum(a.cpu for a in self._actors)

    def _pending_cpu(self, actor: _Actor) -> float:
        return (time.thread_time() - actor.cpu_mark) * self.cpu_scale

    def _charge(self, actor: _Actor) -> None:
        spent = time.thread_time() - actor.cpu_mark
        actor.cpu += spent
        actor.at += spent * self.cpu_scale
        actor.cpu_mark = time.thread_time()
