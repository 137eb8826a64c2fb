"""plux plugin registering the ``process`` runtime executor (entry point group
``localstack.lambda.runtime_executor``). Loads the executor lazily, like the ``docker`` one."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "process"

    def load(self, *args, **kwargs):
        from ls_process_executor.executor import ProcessRuntimeExecutor  # noqa: PLC0415

        return ProcessRuntimeExecutor
