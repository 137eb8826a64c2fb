"""Secrets Manager: the one way a function gets a credential (today the Label Studio sink's
URL and personal access token). Read when first needed and again on request (after the
platform refused it: the secret may have been rotated); never logged, never in an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, SecretStr, ValidationError

from media_ingest.adapters.clients import ClientSlot

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class LabelStudioCredentials(BaseModel):
    """The secret's JSON: `{"url": "https://label-studio.example.com", "api_key": "<PAT>"}`.
    `api_key` is a personal access token (Label Studio 1.23 refuses legacy tokens by
    default); label-studio-sdk exchanges it for short-lived access tokens itself."""

    url: str
    api_key: SecretStr


class SecretError(ValueError):
    """The secret exists but does not hold what it must (its value is never repeated)."""


class LabelStudioSecret:
    sm: ClientSlot[SecretsManagerClient] = ClientSlot("secretsmanager")

    def __init__(self, secret_id: str, client: SecretsManagerClient | None = None) -> None:
        self.secret_id = secret_id
        self.sm = client

    def read(self) -> LabelStudioCredentials:
        value = self.sm.get_secret_value(SecretId=self.secret_id)["SecretString"]
        try:
            return LabelStudioCredentials.model_validate_json(value)
        except ValidationError as exc:
            fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
            raise SecretError(
                f"secret {self.secret_id} must be JSON with url and api_key "
                f"(problem with: {', '.join(fields) or 'the JSON itself'})"
            ) from None
