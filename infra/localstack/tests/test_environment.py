"""Unit tests of the pure parts of the process executor (no LocalStack needed)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from ls_process_executor import environment as lenv


def test_python_path_is_code_then_layers():
    assert lenv.python_path("/c", "/o", "python3.13") == [
        "/c",
        "/o/python/lib/python3.13/site-packages",
        "/o/python",
    ]
    with pytest.raises(ValueError):
        lenv.python_path("/c", "/o", "nodejs22.x")


def test_process_env_layers_reserved_and_user_variables():
    ls_env = {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": 512,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": 3,
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_EXECUTION_ENV": "AWS_Lambda_rapid",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "LD_LIBRARY_PATH": "/custom",
        "NONE": None,
    }
    env = lenv.build_process_env(
        ls_env,
        runtime="python3.13",
        code_dir="/c",
        opt_dir="/o",
        runtime_prefix="/rt",
        runtime_api="127.0.0.1:9",
        tmp_dir="/t",
    )
    assert env["PYTHONPATH"] == "/c:/o/python/lib/python3.13/site-packages:/o/python"
    assert env["PATH"].split(":")[:2] == ["/rt/bin", "/o/bin"]
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"  # all values are strings
    assert env["LAMBDA_TASK_ROOT"] == "/c"  # reserved: the real code dir, not /var/task
    assert env["LAMBDA_RUNTIME_DIR"] == "/rt/lib/python3.13/site-packages"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9"
    assert env["LD_LIBRARY_PATH"] == "/custom"  # unreserved: the function's own value wins
    assert env["TMPDIR"] == env["HOME"] == "/t"
    assert "NONE" not in env


def test_process_env_does_not_inherit_the_parent_environment(monkeypatch):
    monkeypatch.setenv("LOCALSTACK_SECRET_THING", "x")
    env = lenv.build_process_env(
        {},
        runtime="python3.13",
        code_dir="/c",
        opt_dir="/o",
        runtime_prefix="/rt",
        runtime_api="a:1",
        tmp_dir="/t",
    )
    assert "LOCALSTACK_SECRET_THING" not in env


def test_merge_layers_in_order(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "python").mkdir(parents=True)
    (b / "python").mkdir(parents=True)
    (a / "python" / "m.py").write_text("A")
    (a / "python" / "only_a.py").write_text("A")
    (b / "python" / "m.py").write_text("B")
    dest = lenv.merge_layers([a, b], tmp_path / "opt" / lenv.layers_key(["x", "y"]))
    assert (dest / "python" / "m.py").read_text() == "B"
    assert (dest / "python" / "only_a.py").read_text() == "A"
    assert lenv.merge_layers([a], dest) == dest  # reused, not rebuilt
    assert (dest / "python" / "m.py").read_text() == "B"
    assert lenv.merge_layers([], tmp_path / "empty").is_dir()


def test_layers_key_depends_on_order():
    assert lenv.layers_key(["a", "b"]) != lenv.layers_key(["b", "a"])


def test_timeout_texts_match_aws():
    assert lenv.timeout_error("rid", 2) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: rid Error: Task timed out after 2.00 seconds",
    }
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert lenv.timeout_log_line("rid", 2.5, when) == (
        "2026-01-02T03:04:05.678Z rid Task timed out after 2.50 seconds"
    )


def test_runtime_exit_error():
    assert lenv.runtime_exit_error("rid", 3) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: rid Error: Runtime exited with error: exit status 3",
    }
    assert lenv.runtime_exit_error(None, -9)["errorMessage"] == (
        "Runtime exited with error: signal: killed"
    )


def test_report_lines():
    text = lenv.end_lines("rid", 12.3456, 128, 40)
    assert text.splitlines()[0] == "END RequestId: rid"
    assert text.splitlines()[1] == (
        "REPORT RequestId: rid\tDuration: 12.35 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB"
    )
    assert lenv.start_line("rid", "$LATEST") == "START RequestId: rid Version: $LATEST"
