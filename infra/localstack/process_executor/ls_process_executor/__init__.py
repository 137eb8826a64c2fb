"""LocalStack Lambda runtime executor ``process``: one local process per execution environment.

Select it with ``LAMBDA_RUNTIME_EXECUTOR=process``. See ``executor.py`` for the design.
"""
