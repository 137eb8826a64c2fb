"""Pure helpers: what a Lambda execution environment looks like to the function process.

No LocalStack imports here, so this module is unit-testable on its own. It owns:
- the merged ``/opt`` of a function's layers (Lambda extracts layers into /opt in order,
  a later layer overwriting an earlier one's files);
- the process environment (import path, PATH, standard Lambda variables);
- the texts Lambda produces itself: START/END/REPORT log lines, the timeout error and
  the runtime-exit error (also what an out-of-memory kill answers).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

# Variables that Lambda sets and a function configuration cannot override.
RESERVED = ("LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV")
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def python_version_tag(runtime: str) -> str:
    """``python3.13`` -> ``python3.13`` (the name of the lib/ folder layers use)."""
    if not runtime.startswith("python3."):
        raise ValueError(f"not a Python runtime: {runtime!r}")
    return runtime


def python_path(code_dir: str, opt_dir: str, runtime: str) -> list[str]:
    """Import path of a Python function, in Lambda's order: its code (/var/task), then the
    layers (/opt/python/lib/pythonX.Y/site-packages, /opt/python). The runtime's own packages
    (awslambdaric, boto3) come after these, from the runtime interpreter's site-packages."""
    tag = python_version_tag(runtime)
    return [code_dir, f"{opt_dir}/python/lib/{tag}/site-packages", f"{opt_dir}/python"]


def exec_path(opt_dir: str, runtime_bin: str) -> list[str]:
    """PATH: the runtime's bin (Lambda's /var/lang/bin), then the layers' bin, then the system.

    On AWS /opt/bin comes last; here it precedes the system folders, because this host has
    tools (ffprobe, ...) that Lambda's base image lacks and that would otherwise shadow the
    layer's copy, so the function would not run what it runs on AWS."""
    return [runtime_bin, f"{opt_dir}/bin", *SYSTEM_PATH]


def build_process_env(
    localstack_env: Mapping[str, object],
    *,
    runtime: str,
    code_dir: str,
    opt_dir: str,
    runtime_prefix: str,
    runtime_api: str,
    tmp_dir: str,
) -> dict[str, str]:
    """Environment of the function process, built from scratch (nothing of LocalStack's own
    process environment leaks in).

    ``localstack_env`` is what LocalStack computed for the environment (standard Lambda
    variables, credentials, AWS_ENDPOINT_URL, and the function's own variables last)."""
    tag = python_version_tag(runtime)
    env: dict[str, str] = {
        # Lambda's unreserved defaults: a function configuration may override these.
        "PATH": os.pathsep.join(exec_path(opt_dir, f"{runtime_prefix}/bin")),
        "PYTHONPATH": os.pathsep.join(python_path(code_dir, opt_dir, runtime)),
        "LD_LIBRARY_PATH": os.pathsep.join([code_dir, f"{code_dir}/lib", f"{opt_dir}/lib"]),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONNOUSERSITE": "1",
        # Per-environment scratch space (Lambda's /tmp) and a HOME without the host's ~/.aws.
        "TMPDIR": tmp_dir,
        "HOME": tmp_dir,
    }
    env.update({k: str(v) for k, v in localstack_env.items() if v is not None})
    env.update(
        {
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": f"{runtime_prefix}/lib/{tag}/site-packages",
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        }
    )
    return env


# ---- layers ---------------------------------------------------------------------------


def layers_key(layer_ids: Iterable[str]) -> str:
    """Stable name for the merged /opt of an ordered list of layer versions, each identified
    by its ARN and the SHA-256 of its archive."""
    return hashlib.sha256("\n".join(layer_ids).encode()).hexdigest()[:20]


def merge_layers(layer_dirs: Iterable[Path], dest: Path) -> Path:
    """Build ``dest`` as Lambda's /opt: each layer's contents copied in order, later layers
    overwriting earlier files. Atomic (built aside, then renamed); reuses an existing ``dest``."""
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".opt-", dir=dest.parent))
    try:
        for layer_dir in layer_dirs:
            shutil.copytree(layer_dir, staging, symlinks=True, dirs_exist_ok=True)
        staging.chmod(0o755)
        try:
            staging.rename(dest)
        except OSError:  # built concurrently by another environment: keep theirs
            if not dest.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return dest


# ---- texts Lambda writes itself --------------------------------------------------------


def timeout_error(request_id: str, timeout_s: float) -> dict[str, str]:
    """Invoke response payload of a timed-out invocation, as AWS returns it."""
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": (
            f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
        ),
    }


def timeout_log_line(request_id: str, timeout_s: float, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"


def exit_reason(returncode: int) -> str:
    """How Lambda words a runtime exit: ``exit status 1`` or ``signal: killed``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return "signal: " + {"SIGKILL": "killed", "SIGSEGV": "segmentation fault"}.get(
            name, name.removeprefix("SIG").lower()
        )
    return f"exit status {returncode}"


def runtime_exit_error(request_id: str | None, returncode: int) -> dict[str, str]:
    reason = f"Runtime exited with error: {exit_reason(returncode)}"
    message = f"RequestId: {request_id} Error: {reason}" if request_id else reason
    return {"errorType": "Runtime.ExitError", "errorMessage": message}


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


# REPORT's error type when the environment went over MemorySize (the invoke's own error is
# still Runtime.ExitError "signal: killed", as AWS answers it).
OUT_OF_MEMORY = "Runtime.OutOfMemory"


def end_lines(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_used_mb: int | None,
    error_type: str | None = None,
) -> str:
    """END and REPORT lines. ``error_type`` adds Lambda's ``Status: error  Error Type: ...``."""
    used = max_used_mb if max_used_mb is not None else memory_mb
    status = f"\tStatus: error\tError Type: {error_type}" if error_type else ""
    return (
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {used} MB{status}"
    )
