"""Source objects in S3 (the drop bucket, and buckets attached to the stack): every read of
an object an event names (range reads and presigned URLs for the prober, ranged and
streamed reads of an archive), and archive members written back as drops.

Every read is of exactly the version the event announced (its VersionId, or If-Match on its
ETag, the presigned URL ffprobe reads included): an overwrite in between is OBJECT_CHANGED, a
deletion OBJECT_NOT_FOUND, never the metadata of another version. An object the stack may
not read (403: a KMS key its role may not use; an SSE-C object, whose key S3 never has) is
ACCESS_DENIED, a failure record: no retry can read it. Members are written multipart past
one part, so memory stays bounded whatever their size, and only to keys that hold no object
yet (If-None-Match): an extracted member never overwrites anything.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, client_as, error_code
from media_ingest.archives.rules import ArchiveRefused, MemberExists, member_write_policy
from media_ingest.content import HeadChecksums, checksum_fields
from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import ObjectEvent
from media_ingest.listing import ListedObject
from media_ingest.media import SOURCE_METADATA
from media_ingest.observability import metrics
from media_ingest.probing.object_file import SeekableObject
from media_ingest.probing.prober import Head, SignedGet

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef
    from mypy_boto3_sts import STSClient

_GONE = {"NoSuchKey", "404", "NoSuchVersion"}
_CHANGED = {"PreconditionFailed", "412"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled"}
PART_BYTES = 8 * 1024 * 1024  # S3 parts are at least 5 MiB (except the last)
RANGE_BYTES = 8 * 1024 * 1024  # one ranged GET per 8 MiB of a zip's data


def _version(event: ObjectEvent) -> dict[str, Any]:
    """The parameters that pin a read to the event's version of the object."""
    if event.version_id:
        return {"VersionId": event.version_id}
    return {"IfMatch": _quoted(event.etag)} if event.etag else {}


def _quoted(etag: str) -> str:
    """An ETag as HTTP writes it (quoted): moto's HeadObject matches only that form."""
    return '"' + etag.strip('"') + '"'


# What a deleted and an overwritten object mean, by who reads it.
_PROBED = (
    "object was deleted before it was probed",
    "object was overwritten before it was probed; its newer event registers it",
)
_EXTRACTED = ("archive was deleted", "archive was overwritten; its newer event extracts it")


def _get(
    s3: S3Client, event: ObjectEvent, reasons: tuple[str, str], **params: Any
) -> GetObjectOutputTypeDef:
    """GetObject of the event's version; a deleted, overwritten or unreadable object is a
    MediaError."""
    try:
        return s3.get_object(Bucket=event.bucket, Key=event.key, **_version(event), **params)
    except ClientError as exc:
        code = error_code(exc)
        if code in _GONE:
            raise MediaError(ErrorCode.OBJECT_NOT_FOUND, reasons[0]) from exc
        if code in _CHANGED:
            raise MediaError(ErrorCode.OBJECT_CHANGED, reasons[1]) from exc
        if (denied := _denied(exc, event.key)) is not None:
            raise denied from exc
        raise


def _denied(exc: ClientError, key: str) -> MediaError | None:
    """ACCESS_DENIED for a read the stack's role can never make of this object, else None.

    403: the role may not read it (a bucket policy, or SSE-KMS with a key the role may not
    use); 400 naming server-side encryption: SSE-C, whose key only the uploader has; KMS.*:
    its key is disabled or pending deletion. None of these changes by retrying."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code in _DENIED:
        reason = "the stack's role may not read it (a policy, or an SSE-KMS key it may not use)"
    elif code.startswith("KMS."):
        reason = f"its SSE-KMS key cannot be used ({code})"
    elif code == "InvalidRequest" and "Server Side Encryption" in message:
        reason = "it is encrypted with a customer-provided key (SSE-C), which S3 does not keep"
    else:
        return None
    return MediaError(ErrorCode.ACCESS_DENIED, f"{key} cannot be read: {reason}")


def _head(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject of the current version; None when there is none."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if error_code(exc) in _GONE:
            return None
        raise


class S3Objects:
    """The prober's reads of the object an event names."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, presign_seconds: int = 300, client: S3Client | None = None) -> None:
        self.s3 = client
        self.presign_seconds = presign_seconds

    def read_range(self, event: ObjectEvent, length: int) -> bytes:
        """First bytes of exactly the version the event announced."""
        return self.read_head(event, length).data

    def read_head(self, event: ObjectEvent, length: int) -> Head:
        """The first bytes, and what the same GET says of the object: its user metadata and
        how many tags it has (so tags cost a call only for objects that have some)."""
        response = self._range(event, 0, length)
        if response is None:
            return Head(b"", {}, 0)
        data = bytes(response["Body"].read())
        metrics.add_metric(name="RangeBytesRead", unit=MetricUnit.Bytes, value=len(data))
        return Head(data, dict(response.get("Metadata", {})), int(response.get("TagCount", 0)))

    def read_at(self, event: ObjectEvent, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer past the end) of the same version."""
        response = self._range(event, start, length)
        if response is None:
            return b""
        data = bytes(response["Body"].read(max(length, 1)))
        metrics.add_metric(name="RangeBytesRead", unit=MetricUnit.Bytes, value=len(data))
        return data

    def _range(self, event: ObjectEvent, start: int, length: int) -> GetObjectOutputTypeDef | None:
        """One ranged GET of the event's version; None for a range past the end."""
        try:
            last = start + max(length, 1) - 1
            return _get(self.s3, event, _PROBED, Range=f"bytes={start}-{last}")
        except ClientError as exc:
            if error_code(exc) == "InvalidRange":
                return None
            raise

    def tags(self, event: ObjectEvent) -> dict[str, str]:
        params: dict[str, Any] = {"Bucket": event.bucket, "Key": event.key}
        if event.version_id:
            params["VersionId"] = event.version_id
        try:
            found = self.s3.get_object_tagging(**params)
        except ClientError as exc:
            if (denied := _denied(exc, event.key)) is not None:
                raise denied from exc
            raise
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
            if (denied := _denied(exc, key)) is not None:
                raise denied from exc
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
        found = _head(self.s3, bucket, key)
        if found is None:
            return None
        return int(found["ContentLength"]), str(found["ETag"]).strip('"')

    def stat(self, bucket: str, key: str) -> ListedObject | None:
        """The current version as a listing would show it; None when there is none."""
        found = _head(self.s3, bucket, key)
        if found is None:
            return None
        return ListedObject(
            bucket=bucket,
            key=key,
            size=int(found["ContentLength"]),
            etag=str(found["ETag"]).strip('"'),
            last_modified=found["LastModified"],
        )

    def checksums(self, event: ObjectEvent) -> HeadChecksums:
        """What S3 stores about the bytes of the event's version (HeadObject with
        ChecksumMode=ENABLED): no byte of the object is read."""
        try:
            found = self.s3.head_object(
                Bucket=event.bucket, Key=event.key, ChecksumMode="ENABLED", **_version(event)
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in _GONE:
                raise MediaError(ErrorCode.OBJECT_NOT_FOUND, _PROBED[0]) from exc
            if code in _CHANGED:
                raise MediaError(ErrorCode.OBJECT_CHANGED, _PROBED[1]) from exc
            raise
        return HeadChecksums(
            size=int(found["ContentLength"]),
            etag=str(found["ETag"]),
            checksums=checksum_fields(dict(found)),
            checksum_type=found.get("ChecksumType"),
            encryption=found.get("ServerSideEncryption"),
            customer_key=bool(found.get("SSECustomerAlgorithm")),
        )

    def sha256(self, bucket: str, key: str, etag: str) -> tuple[str, int] | None:
        """The SHA-256 of one object version's bytes (base64, as S3 writes ChecksumSHA256)
        and how many bytes that read, streamed in 1 MiB reads; None when that version is
        gone (deleted, or overwritten: its ETag no longer matches)."""
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key, IfMatch=_quoted(etag))["Body"]
        except ClientError as exc:
            if error_code(exc) in _GONE | _CHANGED:
                return None
            raise
        digest, read = hashlib.sha256(), 0
        while chunk := body.read(1024 * 1024):
            digest.update(chunk)
            read += len(chunk)
        metrics.add_metric(name="ContentBytesHashed", unit=MetricUnit.Bytes, value=read)
        return base64.b64encode(digest.digest()).decode(), read

    def presign(self, event: ObjectEvent) -> SignedGet:
        """A GET of exactly the event's version, as the range reads are: its VersionId, or
        If-Match on its ETag. The ETag goes in a signed header (the client signs with SigV4,
        which signs every header it is given), so the URL is useless without it: an
        overwrite between the range reads and ffprobe's reads is a 412, never the new
        object's metadata under the old ETag."""
        params: dict[str, Any] = {"Bucket": event.bucket, "Key": event.key}
        headers: dict[str, str] = {}
        if event.version_id:
            params["VersionId"] = event.version_id
        elif event.etag:
            headers["If-Match"] = params["IfMatch"] = f'"{event.etag}"'
        url = self.s3.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_seconds
        )
        return SignedGet(str(url), headers)


class _RangeFile(SeekableObject):
    """A seekable, read-only file over one object version: each read is a ranged GET."""

    def __init__(self, s3: S3Client, event: ObjectEvent) -> None:
        super().__init__(event.size)
        self.s3, self.event = s3, event

    def readinto(self, buffer: Any) -> int:
        end = min(self.position + len(buffer), self.size)
        if end <= self.position:
            return 0
        got = _get(self.s3, self.event, _EXTRACTED, Range=f"bytes={self.position}-{end - 1}")
        data = got["Body"].read()
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


class S3ArchiveReader:
    """An archive's bytes (the extract function): its head, one stream, or ranged reads."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, event: ObjectEvent, client: S3Client | None = None) -> None:
        self.event = event
        self.s3 = client

    def head(self, length: int) -> bytes:
        got = _get(self.s3, self.event, _EXTRACTED, Range=f"bytes=0-{max(length, 1) - 1}")
        return bytes(got["Body"].read())

    def stream(self) -> IO[bytes]:
        body: IO[bytes] = _get(self.s3, self.event, _EXTRACTED)["Body"]  # type: ignore[assignment]
        return body

    def seekable(self) -> IO[bytes]:
        # Buffered: zipfile's small reads (headers, then data in order) hit the buffer.
        return io.BufferedReader(_RangeFile(self.s3, self.event), RANGE_BYTES)


class S3MemberWriter:
    """Members into the drop bucket: these writes are drops, and their events ingest them.

    Create-only (`IfNoneMatch="*"` on the PUT, or on completing a multipart upload): a key
    that already holds an object, a user's drop or another archive's member, raises
    MemberExists and is left as it was."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.s3 = client

    def written(self, key: str, size: int, source: str) -> bool:
        found = _head(self.s3, self.bucket, key)
        return (
            found is not None
            and int(found["ContentLength"]) == size
            and found.get("Metadata", {}).get(SOURCE_METADATA) == source
        )

    def write(self, key: str, chunks: Iterator[bytes], metadata: dict[str, str]) -> None:
        try:
            self._upload(key, chunks, metadata)
        except ClientError as exc:
            if error_code(exc) in _CHANGED:  # If-None-Match: the key holds an object
                raise MemberExists from exc
            raise

    def _upload(self, key: str, chunks: Iterator[bytes], metadata: dict[str, str]) -> None:
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        upload_id = self.s3.create_multipart_upload(
                            Bucket=self.bucket, Key=key, Metadata=metadata
                        )["UploadId"]
                    parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(buffer),
                    Metadata=metadata,
                    IfNoneMatch="*",
                )
                return
            if buffer or not parts:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                IfNoneMatch="*",
            )
        except BaseException:
            if upload_id is not None:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        got = self.s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": got["ETag"]}


class MemberWriters:
    """A member writer per archive, writing only under that archive's own prefix.

    With `role_arn` (the stack's MemberWriterRole), each archive's writer signs with that
    role assumed under archives.rules.member_write_policy for its prefix: IAM itself refuses
    a write anywhere else in the bucket, whatever the code does. Without one (moto tests,
    tools), the function's own client writes.
    """

    sts: ClientSlot[STSClient] = ClientSlot("sts")

    def __init__(
        self,
        bucket: str,
        role_arn: str = "",
        client: S3Client | None = None,
        sts: STSClient | None = None,
    ) -> None:
        self.bucket = bucket
        self.role_arn = role_arn
        self.client = client
        self.sts = sts

    def __call__(self, prefix: str) -> S3MemberWriter:
        if not self.role_arn:
            return S3MemberWriter(self.bucket, client=self.client)
        partition = self.role_arn.split(":")[1]
        policy = member_write_policy(f"arn:{partition}:s3:::{self.bucket}", prefix)
        try:
            # One hour: role chaining's ceiling, four times the function's longest run.
            assumed = self.sts.assume_role(
                RoleArn=self.role_arn,
                RoleSessionName="extract-members",
                Policy=policy,
                DurationSeconds=3600,
            )
        except ClientError as exc:
            if error_code(exc) == "PackedPolicyTooLarge":
                raise ArchiveRefused(
                    ErrorCode.ARCHIVE_PATH_REFUSED,
                    "the archive's key is too long for its members' writes to be scoped to it",
                ) from exc
            raise
        credentials = dict(assumed["Credentials"])
        return S3MemberWriter(self.bucket, client=client_as("s3", credentials))
