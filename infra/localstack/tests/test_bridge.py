"""The bridge and a real function process, against a fake LocalStack (no LocalStack needed).

Uses the Lambda runtime venv made by install.sh (awslambdaric)."""

import json
import os
import queue
import textwrap
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import RUNTIME
from ls_process_executor import bootstrap
from ls_process_executor import environment as lenv
from ls_process_executor.bridge import ProcessSpec, RuntimeBridge
from ls_process_executor.memory import MODE_ENV, MemoryLimiter

pytestmark = pytest.mark.skipif(not (RUNTIME / "bin/python").exists(), reason="run install.sh")

APP = textwrap.dedent("""
    import os, subprocess, sys, time
    print("init output")

    def handler(event, context):
        print("handling", event.get("n"))
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("exit") is not None:
            sys.stdout.flush(); os._exit(event["exit"])
        if event.get("spawn"):
            return {"pid": os.getpid(), "child": subprocess.Popen(["sleep", "300"]).pid}
        if event.get("alloc"):
            held = bytearray(event["alloc"] << 20)  # zero-filled: every page is resident
            time.sleep(event.get("hold", 0))
            return {"pid": os.getpid(), "held": len(held)}
        if event.get("child_alloc"):
            code = "import time; b = bytearray(%d << 20); time.sleep(%s)" % (
                event["child_alloc"], event.get("child_hold", 0))
            rc = subprocess.run([sys.executable, "-c", code]).returncode
            hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
            return {"pid": os.getpid(), "child_rc": rc, "own_hwm_kb": int(hwm.split()[1])}
        return {"pid": os.getpid(), "n": event.get("n"), "rid": context.aws_request_id}
""")


class FakeLocalStack:
    """Records what the bridge posts to LocalStack's executor endpoint."""

    def __init__(self):
        self.posts: queue.Queue[tuple[str, bytes]] = queue.Queue()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                assert self.headers["Content-Type"] == "application/json"
                outer.posts.put((self.path, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/_localstack_lambda/ex1"

    def next(self, timeout=15) -> tuple[str, bytes]:
        return self.posts.get(timeout=timeout)


def start_bridge(tmp_path, *, limiter=None, timeout_s=1.5, memory_mb=128, timeout=15):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    upstream = FakeLocalStack()
    spec = ProcessSpec(
        argv=[str(RUNTIME / "bin/python"), "-P", bootstrap.__file__, "app.handler"],
        env={},
        cwd=str(code),
        tmp_dir=str(tmp_path / "tmp"),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        version="$LATEST",
        upstream=upstream.url,
        executor_id="ex1",
        limiter=limiter,
    )
    (tmp_path / "tmp").mkdir()
    bridge = RuntimeBridge(spec)
    spec.env = lenv.build_process_env(
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory_mb},
        runtime="python3.13",
        code_dir=str(code),
        opt_dir=str(tmp_path / "opt"),
        runtime_prefix=str(RUNTIME),
        runtime_api=f"127.0.0.1:{bridge.port}",
        tmp_dir=spec.tmp_dir,
    )
    bridge.start()
    assert upstream.next(timeout) == ("/_localstack_lambda/ex1/status/ex1/ready", b"{}")
    return bridge, upstream


@pytest.fixture
def env(tmp_path):
    bridge, upstream = start_bridge(tmp_path)
    yield bridge, upstream
    bridge.stop()


def send(bridge, rid, event):
    body = json.dumps(
        {
            "invoke-id": rid,
            "invoked-function-arn": "arn:fn",
            "payload": json.dumps(event),
            "trace-id": "Root=1-abc",
        }
    ).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{bridge.port}/invoke", data=body)
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def result(upstream, rid):
    """(kind, body, logs) of invocation rid: logs are posted before the result."""
    path, logs = upstream.next()
    assert path == f"/_localstack_lambda/ex1/invocations/{rid}/logs"
    path, body = upstream.next()
    kind = path.rsplit("/", 1)[1]
    assert path == f"/_localstack_lambda/ex1/invocations/{rid}/{kind}"
    return kind, json.loads(body), json.loads(logs)["logs"]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def wait_dead(pid, seconds=5):
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_invoke_response_and_logs(env):
    bridge, upstream = env
    send(bridge, "r1", {"n": 1})
    kind, body, logs = result(upstream, "r1")
    assert kind == "response" and body["n"] == 1 and body["rid"] == "r1"
    lines = logs.splitlines()
    assert lines[0] == "init output"  # init output precedes START, as on AWS
    assert lines[1] == "START RequestId: r1 Version: $LATEST"
    assert lines[2] == "handling 1"
    assert lines[3] == "END RequestId: r1" and lines[4].startswith("REPORT RequestId: r1\t")
    send(bridge, "r2", {"n": 2})
    kind, body2, logs = result(upstream, "r2")
    assert body2["pid"] == body["pid"]  # warm: same process
    assert logs.splitlines()[0] == "START RequestId: r2 Version: $LATEST"


def test_timeout_then_fresh_process(env):
    bridge, upstream = env
    send(bridge, "r1", {"n": 1})
    pid = result(upstream, "r1")[1]["pid"]
    t0 = time.monotonic()
    send(bridge, "r2", {"sleep": 30})
    kind, body, logs = result(upstream, "r2")
    assert 1.4 < time.monotonic() - t0 < 5
    assert kind == "error" and body == lenv.timeout_error("r2", 1.5)
    assert "Task timed out after 1.50 seconds" in logs and "END RequestId: r2" in logs
    assert wait_dead(pid)
    send(bridge, "r3", {"n": 3})
    kind, body, logs = result(upstream, "r3")
    assert kind == "response" and body["pid"] != pid


def test_runtime_exit_is_an_error_and_recovers(env):
    bridge, upstream = env
    send(bridge, "r1", {"exit": 3})
    kind, body, _ = result(upstream, "r1")
    assert kind == "error"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r1 Error: Runtime exited with error: exit status 3",
    }
    send(bridge, "r2", {"n": 2})
    assert result(upstream, "r2")[0] == "response"


def test_stop_kills_the_process_group(env):
    bridge, upstream = env
    send(bridge, "r1", {"spawn": True})
    body = result(upstream, "r1")[1]
    assert alive(body["pid"]) and alive(body["child"])
    bridge.stop()
    assert wait_dead(body["pid"]) and wait_dead(body["child"])


def test_watchdog_kills_the_function_when_localstack_dies(env):
    bridge, upstream = env
    send(bridge, "r1", {"spawn": True})
    body = result(upstream, "r1")[1]
    os.close(bridge._watchdog_w)  # what the kernel does when LocalStack exits
    bridge._watchdog_w = None
    assert wait_dead(body["pid"]) and wait_dead(body["child"])


# ---- MemorySize (memory.py): both mechanisms, a 128 MB function ----------------------------


def make_limiter(mode):
    try:
        return MemoryLimiter.from_environment({MODE_ENV: mode})
    except OSError as e:  # cgroup forced where none can be made
        pytest.skip(f"no memory cgroup here: {e}")


@pytest.fixture(params=["cgroup", "watchdog"])
def limited(request, tmp_path):
    limiter = make_limiter(request.param)
    bridge, upstream = start_bridge(tmp_path, limiter=limiter, timeout_s=30, memory_mb=128)
    yield bridge, upstream
    bridge.stop()
    limiter.close()


def report(logs):
    """The REPORT line's fields: {"Max Memory Used": "128 MB", "Error Type": ...}."""
    line = next(x for x in logs.splitlines() if x.startswith("REPORT RequestId: "))
    return dict(field.split(": ", 1) for field in line.split("\t"))


def used_mb(logs):
    return int(report(logs)["Max Memory Used"].removesuffix(" MB"))


def assert_out_of_memory(upstream, rid):
    kind, body, logs = result(upstream, rid)
    assert kind == "error"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
    }
    fields = report(logs)
    assert fields["Status"] == "error" and fields["Error Type"] == "Runtime.OutOfMemory"
    return logs


def test_memory_over_the_limit_kills_the_environment_and_the_next_invoke_works(limited):
    bridge, upstream = limited
    send(bridge, "r1", {"n": 1})
    pid = result(upstream, "r1")[1]["pid"]
    t0 = time.monotonic()
    send(bridge, "r2", {"alloc": 300})
    logs = assert_out_of_memory(upstream, "r2")
    assert time.monotonic() - t0 < 10
    assert used_mb(logs) >= 120  # the peak reached the limit (cgroup: exactly 128)
    assert wait_dead(pid)
    send(bridge, "r3", {"n": 3})
    kind, body, logs = result(upstream, "r3")
    assert kind == "response" and body["pid"] != pid  # a fresh environment
    assert "Status" not in report(logs) and used_mb(logs) < 100


def test_memory_under_the_limit_succeeds_and_reports_its_peak(limited):
    bridge, upstream = limited
    # held for 0.2 s: the watchdog samples every 10 ms and cannot see a shorter spike
    send(bridge, "r1", {"alloc": 50, "hold": 0.2})
    kind, body, logs = result(upstream, "r1")
    assert kind == "response" and body["held"] == 50 << 20
    assert 50 < used_mb(logs) < 128
    assert "Status" not in report(logs)
    send(bridge, "r2", {"n": 2})  # Max Memory Used is the environment's peak so far
    kind, body2, logs2 = result(upstream, "r2")
    assert body2["pid"] == body["pid"] and used_mb(logs2) >= used_mb(logs)


def test_a_child_process_over_the_limit_kills_the_environment(limited):
    bridge, upstream = limited
    send(bridge, "r1", {"child_alloc": 200, "child_hold": 5})
    assert_out_of_memory(upstream, "r1")
    send(bridge, "r2", {"n": 2})
    assert result(upstream, "r2")[0] == "response"


def test_the_peak_counts_child_processes(limited):
    bridge, upstream = limited
    send(bridge, "r1", {"child_alloc": 70, "child_hold": 0.5})
    kind, body, logs = result(upstream, "r1")
    assert kind == "response" and body["child_rc"] == 0
    own_mb = body["own_hwm_kb"] / 1024  # what a report of the function process alone says
    assert used_mb(logs) >= 70 > own_mb


def test_without_a_limiter_nothing_is_enforced(tmp_path):
    """What the limited tests guard against: the same 300 MB pass unseen with mode off."""
    bridge, upstream = start_bridge(tmp_path, limiter=make_limiter("off"), timeout_s=30)
    try:
        send(bridge, "r1", {"alloc": 300})
        kind, body, logs = result(upstream, "r1")
        assert kind == "response" and body["held"] == 300 << 20
        assert used_mb(logs) > 300  # the function process's own VmHWM
    finally:
        bridge.stop()
