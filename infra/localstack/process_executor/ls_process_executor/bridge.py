"""One Lambda execution environment as a local process, plus the HTTP bridge in front of it.

The bridge is a small HTTP server on 127.0.0.1:<ephemeral port> serving two sides:

- LocalStack's executor protocol (what LocalStack's Go init serves inside a container):
  ``POST /invoke`` with ``{"invoke-id", "invoked-function-arn", "payload", "trace-id"}``;
  results go back to LocalStack at ``{runtime_endpoint}/invocations/{id}/logs``, then
  ``/response`` or ``/error``; readiness at ``{runtime_endpoint}/status/{executor_id}/ready``
  (or ``/error`` with the init error).
- the Lambda Runtime API (2018-06-01) for awslambdaric in the child process:
  ``GET /runtime/invocation/next``, ``POST /runtime/invocation/{id}/response|error``,
  ``POST /runtime/init/error``.

It also enforces the function timeout (kill the process group, answer ``Sandbox.Timedout``,
start a fresh process on the next invoke, as Lambda re-initialises a sandbox) and its
MemorySize (see ``memory.py``: the whole environment over the limit is killed, the invoke
answers ``Runtime.ExitError`` "signal: killed" with REPORT ``Error Type: Runtime.OutOfMemory``,
and the next invoke starts a fresh process), reports a runtime that exits mid-invoke as
``Runtime.ExitError`` (what it leaves running is killed with it), and collects the process's
stdout/stderr per invocation between START and END/REPORT lines, REPORT's ``Max Memory Used``
being the environment's peak.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from ls_process_executor import environment as lenv
from ls_process_executor.memory import Guard, MemoryLimiter

LOG = logging.getLogger(__name__)
API = "/2018-06-01/runtime"
MAX_KEPT_LOG_BYTES = 1 << 20
NO_PROXY = {"http": "", "https": ""}


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    function_arn: str
    trace_id: str | None
    client_context: str | None
    deadline: float  # epoch seconds
    started: float = field(default_factory=time.perf_counter)
    done: bool = False
    timed_out: bool = False
    timer: threading.Timer | None = None


@dataclass
class ProcessSpec:
    """What to run, where, and what LocalStack expects of it."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    tmp_dir: str
    timeout_s: float
    memory_mb: int
    version: str
    upstream: str  # LocalStack's runtime endpoint for this executor, without trailing slash
    executor_id: str
    limiter: MemoryLimiter | None = None  # None: MemorySize is not enforced


class _Output:
    """The merged stdout/stderr pipe of one child, read without losing the tail: the reader
    thread and ``drain()`` both read non-blockingly under one lock, so whatever the child
    wrote before it posted its response is in the buffer when the response is relayed."""

    def __init__(self, fd: int, sink: bytearray, lock: threading.RLock):
        self.fd, self.sink, self.lock, self.open = fd, sink, lock, True
        os.set_blocking(fd, False)
        threading.Thread(target=self._pump, name="lambda-output", daemon=True).start()

    def _read_available(self) -> None:
        while self.open:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.open = False
                os.close(self.fd)
                return
            self.sink.extend(chunk)

    def _pump(self) -> None:
        while self.open:
            try:
                select.select([self.fd], [], [], 1.0)
            except (OSError, ValueError):
                return
            with self.lock:
                self._read_available()

    def drain(self) -> None:
        with self.lock:
            self._read_available()


class RuntimeBridge:
    def __init__(self, spec: ProcessSpec):
        self.spec = spec
        self._lock = threading.RLock()
        self._queue: queue.Queue[Invocation | None] = queue.Queue()
        self._current: Invocation | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard: Guard | None = None  # memory of the current (or last) process generation
        self._generation = 0
        self._output: _Output | None = None
        self._watchdog_w: int | None = None
        self._buffer = bytearray()  # output since the last invocation ended
        self._history = bytearray()  # everything, for get_logs()
        self._status_sent = False  # ready/error reported to LocalStack
        self._stopping = False
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.port = self._server.server_address[1]

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(
            target=self._server.serve_forever, name=f"lambda-bridge-{self.port}", daemon=True
        ).start()
        with self._lock:
            self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._current and self._current.timer:
                self._current.timer.cancel()
            proc, guard = self._proc, self._guard
            if proc:
                self._forget(proc)
        self._kill(proc)
        if guard:
            guard.close()
        self._queue.put(None)
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self.spec.tmp_dir, ignore_errors=True)

    def logs(self) -> str:
        with self._lock:
            if self._output:
                self._output.drain()
            return (self._history + self._buffer).decode(errors="replace")

    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc else None

    def _new_guard(self) -> Guard:
        if self._guard:  # the previous generation is dead: free its cgroup
            self._guard.close()
        self._generation += 1
        limiter = self.spec.limiter or MemoryLimiter("off")
        name = f"{self.spec.executor_id}.{self._generation}"
        return limiter.guard(name, self.spec.memory_mb)

    def _spawn(self) -> None:
        guard = self._new_guard()
        out_r, out_w = os.pipe()
        wd_r, wd_w = os.pipe()
        env = dict(self.spec.env, _LS_EXECUTOR_WATCHDOG_FD=str(wd_r))
        try:
            proc = subprocess.Popen(
                guard.command(self.spec.argv),
                env=env,
                cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(wd_r,),
                start_new_session=True,  # own process group: a kill takes its children too
            )
        except BaseException:
            guard.close()
            raise
        finally:
            os.close(out_w)
            os.close(wd_r)
        if self._watchdog_w is not None:
            os.close(self._watchdog_w)
        self._proc, self._watchdog_w, self._guard = proc, wd_w, guard
        self._output = _Output(out_r, self._buffer, self._lock)
        guard.on_exceeded = lambda: self._runtime_died(proc, guard, -signal.SIGKILL, oom=True)
        guard.started(proc.pid)
        threading.Thread(
            target=self._watch, args=(proc, guard), name="lambda-proc", daemon=True
        ).start()
        LOG.debug(
            "executor %s: started pid %s (memory: %s)", self.spec.executor_id, proc.pid, guard.kind
        )

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes] | None) -> None:
        """Kill the process and its group (what it started), also once it has exited."""
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def _forget(self, proc: subprocess.Popen[bytes]) -> bool:
        """Drop ``proc`` as the current process; False if it was not (already replaced)."""
        with self._lock:
            if self._proc is not proc:
                return False
            self._proc = None
            if self._watchdog_w is not None:
                os.close(self._watchdog_w)
                self._watchdog_w = None
            return True

    def _watch(self, proc: subprocess.Popen[bytes], guard: Guard) -> None:
        """The process ended by itself: tell whoever waits for it (startup, or the invoke)."""
        code = proc.wait()
        if self._proc is not proc:
            return  # killed on purpose (timeout, stop, memory)
        # killed by the kernel's OOM killer (cgroup): the guard may notice a moment later
        oom = code == -signal.SIGKILL and guard.was_exceeded(wait_s=0.2)
        self._runtime_died(proc, guard, code, oom=oom)

    def _runtime_died(
        self, proc: subprocess.Popen[bytes], guard: Guard, code: int, *, oom: bool = False
    ) -> None:
        """The environment ends: the runtime exited, or its memory went over MemorySize (then
        the guard has killed it, or is about to). Whatever of it still runs is killed, as
        Lambda resets a sandbox whose runtime died; the next invoke starts a fresh one."""
        if not self._forget(proc):
            return  # already handled (timeout, stop, or the other of _watch / the guard)
        self._kill(proc)
        guard.kill_all()
        if oom:
            LOG.info(
                "executor %s: memory over %s MB, environment killed",
                self.spec.executor_id,
                self.spec.memory_mb,
            )
        with self._lock:
            if self._stopping:
                return
            if self._output:
                self._output.drain()
            current = self._current
            if not self._status_sent:
                self._status_sent = True
                self._post_status("error", lenv.runtime_exit_error(None, code))
                return
        if current and not current.timed_out:
            err = lenv.runtime_exit_error(current.request_id, code)
            self._finish(
                current,
                json.dumps(err).encode(),
                is_error=True,
                report_error=lenv.OUT_OF_MEMORY if oom else None,
            )

    # ---- LocalStack side ------------------------------------------------------------

    def accept_invoke(self, body: dict[str, Any]) -> None:
        context = body.get("client-context") or None
        if context:
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                context = base64.b64decode(context).decode()
        inv = Invocation(
            request_id=body["invoke-id"],
            payload=(body.get("payload") or "").encode(),
            function_arn=body.get("invoked-function-arn", ""),
            trace_id=body.get("trace-id"),
            client_context=context,
            deadline=time.time() + self.spec.timeout_s,
        )
        with self._lock:
            if self._output:
                self._output.drain()  # init output goes before START, as on AWS
            start = lenv.start_line(inv.request_id, self.spec.version)
            self._buffer.extend((start + "\n").encode())
            self._current = inv
            if self._proc is None:  # killed after a timeout (or it died): a fresh init
                self._spawn()
            inv.timer = threading.Timer(self.spec.timeout_s, self._on_timeout, args=(inv,))
            inv.timer.daemon = True
            inv.timer.start()
        self._queue.put(inv)

    def _on_timeout(self, inv: Invocation) -> None:
        with self._lock:
            if inv.done:
                return
            inv.timed_out = True
            proc, guard = self._proc, self._guard
            if proc:
                self._forget(proc)
        self._kill(proc)  # the sandbox is reset: the next invoke starts a fresh process
        if proc and guard:
            guard.kill_all()
        line = lenv.timeout_log_line(inv.request_id, self.spec.timeout_s)
        err = lenv.timeout_error(inv.request_id, self.spec.timeout_s)
        self._finish(inv, json.dumps(err).encode(), is_error=True, extra_log=line)

    def _finish(
        self,
        inv: Invocation,
        body: bytes,
        *,
        is_error: bool,
        extra_log: str | None = None,
        report_error: str | None = None,
    ) -> bool:
        with self._lock:
            if inv.done or self._stopping:
                return False
            inv.done = True
            if inv.timer:
                inv.timer.cancel()
            if self._current is inv:
                self._current = None
            used = self._guard.peak_mb() if self._guard else None
            if self._output:
                self._output.drain()
            if self._buffer and not self._buffer.endswith(b"\n"):
                self._buffer.extend(b"\n")
            if extra_log:
                self._buffer.extend((extra_log + "\n").encode())
            duration_ms = (time.perf_counter() - inv.started) * 1000
            self._buffer.extend(
                lenv.end_lines(
                    inv.request_id, duration_ms, self.spec.memory_mb, used, report_error
                ).encode()
                + b"\n"
            )
            logs = self._buffer.decode(errors="replace")
            self._history.extend(self._buffer)
            del self._history[:-MAX_KEPT_LOG_BYTES]
            self._buffer.clear()
        # logs first: LocalStack attaches the logs it holds when the result arrives
        self._post(f"/invocations/{inv.request_id}/logs", json.dumps({"logs": logs}).encode())
        self._post(f"/invocations/{inv.request_id}/{'error' if is_error else 'response'}", body)
        return True

    def _post_status(self, status: str, payload: dict[str, Any] | bytes | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        self._post(f"/status/{self.spec.executor_id}/{status}", data)

    def _post(self, path: str, data: bytes) -> None:
        try:
            requests.post(
                self.spec.upstream + path,
                data=data,
                headers={"Content-Type": "application/json"},
                proxies=NO_PROXY,
                timeout=30,
            )
        except requests.RequestException as e:
            LOG.warning(
                "executor %s: cannot reach LocalStack (%s): %s", self.spec.executor_id, path, e
            )

    # ---- Runtime API side -------------------------------------------------------------

    def next_invocation(self) -> Invocation | None:
        with self._lock:
            if not self._status_sent:  # init done: the runtime asks for work
                self._status_sent = True
                self._post_status("ready")
        while True:
            inv = self._queue.get()
            if inv is None or not inv.done:
                return inv

    def runtime_result(self, request_id: str, body: bytes, *, is_error: bool) -> bool:
        inv = self._current
        if inv is None or inv.request_id != request_id:
            return False
        proc, guard = self._proc, self._guard
        if proc and guard and guard.was_exceeded():
            # e.g. the kernel OOM-killed a child (ffprobe) and the handler carried on: on
            # Lambda the environment is over its memory, so this invoke fails and it restarts
            self._runtime_died(proc, guard, -signal.SIGKILL, oom=True)
            return True
        return self._finish(inv, body, is_error=is_error)

    def init_error(self, body: bytes) -> None:
        with self._lock:
            current = self._current
            if not self._status_sent:
                self._status_sent = True
                self._post_status("error", body)
                return
        if current:  # a re-init (after a timeout) failed: that is this invoke's error
            self._finish(current, body, is_error=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("bridge: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Both protocols on one port; ``bridge`` is set on a per-bridge subclass."""

    protocol_version = "HTTP/1.1"
    bridge: RuntimeBridge

    def log_message(self, format: str, *args: Any) -> None:  # access log -> debug
        LOG.debug("bridge %s: %s", self.bridge.port, format % args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        try:
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the process went away (killed, stopped)
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            return self._reply(HTTPStatus.NOT_FOUND)
        inv = self.bridge.next_invocation()
        if inv is None:  # shutting down
            self.close_connection = True
            return self._reply(HTTPStatus.GONE)
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(inv.deadline * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
        }
        if inv.trace_id:
            headers["Lambda-Runtime-Trace-Id"] = inv.trace_id
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        return self._reply(HTTPStatus.OK, inv.payload, headers)

    def do_POST(self) -> None:
        body = self._body()
        parts = self.path.split("/")
        if self.path == "/invoke":
            self.bridge.accept_invoke(json.loads(body))
            return self._reply(HTTPStatus.OK, b"OK")
        if self.path == f"{API}/init/error":
            self.bridge.init_error(body)
            return self._reply(HTTPStatus.ACCEPTED)
        if self.path.startswith(f"{API}/invocation/") and parts[-1] in ("response", "error"):
            ok = self.bridge.runtime_result(parts[-2], body, is_error=parts[-1] == "error")
            return self._reply(HTTPStatus.ACCEPTED if ok else HTTPStatus.BAD_REQUEST)
        return self._reply(HTTPStatus.NOT_FOUND)


def _handler_for(bridge: RuntimeBridge) -> type[BaseHTTPRequestHandler]:
    return type("BridgeHandler", (_Handler,), {"bridge": bridge})
