"""The drop bucket, read side: range reads and presigned URLs for the prober, heads for redrive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import ObjectEvent
from media_ingest.observability import metrics
from media_ingest.probing.prober import Head

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

_GONE = {"NoSuchKey", "404", "NoSuchVersion"}
_CHANGED = {"PreconditionFailed", "412"}


class S3Objects:
    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, presign_seconds: int = 300, client: S3Client | None = None) -> None:
        self.s3 = client
        self.presign_seconds = presign_seconds

    def read_range(self, event: ObjectEvent, length: int) -> bytes:
        """First bytes of exactly the version the event announced (If-Match on its ETag)."""
        return self.read_head(event, length).data

    def read_head(self, event: ObjectEvent, length: int) -> Head:
        """The first bytes, and what the same GET says of the object: its user metadata and
        how many tags it has (so tags cost a call only for objects that have some)."""
        response = self._get(event, 0, length)
        if response is None:
            return Head(b"", {}, 0)
        data = bytes(response["Body"].read())
        metrics.add_metric(name="RangeBytesRead", unit=MetricUnit.Bytes, value=len(data))
        return Head(data, dict(response.get("Metadata", {})), int(response.get("TagCount", 0)))

    def read_at(self, event: ObjectEvent, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer past the end) of the same version."""
        response = self._get(event, start, length)
        if response is None:
            return b""
        data = bytes(response["Body"].read(max(length, 1)))
        metrics.add_metric(name="RangeBytesRead", unit=MetricUnit.Bytes, value=len(data))
        return data

    def _get(self, event: ObjectEvent, start: int, length: int) -> GetObjectOutputTypeDef | None:
        """One ranged GET of exactly the version the event announced (VersionId, or If-Match
        on its ETag); None for a range past the end."""
        params: dict[str, Any] = {
            "Bucket": event.bucket, "Key": event.key,
            "Range": f"bytes={start}-{start + max(length, 1) - 1}",
        }  # fmt: skip
        if event.version_id:
            params["VersionId"] = event.version_id
        elif event.etag:
            params["IfMatch"] = event.etag
        try:
            return self.s3.get_object(**params)
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
                return None
            raise

    def tags(self, event: ObjectEvent) -> dict[str, str]:
        params: dict[str, Any] = {"Bucket": event.bucket, "Key": event.key}
        if event.version_id:
            params["VersionId"] = event.version_id
        found = self.s3.get_object_tagging(**params)
        return {t["Key"]: t["Value"] for t in found.get("TagSet", [])}

    def read_small(self, bucket: str, key: str, limit: int) -> bytes | None:
        """The whole object if it has at most `limit` bytes; None if there is none.

        Raises CLIENT_METADATA_TOO_LARGE beyond the limit (it is only used for sidecars)."""
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit}")
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return None
            if error_code(exc) == "InvalidRange":  # an empty object
                return b""
            raise
        data = bytes(response["Body"].read())
        if len(data) > limit:
            raise MediaError(
                ErrorCode.CLIENT_METADATA_TOO_LARGE,
                f"sidecar {key} is larger than the {limit:,} bytes this stack keeps per object",
            )
        return data

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
