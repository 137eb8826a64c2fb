"""plux plugin registering the ``process`` runtime executor (entry point group
``localstack.lambda.runtime_executor``). Loads the executor lazily, like the ``docker`` one."""

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):  # type: ignore[misc]
    name = "process"

    def load(self, *args: Any, **kwargs: Any) -> Any:
        from ls_process_executor.executor import ProcessRuntimeExecutor  # noqa: PLC0415

        return ProcessRuntimeExecutor
