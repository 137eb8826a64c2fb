"""MemorySize for a whole execution environment: the function process and everything it starts.

On AWS an execution environment (a Firecracker microVM) has MemorySize MB; when its processes
together need more, the environment is killed, the invocation fails with ``Runtime.ExitError``
("Runtime exited with error: signal: killed", REPORT ``Status: error  Error Type:
Runtime.OutOfMemory``), and the next invocation gets a fresh environment. REPORT's ``Max
Memory Used`` is the environment's peak. Two ways to get that here:

- ``cgroup`` (exact): one memory cgroup per environment, nested in LocalStack's own, with the
  limit set to MemorySize. The kernel charges every page of every process in it (children too,
  whatever their session) and its OOM killer fires at the limit; the guard then kills the rest
  of the environment, because a cgroup-v1 OOM kill takes only one process (a child such as
  ffprobe, say) while Lambda ends the whole environment. The peak is ``memory.max_usage_in_bytes``
  (v1) or ``memory.peak`` (v2). The function is spawned through ``/bin/sh`` that moves itself
  into the cgroup and then execs the runtime, so nothing runs uncharged.
- ``watchdog`` (fallback where no memory cgroup can be created, e.g. not root, or cgroup v2
  whose memory controller cannot be delegated to a child of LocalStack's cgroup): a thread
  samples every few ms the resident memory (RSS) of the process tree (the function's session,
  and every descendant of a member) and kills the tree when the sum goes over MemorySize.
  Approximate: an allocation faster than a sample interval overshoots before the kill, a spike
  shorter than an interval can pass, pages shared between processes count once per process,
  and page cache does not count.

``off`` enforces nothing (the peak is then the function process's own VmHWM). Mode from
``LAMBDA_PROCESS_MEMORY_LIMIT`` (``auto`` = cgroup if it works, else watchdog), sample interval
from ``LAMBDA_PROCESS_MEMORY_SAMPLE_MS`` (default 10).

No LocalStack imports: unit-testable on its own; the pure parsers take text.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

MODE_ENV = "LAMBDA_PROCESS_MEMORY_LIMIT"
SAMPLE_ENV = "LAMBDA_PROCESS_MEMORY_SAMPLE_MS"
MODES = ("auto", "cgroup", "watchdog", "off")
DEFAULT_SAMPLE_MS = 10.0
MIB = 1 << 20
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Folder of one LocalStack's environment cgroups, inside LocalStack's own cgroup.
GROUP_PREFIX = "media-ingest-lambda."
# Moves the shell into the cgroup ($0 = its cgroup.procs), then becomes the runtime.
CGROUP_EXEC = 'echo $$ > "$0" && exec "$@"'


# ---- pure helpers ------------------------------------------------------------------------


def limit_bytes(memory_mb: int) -> int:
    """Lambda's MemorySize is in MiB (128 MB = 134,217,728 bytes)."""
    return int(memory_mb) * MIB


def to_mb(n_bytes: int | None) -> int | None:
    """Bytes -> whole MB as REPORT prints them (rounded up)."""
    return None if n_bytes is None else math.ceil(n_bytes / MIB)


def choose_mode(environ: Mapping[str, str]) -> str:
    mode = (environ.get(MODE_ENV) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def sample_interval_s(environ: Mapping[str, str]) -> float:
    value = float(environ.get(SAMPLE_ENV) or DEFAULT_SAMPLE_MS)
    if not 0.5 <= value <= 1000:
        raise ValueError(f"{SAMPLE_ENV} must be between 0.5 and 1000 ms, not {value}")
    return value / 1000


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` -> {controller: path}; the cgroup-v2 line's key is ``""``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def parse_mountinfo(text: str) -> list[tuple[str, str, str, set[str]]]:
    """``/proc/self/mountinfo`` -> [(mount point, root in the hierarchy, fstype, super
    options)] of the cgroup mounts."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            point = fields[4].replace("\\040", " ")
            mounts.append((point, fields[3], tail[0], set(tail[2].split(","))))
    return mounts


def _under(point: str, mount_root: str, path: str) -> Path:
    """The folder of cgroup ``path`` below a mount of the hierarchy's ``mount_root``."""
    rel = path
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        rel = path[len(mount_root) :]
    return Path(point) / rel.lstrip("/")


def memory_cgroup_dirs(mountinfo: str, proc_cgroup: str) -> list[tuple[int, Path]]:
    """Where this process's memory cgroup is, per hierarchy that can hold one, v2 first:
    [(2, <cgroup2 mount>/<path>), (1, <v1 memory mount>/<path>)] as far as mounted."""
    paths = parse_proc_cgroup(proc_cgroup)
    found: list[tuple[int, Path]] = []
    for point, root, fstype, options in parse_mountinfo(mountinfo):
        if fstype == "cgroup" and "memory" in options and "memory" in paths:
            found.append((1, _under(point, root, paths["memory"])))
        elif fstype == "cgroup2" and "" in paths:
            found.append((2, _under(point, root, paths[""])))
    return sorted(set(found), key=lambda item: item[0] != 2)


def parse_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.events, memory.oom_control, memory.stat) -> dict."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_stat(text: str) -> tuple[int, int]:
    """``/proc/<pid>/stat`` -> (ppid, session id). The command name may hold spaces and ')'."""
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[3])


def statm_rss_bytes(text: str) -> int:
    """``/proc/<pid>/statm`` -> resident bytes (second field, in pages)."""
    return int(text.split()[1]) * PAGE_SIZE


def tree_members(
    root: int, procs: Mapping[int, tuple[int, int]], members: Iterable[int] = ()
) -> set[int]:
    """The environment's processes: ``root``, everything in its session (root leads one: the
    function is started with ``start_new_session``), and every descendant of a member (a child
    that called setsid). ``procs`` is {pid: (ppid, sid)}; ``members`` are already known ones."""
    found = set(members) | {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, sid) in procs.items():
            if pid not in found and (sid == root or ppid in found):
                found.add(pid)
                changed = True
    return found


def parse_stale_group(name: str) -> int | None:
    """``media-ingest-lambda.<pid>`` -> the LocalStack pid that made it."""
    rest = name.removeprefix(GROUP_PREFIX)
    return int(rest) if rest != name and rest.isdigit() else None


# ---- guards --------------------------------------------------------------------------------


class Guard:
    """Memory enforcement for one process generation of an execution environment."""

    kind = "off"

    def __init__(self, limit_mb: int, on_exceeded: Callable[[], None] | None = None):
        self.limit_mb = limit_mb
        self.limit = limit_bytes(limit_mb)
        self.on_exceeded = on_exceeded
        self.exceeded = threading.Event()
        self._closed = threading.Event()
        self._pid: int | None = None

    def command(self, argv: list[str]) -> list[str]:
        return argv

    def started(self, pid: int) -> None:
        self._pid = pid

    def peak_mb(self) -> int | None:
        """The environment's peak so far; here the root process's VmHWM (nothing tracks more)."""
        if self._pid is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{self._pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
        return None

    def was_exceeded(self, wait_s: float = 0.0) -> bool:
        return self.exceeded.wait(wait_s) if wait_s else self.exceeded.is_set()

    def kill_all(self) -> None:
        """Kill every process of the environment still alive (the process group is the
        caller's; this takes those that left it)."""

    def close(self) -> None:
        self._closed.set()

    def _fire(self) -> None:
        """Over the limit: mark it (a result the runtime posts from now on is refused), kill
        the environment, tell the owner."""
        if self.exceeded.is_set():
            return
        self.exceeded.set()
        self.kill_all()
        if self.on_exceeded:
            try:
                self.on_exceeded()
            except Exception:
                LOG.exception("memory guard: on_exceeded failed")


class CgroupGuard(Guard):
    kind = "cgroup"

    def __init__(
        self,
        path: Path,
        version: int,
        limit_mb: int,
        on_exceeded: Callable[[], None] | None,
        interval_s: float,
    ):
        super().__init__(limit_mb, on_exceeded)
        self.path, self.version, self.interval_s = path, version, interval_s
        path.mkdir()
        try:
            if version == 2:
                self._write("memory.max", self.limit)
                self._write("memory.swap.max", 0, optional=True)
                self._write("memory.oom.group", 1, optional=True)  # the kernel kills them all
            else:
                self._write("memory.limit_in_bytes", self.limit)
                # with swap, limit_in_bytes alone would let the environment swap instead of dying
                self._write("memory.memsw.limit_in_bytes", self.limit, optional=True)
        except BaseException:
            with contextlib.suppress(OSError):
                path.rmdir()
            raise
        self._kills_at_start = self._oom_kills()

    def _write(self, name: str, value: int, optional: bool = False) -> None:
        try:
            (self.path / name).write_text(str(value))
        except OSError:
            if not optional:
                raise

    def _read_int(self, name: str) -> int | None:
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            return parse_keyed((self.path / name).read_text()).get("oom_kill", 0)
        except OSError:
            return 0

    def command(self, argv: list[str]) -> list[str]:
        return ["/bin/sh", "-c", CGROUP_EXEC, str(self.path / "cgroup.procs"), *argv]

    def started(self, pid: int) -> None:
        super().started(pid)
        threading.Thread(target=self._monitor, name=f"lambda-mem-{pid}", daemon=True).start()

    def _monitor(self) -> None:
        # The kernel enforces the limit; this only notices its OOM kills, to end the rest
        # of the environment as Lambda does.
        while not self._closed.wait(self.interval_s):
            if self._oom_kills() > self._kills_at_start:
                self._fire()
                return

    def was_exceeded(self, wait_s: float = 0.0) -> bool:
        # The kernel counts the OOM kill around the time the victim dies: look again briefly.
        deadline = time.monotonic() + wait_s
        while True:
            if self.exceeded.is_set() or self._oom_kills() > self._kills_at_start:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def peak_mb(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        return to_mb(self._read_int(name))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def close(self) -> None:
        super().close()
        self.kill_all()
        for _ in range(50):  # a killed task leaves the cgroup a moment after it dies
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    break
                time.sleep(0.02)
        LOG.warning("memory guard: could not remove cgroup %s", self.path)


class WatchdogGuard(Guard):
    kind = "watchdog"

    def __init__(
        self,
        limit_mb: int,
        on_exceeded: Callable[[], None] | None,
        interval_s: float,
        proc_root: str = "/proc",
    ):
        super().__init__(limit_mb, on_exceeded)
        self.interval_s, self.proc = interval_s, proc_root
        self.peak = 0
        self.members: set[int] = set()
        self._known: dict[int, bool] = {}  # pid -> member, for pids already looked at
        self._lock = threading.Lock()  # members, peak, samples
        self._sampling = threading.Lock()  # one sample at a time (monitor, peak_mb)
        self.samples = 0

    def started(self, pid: int) -> None:
        super().started(pid)
        self.members = {pid}
        threading.Thread(target=self._monitor, name=f"lambda-mem-{pid}", daemon=True).start()

    def _read(self, pid: int, name: str) -> str | None:
        try:
            with open(f"{self.proc}/{pid}/{name}") as f:
                return f.read()
        except OSError:
            return None

    def sample(self) -> int:
        """Refresh the member set and return the tree's RSS sum (bytes)."""
        with self._sampling:
            return self._sample()

    def _sample(self) -> int:
        root = self._pid
        assert root is not None
        alive = {int(p) for p in os.listdir(self.proc) if p.isdigit()}
        for pid in [p for p in self._known if p not in alive]:
            del self._known[pid]
        members = self.members & alive
        new: dict[int, tuple[int, int]] = {}
        for pid in alive - self._known.keys():
            text = self._read(pid, "stat")
            if text:
                with contextlib.suppress(ValueError, IndexError):
                    new[pid] = parse_stat(text)
        members = tree_members(root, new, members)
        for pid in new:
            self._known[pid] = pid in members
        total = 0
        for pid in members:
            text = self._read(pid, "statm")
            if text:
                with contextlib.suppress(ValueError, IndexError):
                    total += statm_rss_bytes(text)
        with self._lock:
            self.members = members
            self.peak = max(self.peak, total)
            self.samples += 1
        return total

    def _monitor(self) -> None:
        while not self._closed.is_set():
            try:
                total = self.sample()
            except OSError:
                total = 0
            if total > self.limit:
                LOG.info(
                    "memory guard: environment of pid %s uses %d MB > %d MB: killing it",
                    self._pid,
                    to_mb(total),
                    self.limit_mb,
                )
                self._fire()
                return
            self._closed.wait(self.interval_s)

    def peak_mb(self) -> int | None:
        """The largest sum seen, with one more sample now (what the environment still holds
        at the end of an invoke counts even if it grew since the last tick)."""
        if self._pid is not None and not self._closed.is_set() and not self.exceeded.is_set():
            with contextlib.suppress(OSError):
                self.sample()
        with self._lock:
            return to_mb(self.peak) if self.samples else None

    def kill_all(self) -> None:
        with self._lock:
            members = set(self.members)
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signal.SIGKILL)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


# ---- choosing a mechanism -------------------------------------------------------------------


@dataclass
class MemoryLimiter:
    """Makes a guard per environment; chooses the mechanism once (see module doc)."""

    mode: str
    interval_s: float = DEFAULT_SAMPLE_MS / 1000
    cgroup_root: Path | None = None  # this limiter's folder of environment cgroups
    cgroup_version: int = 0
    reason: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> MemoryLimiter:
        environ = os.environ if environ is None else environ
        mode, interval = choose_mode(environ), sample_interval_s(environ)
        if mode == "off":
            return cls("off", interval, reason=f"{MODE_ENV}=off")
        if mode == "watchdog":
            return cls("watchdog", interval, reason=f"{MODE_ENV}=watchdog")
        try:
            version, root = cls._make_cgroup_root()
            return cls("cgroup", interval, root, version, reason=f"cgroup v{version} at {root}")
        except OSError as e:
            if mode == "cgroup":
                raise
            return cls("watchdog", interval, reason=f"no memory cgroup ({e})")

    @staticmethod
    def _make_cgroup_root() -> tuple[int, Path]:
        """Create ``<own memory cgroup>/media-ingest-lambda.<pid>`` and check that a child of
        it takes a memory limit; remove leftovers of LocalStacks that died without cleanup."""
        try:
            candidates = memory_cgroup_dirs(
                Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text()
            )
        except OSError as e:
            raise OSError(f"cannot read this process's cgroups: {e}") from e
        errors = []
        for version, own in candidates:
            root = own / f"{GROUP_PREFIX}{os.getpid()}"
            try:
                if version == 2 and "memory" not in _read_words(own / "cgroup.controllers"):
                    raise OSError("no memory controller in this cgroup v2 hierarchy")
                sweep_stale(own)
                root.mkdir(exist_ok=True)
                if version == 2:
                    _enable_v2_memory(own, root)
                probe = CgroupGuard(root / "probe", version, 128, None, 1.0)
                probe.close()
                return version, root
            except OSError as e:
                errors.append(f"v{version} {own}: {e}")
                with contextlib.suppress(OSError):
                    root.rmdir()
        raise OSError("; ".join(errors) or "no memory cgroup hierarchy mounted")

    def guard(
        self, name: str, limit_mb: int, on_exceeded: Callable[[], None] | None = None
    ) -> Guard:
        if self.mode == "cgroup":
            assert self.cgroup_root is not None
            path = self.cgroup_root / name
            try:
                return CgroupGuard(
                    path, self.cgroup_version, limit_mb, on_exceeded, self.interval_s
                )
            except OSError as e:  # e.g. the cgroup folder was removed under us
                LOG.warning("memory guard: no cgroup for %s (%s): using the watchdog", name, e)
        if self.mode in ("watchdog", "cgroup"):
            return WatchdogGuard(limit_mb, on_exceeded, self.interval_s)
        return Guard(limit_mb, on_exceeded)

    def close(self) -> None:
        """Remove this limiter's cgroup folder (its environments are stopped by then)."""
        if self.cgroup_root is not None:
            remove_tree(self.cgroup_root)


def _read_words(path: Path) -> list[str]:
    return path.read_text().split()


def _enable_v2_memory(own: Path, root: Path) -> None:
    """cgroup v2 gives a child the memory controller only if its parent delegates it
    (``cgroup.subtree_control``); a cgroup with processes in it cannot delegate (the
    "no internal processes" rule), so this works only where LocalStack's cgroup allows it."""
    for parent in (own, root):
        if "memory" not in _read_words(parent / "cgroup.subtree_control"):
            (parent / "cgroup.subtree_control").write_text("+memory")


def remove_tree(path: Path) -> None:
    """rmdir a cgroup folder bottom-up, killing what is left in it."""
    if not path.is_dir():
        return
    for child in [p for p in path.iterdir() if p.is_dir()]:
        remove_tree(child)
    with contextlib.suppress(OSError):
        for pid in (path / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                return
            time.sleep(0.02)


def sweep_stale(own: Path) -> None:
    """Remove environment cgroups of LocalStack processes that no longer exist."""
    with contextlib.suppress(OSError):
        for child in own.iterdir():
            pid = parse_stale_group(child.name)
            if pid is not None and pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                remove_tree(child)
