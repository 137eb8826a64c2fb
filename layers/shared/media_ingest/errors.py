"""The error vocabulary: stable codes, and whether a failure is permanent or worth a retry.

Permanent errors become failure records and consume the message; transient ones make the
message return to the queue. Nothing else in the package decides that.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Where in the pipeline an object failed."""

    EVENT = "event"
    PROBE = "probe"
    REGISTER = "register"
    MANIFEST = "manifest"
    ANNOTATION = "annotation"
    EXTRACT = "extract"
    # A consumer of registrations (the Label Studio sink): the object is registered, the
    # platform does not have it yet.
    SINK = "sink"


class ErrorCode(StrEnum):
    """Stable, documented error codes (docs/failure-codes.md lists them with their meaning)."""

    OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
    OBJECT_CHANGED = "OBJECT_CHANGED"
    EMPTY_OBJECT = "EMPTY_OBJECT"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    UNSUPPORTED_KIND = "UNSUPPORTED_KIND"
    KIND_MISMATCH = "KIND_MISMATCH"
    INDIRECTION_REFUSED = "INDIRECTION_REFUSED"
    CORRUPT_MEDIA = "CORRUPT_MEDIA"
    NO_MEDIA_STREAMS = "NO_MEDIA_STREAMS"
    PROBE_TIMEOUT = "PROBE_TIMEOUT"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    ENTRY_TOO_LARGE = "ENTRY_TOO_LARGE"
    CLIENT_METADATA_TOO_LARGE = "CLIENT_METADATA_TOO_LARGE"
    INVALID_SIDECAR = "INVALID_SIDECAR"
    INVALID_ANNOTATION = "INVALID_ANNOTATION"
    MIXED_ANNOTATION_UNITS = "MIXED_ANNOTATION_UNITS"
    # Archive drops (archives.py): the whole archive, or one member of it, refused.
    ARCHIVE_TOO_LARGE = "ARCHIVE_TOO_LARGE"
    ARCHIVE_BOMB = "ARCHIVE_BOMB"
    ARCHIVE_CORRUPT = "ARCHIVE_CORRUPT"
    ARCHIVE_PATH_REFUSED = "ARCHIVE_PATH_REFUSED"
    ARCHIVE_LINK_REFUSED = "ARCHIVE_LINK_REFUSED"
    ARCHIVE_ENCRYPTED = "ARCHIVE_ENCRYPTED"
    ARCHIVE_NESTED = "ARCHIVE_NESTED"
    ANNOTATION_WITHOUT_MEDIA = "ANNOTATION_WITHOUT_MEDIA"
    ANNOTATION_LINKS_TOO_LARGE = "ANNOTATION_LINKS_TOO_LARGE"
    GROUP_SEALED = "GROUP_SEALED"
    GROUP_MEMBER_KIND = "GROUP_MEMBER_KIND"
    # The Label Studio sink: the platform refused the object's task (permanent), or could
    # not be reached for as many attempts as the sink queue allows (its message is in the
    # sink's dead-letter queue; redrive it).
    SINK_REFUSED = "SINK_REFUSED"
    SINK_UNAVAILABLE = "SINK_UNAVAILABLE"
    # Transient codes: never in a failure record, only in logs and metrics.
    AWS_TRANSIENT = "AWS_TRANSIENT"
    MANIFEST_CONTENTION = "MANIFEST_CONTENTION"


class IngestError(Exception):
    """Base of every error the pipeline raises on purpose."""

    code: ErrorCode
    stage: Stage

    def __init__(self, code: ErrorCode, message: str, stage: Stage = Stage.PROBE) -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage
        self.message = message


class MediaError(IngestError):
    """The object itself is the problem: retrying cannot help. Becomes a failure record."""


class TransientError(IngestError):
    """The infrastructure is the problem (throttling, 5xx, contention): retry the message."""


class AnnotationError(MediaError):
    """An annotation CSV is invalid, or two cannot be compared: says which file, line, column."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        source: str,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = source + (f":{line}" if line is not None else "")
        what = f" column {column!r}:" if column is not None else ""
        super().__init__(code, f"{where}:{what} {message}", Stage.ANNOTATION)
        self.source = source
        self.line = line
        self.column = column
