"""The error vocabulary: stable codes, and whether a failure is permanent or worth a retry.

Permanent errors become failure records and consume the message; transient ones make the
message return to the queue. Nothing else in the package decides that: `permanent` is the
one rule the functions' failure boundaries (ingest/ingestor.py, archives/extractor.py) apply
to whatever an object's bytes made a parser raise.
"""

from __future__ import annotations

from enum import StrEnum
from types import TracebackType

from botocore.exceptions import BotoCoreError, ClientError


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
    ACCESS_DENIED = "ACCESS_DENIED"
    EMPTY_OBJECT = "EMPTY_OBJECT"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    UNSUPPORTED_KIND = "UNSUPPORTED_KIND"
    KIND_MISMATCH = "KIND_MISMATCH"
    INDIRECTION_REFUSED = "INDIRECTION_REFUSED"
    CORRUPT_MEDIA = "CORRUPT_MEDIA"
    NO_MEDIA_STREAMS = "NO_MEDIA_STREAMS"
    PROBE_TIMEOUT = "PROBE_TIMEOUT"
    PROBE_RESOURCE_LIMIT = "PROBE_RESOURCE_LIMIT"
    PARSER_ERROR = "PARSER_ERROR"
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
    ARCHIVE_METHOD_UNSUPPORTED = "ARCHIVE_METHOD_UNSUPPORTED"
    ARCHIVE_DUPLICATE_NAME = "ARCHIVE_DUPLICATE_NAME"
    ARCHIVE_MEMBER_EXISTS = "ARCHIVE_MEMBER_EXISTS"
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
    INVOCATION_DEADLINE = "INVOCATION_DEADLINE"
    MANIFEST_CONTENTION = "MANIFEST_CONTENTION"


class IngestError(Exception):
    """Base of every error the pipeline raises on purpose."""

    code: ErrorCode
    stage: Stage
    # The reader that raised (`probing.dicom_header (pydicom)`), for an error the failure
    # boundary made of an unexpected exception; None for errors raised on purpose.
    parser: str | None = None

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


# What a failure record keeps of an exception's own text: pydicom, for one, puts the
# offending bytes in its messages.
_MESSAGE_LIMIT = 300


def permanent(exc: Exception, stage: Stage = Stage.PROBE) -> MediaError | None:
    """What an exception raised while handling one object means for that object.

    A MediaError is the object's problem, as raised. None means "retry the message": a
    TransientError, and every error of the AWS SDK or the network (throttling, 5xx, timeouts,
    connection errors; and errors of the stack's own resources, a table or a queue it may
    not use, which a retry reaches the dead-letter queue with, where the alarm fires). An
    adapter turns what an AWS error says about the object itself (404, 412, 403) into a
    MediaError before it gets here. Anything else was raised by code reading the object's
    bytes (a parser, a header reader, ffprobe's output interpreted): the object cannot be
    read by it, and retrying cannot change that, so it is a PARSER_ERROR naming the parser.
    """
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, IngestError | ClientError | BotoCoreError | ConnectionError | TimeoutError):
        return None
    parser = parser_of(exc.__traceback__)
    error = MediaError(
        ErrorCode.PARSER_ERROR,
        f"{parser} raised {type(exc).__name__}: {printable(str(exc), _MESSAGE_LIMIT)}",
        stage,
    )
    error.parser = parser
    return error


def parser_of(trace: TracebackType | None) -> str:
    """The reader an exception came from: the innermost module of this package on its
    traceback (`probing.dicom_header`) and the library below it, if the exception was raised
    there (`probing.dicom_header (pydicom)`)."""
    ours, below = "unknown", ""
    while trace is not None:
        module = str(trace.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("media_ingest."):
            ours, below = module.removeprefix("media_ingest."), ""
        elif not below:
            below = module.split(".", 1)[0]
        trace = trace.tb_next
    return f"{ours} ({below})" if below and below != "builtins" else ours


def printable(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, any character that is not valid, printable UTF-8
    (lone surrogates from undecodable bytes, control and bidi characters) escaped."""
    out = "".join(_escaped(ch) for ch in text[: limit + 1])
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _escaped(ch: str) -> str:
    if ch.isprintable():
        return ch
    if "\udc80" <= ch <= "\udcff":  # surrogateescape's stand-in for one undecodable byte
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return ch.encode("unicode_escape").decode("ascii")
