"""LocalStack runtime executor ``process``: each Lambda execution environment is a local process.

For hosts without a Docker engine, where LocalStack runs in host mode. This module owns the
adaptation of LocalStack's ``RuntimeExecutor`` interface; ``bridge.py`` owns the process and
the two HTTP protocols; ``environment.py`` the layout the function sees; ``bootstrap.py`` the
child's entry point.

What a function gets (as in a python3.x Lambda sandbox):
- its unzipped code package as prepared by LocalStack (``/var/task``), as working directory
  and first on the import path, then its layers merged in order (``/opt``: ``python/`` on the
  import path, ``bin/`` on PATH, ``lib/`` on LD_LIBRARY_PATH), then the runtime venv
  (awslambdaric, boto3), and nothing of LocalStack's or the project's packages;
- LocalStack's environment for it (standard Lambda variables, role credentials,
  ``AWS_ENDPOINT_URL`` pointing at LocalStack) plus the function's own variables;
- the handler run by ``awslambdaric``, with the timeout enforced by the bridge;
- its MemorySize enforced on the whole environment (``memory.py``: a memory cgroup per
  environment where one can be made, else a watchdog sampling the process tree's RSS).

Only ``Zip`` functions with a ``python3.*`` runtime are supported; all run on the runtime
venv's interpreter (3.13). Configure with ``LAMBDA_PROCESS_RUNTIME_VENV`` (default: the
``runtime-venv`` folder beside LocalStack's venv) and ``LAMBDA_PROCESS_MEMORY_LIMIT``
(``auto``, ``cgroup``, ``watchdog``, ``off``; see ``memory.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from ls_process_executor import bootstrap
from ls_process_executor import environment as lenv
from ls_process_executor.bridge import ProcessSpec, RuntimeBridge
from ls_process_executor.memory import MemoryLimiter

LOG = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
_LIVE: weakref.WeakSet[RuntimeBridge] = weakref.WeakSet()
_LIMITER: dict[str, MemoryLimiter] = {}  # the one limiter of this LocalStack process
_LIMITER_LOCK = threading.Lock()


def memory_limiter() -> MemoryLimiter:
    """How MemorySize is enforced, chosen once per LocalStack process (and logged)."""
    with _LIMITER_LOCK:
        if not _LIMITER:
            limiter = _LIMITER["limiter"] = MemoryLimiter.from_environment()
            LOG.info(
                "process executor: MemorySize enforcement: %s (%s)", limiter.mode, limiter.reason
            )
        return _LIMITER["limiter"]


def runtime_prefix() -> Path:
    default = Path(sys.prefix).parent / "runtime-venv"
    return Path(os.environ.get("LAMBDA_PROCESS_RUNTIME_VENV") or default)


def work_dir() -> Path:
    return Path(tempfile.gettempdir()) / "lambda" / "process-executor"


def _layer_ids(function_version: FunctionVersion) -> list[str]:
    # A version ARN alone does not name content: a LocalStack started afresh numbers a
    # republished layer ":1" again, and a merged /opt kept from an earlier run under that ARN
    # would run the old code. The archive's SHA-256 makes the key name what is inside.
    return [
        f"{layer.layer_version_arn}@{layer.code.code_sha256}"
        for layer in function_version.config.layers
    ]


def _opt_dir(function_version: FunctionVersion) -> Path:
    """Merged /opt of the function's layers (shared by all versions with the same layers)."""
    layers = function_version.config.layers
    dest = work_dir() / "opt" / lenv.layers_key(_layer_ids(function_version))
    for layer in layers:
        layer.code.prepare_for_execution()
    layer_dirs = [Path(layer.code.get_unzipped_code_location()) for layer in layers]
    merged: Path = lenv.merge_layers(layer_dirs, dest)
    return merged


def _check_supported(function_version: FunctionVersion) -> None:
    cfg = function_version.config
    if cfg.package_type != PackageType.Zip or not (cfg.runtime or "").startswith("python3."):
        raise LambdaRuntimeException(
            f"process executor runs Zip functions with a python3.x runtime only, "
            f"not {cfg.package_type} / {cfg.runtime}"
        )


class ProcessRuntimeExecutor(RuntimeExecutor):  # type: ignore[misc]
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(self.id, container_address=LOOPBACK)
        self.bridge: RuntimeBridge | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        fv = self.function_version
        _check_supported(fv)
        self.executor_endpoint.start()
        code_dir = str(fv.config.code.get_unzipped_code_location())
        opt_dir = str(_opt_dir(fv))
        work_dir().mkdir(parents=True, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=f"env-{self.id[:12]}-", dir=work_dir())
        prefix = runtime_prefix()
        spec = ProcessSpec(
            argv=[str(prefix / "bin" / "python"), "-P", bootstrap.__file__, fv.config.handler],
            env={},
            cwd=code_dir,
            tmp_dir=tmp_dir,
            timeout_s=float(fv.config.timeout),
            memory_mb=int(fv.config.memory_size),
            version=fv.id.qualifier,
            upstream=self.get_runtime_endpoint(),
            executor_id=self.id,
            limiter=memory_limiter(),
        )
        self.bridge = RuntimeBridge(spec)
        spec.env = lenv.build_process_env(
            env_vars,
            runtime=fv.config.runtime,
            code_dir=code_dir,
            opt_dir=opt_dir,
            runtime_prefix=str(prefix),
            runtime_api=f"{LOOPBACK}:{self.bridge.port}",
            tmp_dir=tmp_dir,
        )
        self.executor_endpoint.container_port = self.bridge.port
        _LIVE.add(self.bridge)
        self.bridge.start()
        self.executor_endpoint.wait_for_startup()

    def stop(self) -> None:
        if self.bridge:
            self.bridge.stop()
            _LIVE.discard(self.bridge)
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # not started, or already unregistered
            LOG.debug("executor %s: endpoint shutdown: %s", self.id, e)

    def get_address(self) -> str:
        return LOOPBACK

    def get_endpoint_from_executor(self) -> str:
        host = config.GATEWAY_LISTEN[0].host
        return LOOPBACK if host in ("0.0.0.0", "::", "") else host

    def get_runtime_endpoint(self) -> str:
        return (
            f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"
            f"{self.executor_endpoint.get_endpoint_prefix()}"
        )

    def invoke(self, payload: dict[str, str]) -> Any:
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        return self.bridge.logs() if self.bridge else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        _check_supported(function_version)
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        _opt_dir(function_version)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # Code dirs belong to LocalStack; merged /opt dirs are shared by layer set and
        # removed with the work dir when LocalStack stops (see _cleanup_at_exit).
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        python = runtime_prefix() / "bin" / "python"
        if not python.is_file():
            LOG.warning("process executor: no Lambda runtime interpreter at %s", python)
            return False
        work_dir().mkdir(parents=True, exist_ok=True)
        memory_limiter()
        return True


@atexit.register
def _cleanup_at_exit() -> None:
    for bridge in list(_LIVE):
        with contextlib.suppress(Exception):
            bridge.stop()
    for limiter in _LIMITER.values():
        with contextlib.suppress(Exception):
            limiter.close()
    shutil.rmtree(work_dir(), ignore_errors=True)
