"""Entry point of a function process (runs under the Lambda runtime venv, not LocalStack's).

Started as ``<runtime python> -P bootstrap.py <handler>``: ``-P`` keeps this file's folder
off ``sys.path``, so the function imports only its code, its layers and the runtime venv.
Only the standard library and awslambdaric are used here.

Before handing over to awslambdaric (AWS's runtime interface client), it starts a watchdog:
the executor holds the write end of a pipe whose read end is ``_LS_EXECUTOR_WATCHDOG_FD``;
when that pipe closes (LocalStack exited, even by SIGKILL), the whole process group of the
function (the function and anything it started) is killed, so no process outlives LocalStack.
"""

import os
import signal
import sys
import threading

WATCHDOG_ENV = "_LS_EXECUTOR_WATCHDOG_FD"


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    os.killpg(os.getpgid(0), signal.SIGKILL)


def main() -> None:
    fd = os.environ.pop(WATCHDOG_ENV, None)
    if fd is not None:
        threading.Thread(target=_watch, args=(int(fd),), name="ls-watchdog", daemon=True).start()
    from awslambdaric.__main__ import main as ric_main  # noqa: PLC0415 (after the watchdog)

    ric_main([sys.argv[0], *sys.argv[1:]])


if __name__ == "__main__":
    main()
