"""Measure how the process executor's MemorySize guards behave on this machine (README.md,
"MemorySize"): detection latency and overshoot of the watchdog, the cgroup's peak, the
baseline a Python runtime reports, and the watchdog's CPU cost.

    <LocalStack venv>/bin/python infra/localstack/measure_memory.py [runs]   (as root for cgroup)
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "process_executor"))
from ls_process_executor.memory import MODE_ENV, SAMPLE_ENV, MemoryLimiter

LIMIT_MB = 128
# Grows by `step` MB (zero-filled, so resident) every `pause` s; prints the monotonic time at
# which its own RSS first passed the limit.
GROW = f"""
import os, sys, time
step, pause = int(sys.argv[1]), float(sys.argv[2])
page, limit, held, crossed = os.sysconf("SC_PAGE_SIZE"), {LIMIT_MB} << 20, [], False
while True:
    held.append(bytearray(step << 20))
    if not crossed and int(open("/proc/self/statm").read().split()[1]) * page > limit:
        crossed = True
        print(time.monotonic(), flush=True)
    if pause:
        time.sleep(pause)
"""


def limiter(mode, interval_ms=10):
    return MemoryLimiter.from_environment({MODE_ENV: mode, SAMPLE_ENV: str(interval_ms)})


def over_limit(mode, step, pause, interval_ms, runs):
    lim = limiter(mode, interval_ms)
    latencies, peaks = [], []
    for i in range(runs):
        fired = {}
        guard = lim.guard(f"m{i}", LIMIT_MB, lambda f=fired: f.setdefault("t", time.monotonic()))
        argv = guard.command([sys.executable, "-c", GROW, str(step), str(pause)])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
        guard.started(proc.pid)
        line = proc.stdout.readline()
        proc.wait()
        dead = time.monotonic()
        guard.was_exceeded(0.5)
        if line.strip():
            latencies.append((fired.get("t", dead) - float(line)) * 1000)
        peaks.append(guard.peak_mb())
        guard.close()
    lim.close()
    lat = (
        "killed by the kernel at the cgroup's limit (its RSS-based crossing time is no latency:"
        " RSS counts shared library pages the cgroup does not charge)"
        if mode == "cgroup"
        else f"latency median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms "
        f"({len(latencies)} runs saw their crossing)"
        if latencies
        else "latency n/a (killed inside its one allocation)"
    )
    print(
        f"{mode:8} {interval_ms:>2} ms, {step:>3} MB every {pause * 1000:.0f} ms: {lat}; "
        f"peak {min(peaks)}-{max(peaks)} MB (median {statistics.median(peaks)})"
    )


def baseline(mode, runtime_python):
    lim = limiter(mode)
    guard = lim.guard("base", LIMIT_MB)
    code = "import time, awslambdaric.bootstrap, boto3; boto3.client('s3'); time.sleep(0.5)"
    proc = subprocess.Popen(guard.command([runtime_python, "-c", code]), start_new_session=True)
    guard.started(proc.pid)
    proc.wait()
    print(f"{mode:8} baseline of the runtime (awslambdaric, boto3 client): {guard.peak_mb()} MB")
    guard.close()
    lim.close()


def cost(interval_ms, seconds=5):
    lim = limiter("watchdog", interval_ms)
    guard = lim.guard("cost", LIMIT_MB)
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    guard.started(proc.pid)
    t0 = os.times()
    time.sleep(seconds)
    t1 = os.times()
    cpu = (t1.user + t1.system - t0.user - t0.system) / seconds * 100
    procs = sum(p.isdigit() for p in os.listdir("/proc"))
    print(f"watchdog {interval_ms:>2} ms: CPU {cpu:.1f}% of one core ({procs} processes)")
    guard.close()
    proc.kill()
    proc.wait()


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    runtime = str(Path(sys.prefix).parent / "runtime-venv" / "bin" / "python")
    cgroup = limiter("auto").mode == "cgroup"
    for interval in (10, 5):
        over_limit("watchdog", 1, 0.002, interval, runs)
        over_limit("watchdog", 16, 0, interval, runs)
        over_limit("watchdog", 300, 0, interval, runs)
    if cgroup:
        over_limit("cgroup", 1, 0.002, 10, runs)
        over_limit("cgroup", 300, 0, 10, runs)
    if Path(runtime).exists():
        for mode in ("cgroup", "watchdog") if cgroup else ("watchdog",):
            baseline(mode, runtime)
    for interval in (10, 5, 2):
        cost(interval)
