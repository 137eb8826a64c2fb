"""Unit tests of memory.py's pure parts and of both guards on fake /proc and cgroup folders
(no LocalStack, no real cgroup, no process killed)."""

import os
import time
from pathlib import Path

import pytest
from ls_process_executor import environment as lenv
from ls_process_executor import memory as mem

# This machine's layout: cgroup v1 controllers (memory among them) plus an empty cgroup2.
MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PROC_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/82bb
1:cpu:/
0::/
"""


def test_limit_and_rounding_are_in_mib():
    assert mem.limit_bytes(128) == 134_217_728
    assert mem.to_mb(128 << 20) == 128
    assert mem.to_mb((128 << 20) + 1) == 129  # REPORT rounds up
    assert mem.to_mb(None) is None


def test_mode_and_interval_from_the_environment():
    assert mem.choose_mode({}) == "auto"
    assert mem.choose_mode({mem.MODE_ENV: " Watchdog "}) == "watchdog"
    with pytest.raises(ValueError):
        mem.choose_mode({mem.MODE_ENV: "rlimit"})
    assert mem.sample_interval_s({}) == 0.01
    assert mem.sample_interval_s({mem.SAMPLE_ENV: "5"}) == 0.005
    with pytest.raises(ValueError):
        mem.sample_interval_s({mem.SAMPLE_ENV: "0"})


def test_proc_cgroup_and_mountinfo():
    assert mem.parse_proc_cgroup(PROC_CGROUP + "5:cpu,cpuacct:/x\n") == {
        "name=systemd": "/",
        "memory": "/process_api/82bb",
        "cpu": "/x",
        "cpuacct": "/x",
        "": "/",
    }
    mounts = mem.parse_mountinfo(MOUNTINFO)
    assert ("/sys/fs/cgroup/memory", "/", "cgroup", {"rw", "memory"}) in mounts
    assert ("/sys/fs/cgroup/unified", "/", "cgroup2", {"rw"}) in mounts
    assert all(fstype != "tmpfs" for _, _, fstype, _ in mounts)


def test_memory_cgroup_dirs_v2_first_then_v1():
    assert mem.memory_cgroup_dirs(MOUNTINFO, PROC_CGROUP) == [
        (2, Path("/sys/fs/cgroup/unified")),
        (1, Path("/sys/fs/cgroup/memory/process_api/82bb")),
    ]
    # a pure cgroup v2 host (systemd), and a mount whose root is a sub-folder (containers)
    v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    assert mem.memory_cgroup_dirs(v2, "0::/user.slice/session-1.scope\n") == [
        (2, Path("/sys/fs/cgroup/user.slice/session-1.scope"))
    ]
    sub = "30 23 0:26 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert mem.memory_cgroup_dirs(sub, "4:memory:/docker/abc/inner\n") == [
        (1, Path("/sys/fs/cgroup/memory/inner"))
    ]
    assert mem.memory_cgroup_dirs("", PROC_CGROUP) == []


def test_keyed_files():
    assert mem.parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")["oom_kill"] == 3
    events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n"
    assert mem.parse_keyed(events)["oom_kill"] == 1


def test_stat_with_spaces_and_parentheses_in_the_name():
    text = "4242 (evil ) name) S 4200 4242 4100 0 -1 4194560 1 0 0 0"
    assert mem.parse_stat(text) == (4200, 4100)
    assert mem.statm_rss_bytes("80942 34359 1687 5 0 32672 0") == 34359 * mem.PAGE_SIZE


def test_tree_members_session_descendants_and_strangers():
    procs = {
        100: (90, 100),  # the function process, leads its session
        101: (100, 100),  # its child
        102: (101, 102),  # a grandchild that called setsid: still a descendant
        103: (102, 102),  # below it
        104: (1, 100),  # an orphan (double fork) left in the session
        200: (1, 200),  # unrelated
        201: (90, 90),  # a sibling of the function (LocalStack's other child)
    }
    assert mem.tree_members(100, procs) == {100, 101, 102, 103, 104}
    assert mem.tree_members(100, {105: (103, 102)}, members={100, 103}) == {100, 103, 105}


def test_stale_group_names():
    assert mem.parse_stale_group("media-ingest-lambda.29447") == 29447
    assert mem.parse_stale_group("media-ingest-lambda.x") is None
    assert mem.parse_stale_group("other.1") is None


def test_report_line_of_an_out_of_memory_kill():
    text = lenv.end_lines("rid", 812.4, 128, 128, lenv.OUT_OF_MEMORY)
    assert text.splitlines()[1] == (
        "REPORT RequestId: rid\tDuration: 812.40 ms\tBilled Duration: 813 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\t"
        "Error Type: Runtime.OutOfMemory"
    )


# ---- guards on fake folders ------------------------------------------------------------


def fake_proc(root: Path, procs: dict[int, tuple[int, int, int]]) -> None:
    """{pid: (ppid, sid, resident pages)} as /proc/<pid>/stat and statm."""
    for pid, (ppid, sid, pages) in procs.items():
        d = root / str(pid)
        d.mkdir(exist_ok=True)
        (d / "stat").write_text(f"{pid} (py) S {ppid} {pid} {sid} 0 -1 0")
        (d / "statm").write_text(f"1000 {pages} 10 1 0 50 0")


def test_watchdog_sums_the_tree_and_keeps_the_peak(tmp_path):
    page = mem.PAGE_SIZE
    fake_proc(
        tmp_path,
        {100: (90, 100, 1000), 101: (100, 100, 500), 200: (1, 200, 99999), 90: (1, 90, 77)},
    )
    (tmp_path / "self").mkdir()  # non-numeric entries are ignored
    guard = mem.WatchdogGuard(10_000, None, interval_s=3600, proc_root=str(tmp_path))
    guard.started(100)
    try:
        deadline = time.monotonic() + 5
        while guard.samples == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert guard.sample() == 1500 * page
        assert guard.members == {100, 101}
        fake_proc(tmp_path, {102: (101, 102, 300)})  # a new grandchild in its own session
        assert guard.sample() == 1800 * page
        for name in ("stat", "statm"):
            (tmp_path / "101" / name).unlink()
        (tmp_path / "101").rmdir()  # the child exits: the sum drops, the peak stays
        assert guard.sample() == 1300 * page
        assert guard.members == {100, 102}
        assert guard.peak_mb() == mem.to_mb(1800 * page)
        assert not guard.was_exceeded()
    finally:
        guard.close()


@pytest.mark.parametrize(
    ("version", "limit_file", "events_file", "peak_file"),
    [
        (1, "memory.limit_in_bytes", "memory.oom_control", "memory.max_usage_in_bytes"),
        (2, "memory.max", "memory.events", "memory.peak"),
    ],
)
def test_cgroup_guard_files(tmp_path, version, limit_file, events_file, peak_file):
    path = tmp_path / "env.1"
    guard = mem.CgroupGuard(path, version, 128, None, interval_s=3600)
    assert (path / limit_file).read_text() == str(128 << 20)
    if version == 2:
        assert (path / "memory.oom.group").read_text() == "1"
        assert (path / "memory.swap.max").read_text() == "0"
    else:
        assert (path / "memory.memsw.limit_in_bytes").read_text() == str(128 << 20)
    argv = guard.command(["python", "-P", "bootstrap.py", "app.handler"])
    assert argv[:3] == ["/bin/sh", "-c", mem.CGROUP_EXEC]
    assert argv[3:] == [str(path / "cgroup.procs"), "python", "-P", "bootstrap.py", "app.handler"]
    (path / peak_file).write_text(f"{(100 << 20) + 5}\n")
    assert guard.peak_mb() == 101
    (path / events_file).write_text("oom 0\noom_kill 0\n")
    assert not guard.was_exceeded()
    (path / events_file).write_text("oom 1\noom_kill 1\n")  # the kernel killed one of it
    assert guard.was_exceeded()


def test_limiter_modes_without_cgroups():
    assert mem.MemoryLimiter.from_environment({mem.MODE_ENV: "off"}).mode == "off"
    limiter = mem.MemoryLimiter.from_environment({mem.MODE_ENV: "watchdog"})
    assert limiter.mode == "watchdog" and limiter.cgroup_root is None
    assert isinstance(limiter.guard("x.1", 128), mem.WatchdogGuard)
    assert type(mem.MemoryLimiter("off").guard("x.1", 128)) is mem.Guard


def test_off_guard_reports_the_process_own_high_water_mark():
    guard = mem.Guard(128)
    assert guard.peak_mb() is None
    guard.started(os.getpid())
    assert guard.peak_mb() > 5
