"""A deployed stack as the operator tools see it: its outputs, read from CloudFormation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from media_ingest.adapters.clients import client as default_client
from media_ingest.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


class StackNotFound(LookupError):
    pass


class StackOutputs(BaseModel):
    """template.yaml's Outputs, by name."""

    DropBucketName: str
    RegistryTableName: str
    ManifestBucketName: str
    ManifestPrefix: str
    IngestQueueUrl: str
    DeadLetterQueueUrl: str
    FailureQueueUrl: str
    IngestFunctionName: str | None = None
    ExtractQueueUrl: str | None = None
    ExtractDeadLetterQueueUrl: str | None = None
    GroupTableName: str | None = None  # stacks deployed before grouping have none


def stack_outputs(name: str, client: CloudFormationClient | None = None) -> StackOutputs:
    cfn = client or default_client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except Exception as exc:  # botocore raises ValidationError for an unknown stack
        raise StackNotFound(f"stack {name!r} not found: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackOutputs.model_validate(outputs)


def function_settings(outputs: StackOutputs, client: Any = None) -> Settings:
    """The ingest function's configuration as deployed (routes, ignore rules, URL style).

    Operator commands that must decide as the function does (backfill) read it from there.
    """
    if not outputs.IngestFunctionName:
        raise StackNotFound("the stack has no IngestFunctionName output")
    lam = client or default_client("lambda")
    config = lam.get_function_configuration(FunctionName=outputs.IngestFunctionName)
    env = dict(config.get("Environment", {}).get("Variables", {}))
    env["AWS_REGION"] = lam.meta.region_name
    return Settings.model_validate(env)
