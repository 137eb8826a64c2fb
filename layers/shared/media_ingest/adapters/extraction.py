"""S3 and SQS as archive extraction uses them: the archive read (streamed or by ranges, always
the event's version), members written to the drop bucket (multipart past one part, so
memory stays bounded), annotation CSVs stored in the manifest bucket, the extract queue.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_ingest.adapters.clients import ClientSlot, error_code
from media_ingest.archives.rules import SOURCE_METADATA
from media_ingest.errors import ErrorCode, MediaError
from media_ingest.events import ObjectEvent
from media_ingest.settings import UrlStyle
from media_ingest.urls import object_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

PART_BYTES = 8 * 1024 * 1024  # S3 parts are at least 5 MiB (except the last)
RANGE_BYTES = 8 * 1024 * 1024  # one ranged GET per 8 MiB of a zip's data
_GONE = {"NoSuchKey", "404", "NoSuchVersion"}
_CHANGED = {"PreconditionFailed", "412"}


def _version(event: ObjectEvent) -> dict[str, Any]:
    if event.version_id:
        return {"VersionId": event.version_id}
    return {"IfMatch": event.etag} if event.etag else {}


def _get(s3: S3Client, event: ObjectEvent, **params: Any) -> Any:
    try:
        return s3.get_object(Bucket=event.bucket, Key=event.key, **_version(event), **params)
    except ClientError as exc:
        code = error_code(exc)
        if code in _GONE:
            raise MediaError(ErrorCode.OBJECT_NOT_FOUND, "archive was deleted") from exc
        if code in _CHANGED:
            raise MediaError(
                ErrorCode.OBJECT_CHANGED, "archive was overwritten; its newer event extracts it"
            ) from exc
        raise


class _RangeFile(io.RawIOBase):
    """A seekable, read-only file over one object version: each read is a ranged GET."""

    def __init__(self, s3: S3Client, event: ObjectEvent) -> None:
        self.s3, self.event, self.position = s3, event, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.event.size}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, buffer: Any) -> int:
        end = min(self.position + len(buffer), self.event.size)
        if end <= self.position:
            return 0
        got = _get(self.s3, self.event, Range=f"bytes={self.position}-{end - 1}")
        data = got["Body"].read()
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


class S3ArchiveReader:
    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, event: ObjectEvent, client: S3Client | None = None) -> None:
        self.event = event
        self.s3 = client

    def head(self, length: int) -> bytes:
        got = _get(self.s3, self.event, Range=f"bytes=0-{max(length, 1) - 1}")
        return bytes(got["Body"].read())

    def stream(self) -> IO[bytes]:
        body: IO[bytes] = _get(self.s3, self.event)["Body"]
        return body

    def seekable(self) -> IO[bytes]:
        # Buffered: zipfile's small reads (headers, then data in order) hit the buffer.
        return io.BufferedReader(_RangeFile(self.s3, self.event), RANGE_BYTES)


class S3MemberWriter:
    """Members into the drop bucket: these writes are drops, and their events ingest them."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.s3 = client

    def written(self, key: str, size: int, source: str) -> bool:
        try:
            found = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return False
            raise
        return (
            int(found["ContentLength"]) == size
            and found.get("Metadata", {}).get(SOURCE_METADATA) == source
        )

    def write(self, key: str, chunks: Iterator[bytes], metadata: dict[str, str]) -> None:
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
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer),
                                   Metadata=metadata)  # fmt: skip
                return
            if buffer or not parts:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )  # fmt: skip
        except BaseException:
            if upload_id is not None:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        got = self.s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": got["ETag"]}


class S3AnnotationStore:
    """Validated annotation CSVs in the manifest bucket: no notifications there, so they are
    never ingested as text files, and they sit beside the manifests that link them."""

    s3: ClientSlot[S3Client] = ClientSlot("s3")

    def __init__(
        self, bucket: str, prefix: str, region: str, style: UrlStyle,
        client: S3Client | None = None,
    ) -> None:  # fmt: skip
        self.bucket, self.prefix, self.region, self.style = bucket, prefix, region, style
        self.s3 = client

    def put(self, path: str, data: bytes) -> str:
        key = self.prefix + path
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="text/csv")
        return object_url(self.bucket, key, self.region, self.style)


class SqsExtractQueue:
    """The ingest function's side of the extract queue: one ObjectEvent JSON per archive."""

    sqs: ClientSlot[SQSClient] = ClientSlot("sqs")

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self.sqs = client

    def send(self, event: ObjectEvent) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=event.model_dump_json())
