"""A deployed stack's description (CloudFormation) and its ingest function's configuration
(Lambda), as operator commands read them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media_ingest.adapters.clients import ClientSlot

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


class StackNotFound(LookupError):
    pass


class CloudFormationStacks:
    cfn: ClientSlot[CloudFormationClient] = ClientSlot("cloudformation")

    def __init__(self, client: CloudFormationClient | None = None) -> None:
        self.cfn = client

    def outputs(self, name: str) -> dict[str, str]:
        """The stack's outputs by name; StackNotFound when there is no such stack."""
        cfn = self.cfn  # made first: no region or credentials is not "stack not found"
        try:
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except Exception as exc:  # botocore raises ValidationError for an unknown stack
            raise StackNotFound(f"stack {name!r} not found: {exc}") from exc
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def parameters(self, name: str) -> dict[str, str]:
        """The stack's parameter values as deployed, by name."""
        stacks = self.cfn.describe_stacks(StackName=name)["Stacks"]
        return {
            p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])
        }


class LambdaFunctions:
    lam: ClientSlot[Any] = ClientSlot("lambda")

    def __init__(self, client: Any = None) -> None:
        self.lam = client

    def environment(self, function_name: str) -> dict[str, str]:
        """A function's environment variables as deployed, with AWS_REGION as Lambda sets it."""
        config = self.lam.get_function_configuration(FunctionName=function_name)
        env = dict(config.get("Environment", {}).get("Variables", {}))
        env["AWS_REGION"] = self.lam.meta.region_name
        return env
