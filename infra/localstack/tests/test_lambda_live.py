"""Lambda functions on a running LocalStack with the `process` runtime executor."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ENDPOINT, invoke, make_zip

pytestmark = pytest.mark.localstack

PROBE = """
import importlib.util, json, os, subprocess, sys
import boto3
import layermod, override

def handler(event, context):
    if event.get("fail"):
        raise ValueError("boom: " + event["fail"])
    if event.get("sleep"):
        import time; time.sleep(event["sleep"])
    print("hello from the handler")
    return {
        "layer": layermod.VALUE,
        "override": override.WHO,
        "tool": subprocess.run(["layertool"], capture_output=True, text=True).stdout.strip(),
        "env": {k: os.environ.get(k) for k in (
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_TIMEOUT", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION",
            "AWS_ENDPOINT_URL", "AWS_EXECUTION_ENV", "MY_VAR", "_HANDLER")},
        "cwd": os.getcwd(),
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "leaks": [m for m in ("localstack", "ls_process_executor", "media_ingest", "pytest")
                  if importlib.util.find_spec(m)],
        "boto3": boto3.__version__,
        "account": boto3.client("sts").get_caller_identity()["Account"],
        "context": [context.function_name, context.memory_limit_in_mb,
                    0 < context.get_remaining_time_in_millis() <= 10_000],
        "pid": os.getpid(),
        "python": sys.version_info[:2],
    }
"""


@pytest.fixture(scope="module")
def layers(clients):
    lam = clients["lambda"]
    first = make_zip(
        {
            "python/layermod.py": "VALUE = 'from-layer'\n",
            "python/override.py": "WHO = 'first layer'\n",
            "bin/layertool": "#!/bin/sh\necho tool-ok\n",
        },
        executable=("bin/layertool",),
    )
    second = make_zip({"python/override.py": "WHO = 'second layer'\n"})
    arns = []
    for i, content in enumerate((first, second)):
        arns.append(
            lam.publish_layer_version(
                LayerName=f"harness-layer-{i}-{uuid.uuid4().hex[:6]}",
                Content={"ZipFile": content},
                CompatibleRuntimes=["python3.13"],
            )["LayerVersionArn"]
        )
    return arns


@pytest.fixture(scope="module")
def probe(clients, layers, role_arn):
    lam = clients["lambda"]
    name = f"probe-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": PROBE})},
        Timeout=10,
        MemorySize=256,
        Environment={"Variables": {"MY_VAR": "my value"}},
        Layers=layers,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    yield name
    lam.delete_function(FunctionName=name)


def test_invoke_runs_packaged_code_with_layers_and_env(clients, probe):
    out, error, logs, _ = invoke(clients["lambda"], probe, tail=True)
    assert error is None, out
    assert out["layer"] == "from-layer"
    assert out["override"] == "second layer"  # later layers overwrite earlier ones
    assert out["tool"] == "tool-ok"  # a layer's bin/ is on PATH
    assert out["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": probe,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "10",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "MY_VAR": "my value",
        "_HANDLER": "app.handler",
    }
    assert out["cwd"] == out["task_root"] and out["task_root"].endswith("/code")
    assert out["leaks"] == []
    assert out["boto3"] == "1.40.4"  # the runtime venv's, not LocalStack's
    assert out["account"] == "000000000000"  # an AWS call from the function reached LocalStack
    assert out["context"] == [probe, "256", True]  # a str, as awslambdaric gives it on AWS
    assert out["python"] == [3, 13]
    assert "hello from the handler" in logs
    assert "START RequestId:" in logs and "END RequestId:" in logs and "REPORT RequestId:" in logs


def test_handler_exception_is_returned_like_aws(clients, probe):
    out, error, logs, _ = invoke(clients["lambda"], probe, {"fail": "bad input"}, tail=True)
    assert error == "Unhandled"
    assert out["errorType"] == "ValueError"
    assert out["errorMessage"] == "boom: bad input"
    assert out["requestId"] and isinstance(out["stackTrace"], list) and out["stackTrace"]
    assert "[ERROR] ValueError: boom: bad input" in logs
    # the environment survives a handled error
    assert invoke(clients["lambda"], probe)[1] is None


def test_timeout_kills_the_handler_and_the_next_invoke_works(clients, make_function):
    source = (
        "import os, time\n"
        "def handler(event, context):\n"
        "    print('going to sleep', flush=True)\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return {'pid': os.getpid()}\n"
    )
    name = make_function({"app.py": source}, timeout=2)
    lam = clients["lambda"]
    first, _, _, _ = invoke(lam, name)
    out, error, logs, resp = invoke(lam, name, {"sleep": 30}, tail=True)
    assert error == "Unhandled"
    assert out["errorType"] == "Sandbox.Timedout"
    assert out["errorMessage"].endswith("Task timed out after 2.00 seconds")
    assert "going to sleep" in logs and "Task timed out after 2.00 seconds" in logs
    assert resp["elapsed"] < 10
    again, error, _, _ = invoke(lam, name)
    assert error is None
    assert again["pid"] != first["pid"]  # a fresh process: the killed sandbox is not reused


def test_init_error_is_reported(clients, make_function):
    name = make_function({"app.py": "import does_not_exist\ndef handler(e, c):\n    return 1\n"})
    out, error, _, _ = invoke(clients["lambda"], name)
    assert error == "Unhandled"
    assert out["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'does_not_exist'" in out["errorMessage"]


def test_concurrent_invocations_get_separate_processes(clients, make_function):
    source = "import os, time\ndef handler(e, c):\n    time.sleep(2)\n    return os.getpid()\n"
    name = make_function({"app.py": source})
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: invoke(clients["lambda"], name), range(3)))
    assert all(error is None for _, error, _, _ in results)
    assert len({pid for pid, _, _, _ in results}) == 3


def test_sqs_event_source_mapping_runs_the_function(clients, make_function):
    s3, sqs, lam = clients["s3"], clients["sqs"], clients["lambda"]
    bucket = f"esm-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"esm-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    source = (
        "import os, boto3\n"
        "def handler(event, context):\n"
        "    s3 = boto3.client('s3')\n"
        "    for r in event['Records']:\n"
        "        s3.put_object(Bucket=os.environ['BUCKET'], Key='seen/' + r['body'], Body=b'1')\n"
        "    return {'batchItemFailures': []}\n"
    )
    name = make_function({"app.py": source}, env={"BUCKET": bucket})
    esm = lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        BatchSize=5,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody="hello-esm")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
            if "seen/hello-esm" in keys:
                break
            time.sleep(1)
        else:
            pytest.fail("the function did not write seen/hello-esm within 60 s")
    finally:
        lam.delete_event_source_mapping(UUID=esm["UUID"])
    assert json.loads(json.dumps(keys)) == ["seen/hello-esm"]
