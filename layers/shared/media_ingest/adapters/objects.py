"""The drop bucket, read side: range reads and presigned URLs for the prober, heads for redrive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from ..aws import ClientSlot, error_code
from ..errors import ErrorCode, MediaError
from ..events import ObjectEvent
from ..observability import metrics

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GONE = {"NoSuchKey", "404", "NoSuchVersion"}
_CHANGED = {"PreconditionFailed", "412"}


class S3Objects:
    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, presign_seconds: int = 300, client: S3Client | None = None) -> None:
        self.s3 = client
        self.presign_seconds = presign_seconds

    def read_range(self, event: ObjectEvent, length: int) -> bytes:
        """First bytes of exactly the version the event announced (If-Match on its ETag)."""
        return self.read_first(event, length)[0]

    def read_first(self, event: ObjectEvent, length: int) -> tuple[bytes, dict[str, str]]:
        """First bytes and the user metadata of the version the event announced (one GET)."""
        params: dict[str, Any] = {
            "Bucket": event.bucket, "Key": event.key, "Range": f"bytes=0-{max(length, 1) - 1}",
        }  # fmt: skip
        if event.version_id:
            params["VersionId"] = event.version_id
        elif event.etag:
            params["IfMatch"] = event.etag
        try:
            response = self.s3.get_object(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code in _GONE:
                raise MediaError(
                    ErrorCode.OBJECT_NOT_FOUND, "object was deleted before it was probed"
                ) from exc
            if code in _CHANGED:
                raise MediaError(
                    ErrorCode.OBJECT_CHANGED,
                    "object was overwritten before it was probed; its newer event registers it",
                ) from exc
            if code == "InvalidRange":
                return b"", {}
            raise
        data = bytes(response["Body"].read())
        metrics.add_metric(name="RangeBytesRead", unit=MetricUnit.Bytes, value=len(data))
        return data, dict(response.get("Metadata", {}))

    def head(self, bucket: str, key: str) -> tuple[int, str] | None:
        """(size, ETag) of the current version; None when the object is gone."""
        try:
            found = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return None
            raise
        return int(found["ContentLength"]), str(found["ETag"]).strip('"')

    def presign(self, event: ObjectEvent) -> str:
        params: dict[str, Any] = {"Bucket": event.bucket, "Key": event.key}
        if event.version_id:
            params["VersionId"] = event.version_id
        return str(
            self.s3.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.presign_seconds
            )
        )
