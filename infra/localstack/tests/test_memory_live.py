"""MemorySize on a running LocalStack with the `process` runtime executor (see memory.py).

A 128 MB function: over the limit the environment is killed with Lambda's own error and
REPORT line, under it the invoke succeeds, a child process's memory counts, and the function
serves the next invoke from a fresh environment."""

import pytest
from conftest import invoke

pytestmark = pytest.mark.localstack

HOG = """
import os, subprocess, sys, time

def handler(event, context):
    if event.get("alloc"):
        held = bytearray(event["alloc"] << 20)  # zero-filled: every page is resident
        print("allocated", len(held) >> 20, "MB", flush=True)
        time.sleep(0.2)  # longer than a watchdog sample interval (the fallback's)
    if event.get("child_alloc"):
        code = "import time; b = bytearray(%d << 20); time.sleep(3)" % event["child_alloc"]
        print("child exited", subprocess.run([sys.executable, "-c", code]).returncode)
    return {"pid": os.getpid()}
"""


def report(logs):
    line = next(x for x in logs.splitlines() if x.startswith("REPORT RequestId: "))
    return dict(field.split(": ", 1) for field in line.strip().split("\t"))


def used_mb(logs):
    return int(report(logs)["Max Memory Used"].removesuffix(" MB"))


@pytest.fixture
def hog(make_function):
    return make_function({"app.py": HOG}, memory=128, timeout=30)


def assert_killed_for_memory(out, error, logs, resp):
    assert error == "Unhandled", out
    assert out["errorType"] == "Runtime.ExitError"
    assert out["errorMessage"].startswith("RequestId: ")
    assert out["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    fields = report(logs)
    assert fields["Memory Size"] == "128 MB"
    assert fields["Status"] == "error" and fields["Error Type"] == "Runtime.OutOfMemory"
    assert used_mb(logs) >= 120  # the peak is at (cgroup) or just over (watchdog) the limit
    assert resp["elapsed"] < 20


def test_over_memory_size_is_killed_like_lambda_and_the_next_invoke_works(clients, hog):
    lam = clients["lambda"]
    first, error, _, _ = invoke(lam, hog)
    assert error is None
    out, error, logs, resp = invoke(lam, hog, {"alloc": 300}, tail=True)
    assert_killed_for_memory(out, error, logs, resp)
    assert "allocated" not in logs
    again, error, logs, _ = invoke(lam, hog, tail=True)
    assert error is None, again
    assert again["pid"] != first["pid"]  # a fresh environment, as Lambda restarts it
    assert "Status" not in report(logs)


def test_under_memory_size_succeeds_and_reports_the_peak(clients, hog):
    out, error, logs, _ = invoke(clients["lambda"], hog, {"alloc": 50}, tail=True)
    assert error is None, out
    assert "allocated 50 MB" in logs
    assert 50 < used_mb(logs) < 128
    assert "Status" not in report(logs)


def test_a_child_process_counts_toward_memory_size(clients, hog):
    lam = clients["lambda"]
    out, error, logs, resp = invoke(lam, hog, {"child_alloc": 200}, tail=True)
    assert_killed_for_memory(out, error, logs, resp)
    assert invoke(lam, hog)[1] is None


def test_the_peak_includes_a_child_process(clients, hog):
    out, error, logs, _ = invoke(clients["lambda"], hog, {"child_alloc": 70}, tail=True)
    assert error is None, out
    assert "child exited 0" in logs
    assert used_mb(logs) >= 70
