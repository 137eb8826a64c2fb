"""A deployed stack as the operator tools see it: its outputs, and its ingest function's
configuration (commands that must decide as the function does read it from there)."""

from __future__ import annotations

from pydantic import BaseModel

from media_ingest.ops.adapters.stack import CloudFormationStacks, LambdaFunctions, StackNotFound
from media_ingest.settings import Settings

__all__ = [
    "StackNotFound",
    "StackOutputs",
    "function_settings",
    "stack_outputs",
    "stack_parameters",
]


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
    IngestFunctionRoleArn: str | None = None
    SourceBuckets: str | None = None  # "none" when no bucket is attached
    SourceBucketsRuleName: str | None = None
    ReconcileFunctionName: str | None = None  # only with ReconcileSchedule set
    SinkQueueUrl: str | None = None  # stacks without the Label Studio sink have none
    SinkDeadLetterQueueUrl: str | None = None


def stack_outputs(name: str, stacks: CloudFormationStacks | None = None) -> StackOutputs:
    return StackOutputs.model_validate((stacks or CloudFormationStacks()).outputs(name))


def stack_parameters(name: str, stacks: CloudFormationStacks | None = None) -> dict[str, str]:
    """The parameters the stack was deployed with (SourceKmsKeyArns, SourceAccounts, ...)."""
    return (stacks or CloudFormationStacks()).parameters(name)


def function_settings(outputs: StackOutputs, functions: LambdaFunctions | None = None) -> Settings:
    """The ingest function's configuration as deployed (routes, ignore rules, URL style)."""
    if not outputs.IngestFunctionName:
        raise StackNotFound("the stack has no IngestFunctionName output")
    env = (functions or LambdaFunctions()).environment(outputs.IngestFunctionName)
    return Settings.model_validate(env)
