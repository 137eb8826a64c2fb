"""Archive drops: which members of a zip, tar or tar.gz are written back as drops, which are
refused, and under which keys. Never creates an AWS client and never holds a whole member.

Rules (docs/failure-codes.md lists the codes):
- A member is written to ``<archive key without .zip/.tar/.tar.gz/.tgz/.gz>/<member path>``
  in the drop bucket, so its own S3 event ingests it like any dropped file.
- Refused per member (the others are still written): unsafe names (``..``, absolute paths,
  drive letters, backslashes, C0 and C1 control characters, bidirectional overrides, bytes
  that are not UTF-8), links and special files, encrypted zip members and compression
  methods zipfile cannot inflate (Deflate64, what Windows Explorer and 7-Zip write: refused
  in the plan, before anything of it is written), a second member with the path of an
  earlier one (the first is written), a key that already holds another object (members
  never overwrite: the write is conditional), and members that are archives themselves
  (sniffed from their first bytes): no archive is ever written back, so extraction can
  never feed itself (depth 1).
- Refused as a whole, before any member is written: more members, more bytes per member or
  in total, or a higher compression ratio than the limits allow (zip bombs). Zip: declared
  sizes come from the central directory and zipfile never inflates past them (and checks
  each CRC). Tar: a first pass streams the whole archive, counting the bytes actually
  decompressed and the sizes members declare (a GNU sparse member's holes never pass
  through the stream, but are written), before the second pass writes, counting again
  what it writes.
- Annotation CSVs (tator.locate) are validated with annotations.py; a valid one is
  stored (not ingested) and linked, through a record in the catalog keyed by the media
  member's key and the archive version, to every media member of the same base name in the
  same folder (``clip.mp4`` <- ``clip/localizations/``).
  Both passes finish the annotations before any media member is written, so the link is
  there whatever order the members' events arrive in.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import quote

from media_ingest import annotations as tator
from media_ingest.errors import AnnotationError, ErrorCode, MediaError, Stage, printable
from media_ingest.media import SOURCE_METADATA, AnnotationFile, AnnotationLinks
from media_ingest.probing.sniffer import is_archive

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".gz")
SNIFF_BYTES = 64 * 1024  # what the ingest path reads to decide a kind (probe.FIRST_RANGE_BYTES)
CHUNK_BYTES = 1024 * 1024
MAX_KEY_BYTES = 1024
# The links of one media member (kept in its catalog item and manifest entry).
MAX_LINKS_BYTES = 32 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
# C0, DEL and C1 controls; bidirectional marks, embeddings, overrides and isolates (U+202E
# makes `gpj.exe` display as `exe.jpg`); lone surrogates: tarfile's stand-ins for bytes of a
# name that are not UTF-8 (a Latin-1 tar), which no S3 key can hold.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# What zipfile inflates; anything else (Deflate64 = 9, zstd = 93, PPMd = 98, ...) raises
# NotImplementedError on open, which a plan must never reach.
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ZIP_METHOD_NAMES = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd"}
# What reading a damaged archive raises (zlib, bz2 and lzma errors from inflating members).
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class Limits:
    """The caps of one extraction (template parameters, Settings)."""

    max_archive_bytes: int = 5 * 1024**3
    max_extracted_bytes: int = 20 * 1024**3
    max_member_bytes: int = 5 * 1024**3
    max_members: int = 10_000
    max_ratio: int = 200
    max_annotation_bytes: int = 16 * 1024**2
    # Ratios are judged only past this many bytes: tiny members compress absurdly well.
    ratio_floor_bytes: int = 1024**2


class ArchiveRefused(MediaError):
    """The whole archive is refused (bomb, corrupt, too large): nothing more is written."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message, Stage.EXTRACT)


class MemberRefused(MediaError):
    """One member is refused; the archive's other members are still written."""

    def __init__(self, code: ErrorCode, message: str, stage: Stage = Stage.EXTRACT) -> None:
        super().__init__(code, message, stage)


class MemberExists(MemberRefused):
    """The member's key already holds an object (a conditional write refused it)."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.ARCHIVE_MEMBER_EXISTS,
            "its key already holds another object, which an extracted member never overwrites",
        )


@dataclass(frozen=True)
class Refusal:
    member: str
    code: ErrorCode
    stage: Stage
    message: str
    size: int


def prefix_of(key: str) -> str:
    """The key prefix an archive's members go under: its key without the archive suffix."""
    lower = key.lower()
    for suffix in ARCHIVE_SUFFIXES:
        stem = key[: -len(suffix)]
        if lower.endswith(suffix) and stem and not stem.endswith("/"):
            return stem
    return key


def member_write_policy(bucket_arn: str, prefix: str) -> str:
    """The IAM session policy under which one archive's members are written: objects under
    its own prefix only (and ListBucket, so a member not written yet answers 404). The
    extract function assumes the member-writer role with it, so IAM, not only this code,
    keeps an archive from writing anywhere else in the bucket. `*`, `?` and `$` in the
    prefix are IAM wildcards and variables: written as `${*}`, `${?}`, `${$}` they match
    only themselves."""
    literal = "".join(f"${{{c}}}" if c in "*?$" else c for c in prefix)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"],
                    "Resource": f"{bucket_arn}/{literal}/*",
                },
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
            ],
        },
        separators=(",", ":"),
    )


def member_path(name: str) -> str:
    """A member's path made safe to append to the prefix, or MemberRefused."""
    if not name or "\\" in name:
        raise MemberRefused(ErrorCode.ARCHIVE_PATH_REFUSED, "name is empty or has a backslash")
    if unsafe := _UNSAFE.search(name):
        raise MemberRefused(
            ErrorCode.ARCHIVE_PATH_REFUSED,
            f"name has a control or bidirectional character, or bytes that are not UTF-8 "
            f"({printable(unsafe.group(), 8)} at {unsafe.start()})",
        )
    if name.startswith("/") or _DRIVE.match(name):
        raise MemberRefused(ErrorCode.ARCHIVE_PATH_REFUSED, "absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise MemberRefused(ErrorCode.ARCHIVE_PATH_REFUSED, "path leaves the archive ('..')")
    if not parts:
        raise MemberRefused(ErrorCode.ARCHIVE_PATH_REFUSED, "name has no path")
    return "/".join(parts)


def member_key(archive_key: str, name: str) -> str:
    key = f"{prefix_of(archive_key)}/{member_path(name)}"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise MemberRefused(ErrorCode.ARCHIVE_PATH_REFUSED, "key longer than S3's 1,024 bytes")
    return key


def media_base(path: str) -> tuple[str, str]:
    """(folder, base name) a media path is linked by: ``a/clip.mp4`` -> (``a``, ``clip``)."""
    folder, _, name = path.rpartition("/")
    return folder, name.rsplit(".", 1)[0] if "." in name[1:] else name


def annotation_base(location: tator.Location) -> tuple[str, str]:
    return "/".join(location.folders), location.media


class Budget:
    """Counts members and the bytes actually decompressed; raises ArchiveRefused past a cap."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.members = 0
        self.declared = 0
        self.extracted = 0

    def member(self, name: str, size: int, compressed: int | None = None) -> None:
        self.members += 1
        self.declared += size
        limits = self.limits
        if self.members > limits.max_members:
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_BOMB, f"more than {limits.max_members:,} members"
            )
        if size > limits.max_member_bytes:
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_BOMB,
                f"member {name!r} is {size:,} bytes uncompressed (limit "
                f"{limits.max_member_bytes:,})",
            )
        if self.declared > limits.max_extracted_bytes:
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_BOMB,
                f"more than {limits.max_extracted_bytes:,} bytes uncompressed in total",
            )
        if compressed is not None:
            self.ratio(size, compressed, f"member {name!r}")

    def ratio(self, extracted: int, compressed: int, what: str) -> None:
        if extracted > self.limits.ratio_floor_bytes and (
            extracted > self.limits.max_ratio * max(compressed, 1)
        ):
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_BOMB,
                f"{what} expands more than {self.limits.max_ratio}x "
                f"({compressed:,} -> {extracted:,}+ bytes)",
            )

    def take(self, count: int) -> None:
        """Bytes actually decompressed (members' data and, for tar, its framing)."""
        self.extracted += count
        # Tar framing (512-byte headers, padding) rides on top of the members' own bytes.
        allowed = self.limits.max_extracted_bytes + 1024 * (self.members + 2)
        if self.extracted > allowed:
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_BOMB,
                f"more than {self.limits.max_extracted_bytes:,} bytes uncompressed in total",
            )


class _Counted(io.RawIOBase):
    """A read-only stream that reports every byte read through it."""

    def __init__(self, inner: IO[bytes], on_read: Callable[[int], None]) -> None:
        self.inner = inner
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.on_read(len(data))
        return len(data)


# --------------------------------------------------------------------------------------
# Interfaces the extract function wires to S3 (adapters/objects.py, adapters/manifests.py).
# --------------------------------------------------------------------------------------
class ArchiveReader(Protocol):
    def stream(self) -> IO[bytes]:
        """The archive's bytes from the start (one streaming GET of the event's version)."""
        ...

    def seekable(self) -> IO[bytes]:
        """A seekable view of the archive (ranged GETs of the event's version)."""
        ...


class MemberWriter(Protocol):
    bucket: str  # where members are written (the drop bucket)

    def written(self, key: str, size: int, source: str) -> bool:
        """Whether `key` already holds `size` bytes written from this archive version."""
        ...

    def write(self, key: str, chunks: Iterator[bytes], metadata: dict[str, str]) -> None:
        """Write a member from its chunks (bounded memory: multipart past one part), only if
        the key holds no object yet; raises MemberExists if it does."""
        ...


class LinkBook(Protocol):
    def record_links(self, bucket: str, key: str, source: str, links: AnnotationLinks) -> None:
        """Record the annotation links of the member `key` written from archive `source`."""
        ...


class AnnotationStore(Protocol):
    def put(self, path: str, data: bytes) -> str:
        """Store a validated annotation CSV as `path` (its member key); return its URL."""
        ...


@dataclass
class Result:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    annotations: int = 0


@dataclass(frozen=True)
class _Media:
    index: int  # the member's place in the archive: two members may share a name
    name: str
    path: str
    size: int


@dataclass
class _Plan:
    media: list[_Media] = field(default_factory=list)
    csvs: list[tuple[str, str, io.BytesIO]] = field(default_factory=list)  # name, path, data
    refused: list[Refusal] = field(default_factory=list)
    # Member path -> the name of the member that has it: a second one is refused, never
    # silently written over the first or dropped.
    paths: dict[str, str] = field(default_factory=dict)


@dataclass
class Extraction:
    """One archive version extracted into the drop bucket (call `run` once per delivery)."""

    key: str
    container: str  # "zip", "tar" or "gzip" (kinds.detect)
    size: int
    source: str  # identifies the archive version (ETag or version id)
    reader: ArchiveReader
    writer: MemberWriter
    store: AnnotationStore
    links: LinkBook
    limits: Limits = field(default_factory=Limits)

    def run(self) -> Result:
        if self.size > self.limits.max_archive_bytes:
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_TOO_LARGE,
                f"archive is {self.size:,} bytes (limit {self.limits.max_archive_bytes:,})",
            )
        try:
            if self.container == "zip":
                return self._zip()
            return self._tar()
        except UnicodeDecodeError as exc:
            # zipfile decodes every name of the central directory at once: one name flagged
            # UTF-8 that is not makes the whole directory unreadable.
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_CORRUPT,
                f"{self.container} archive cannot be read: a member name flagged UTF-8 is not "
                f"UTF-8 ({printable(repr(exc.object[:80]), 120)})",
            ) from exc
        except (ConnectionError, TimeoutError, MediaError):
            raise  # the network, not the archive: retried; or refused already
        except _CORRUPT as exc:
            raise ArchiveRefused(
                ErrorCode.ARCHIVE_CORRUPT,
                f"{self.container} archive cannot be read: {printable(str(exc), 300)}",
            ) from exc

    # -- zip: the central directory first, then each member's data by ranged reads --------
    def _zip(self) -> Result:
        with _zip_file(self.reader.seekable()) as archive:
            plan = _Plan()
            budget = Budget(self.limits)
            infos = sorted(archive.infolist(), key=lambda i: i.header_offset)
            for index, info in enumerate(infos):
                if info.is_dir():
                    continue
                budget.member(info.filename, info.file_size, info.compress_size)
                try:
                    _check_zip_member(info)
                except MemberRefused as refused:
                    plan.refused.append(_refusal(info.filename, refused, info.file_size))
                    continue
                content = self._classify(plan, index, info.filename, info.file_size)
                if content is not None:
                    with archive.open(info) as member:
                        content.write(_bounded(member, self.limits.max_annotation_bytes))
            links, result = self._annotations(plan)
            budget.extracted = 0
            for media in plan.media:
                with archive.open(infos[media.index]) as member:
                    self._write(media, _chunks(member, budget), links, result)
        return result

    # -- tar, tar.gz: two streaming passes (plan, then write) ----------------------------
    def _tar(self) -> Result:
        plan = _Plan()
        budget = Budget(self.limits)
        for index, (info, tar) in enumerate(self._tar_members(budget)):
            content = self._tar_member(plan, index, info)
            if content is not None:
                member = tar.extractfile(info)
                assert member is not None  # a regular file always has a file object
                content.write(_bounded(member, self.limits.max_annotation_bytes))
        # What the members declare, against the archive's own size: a GNU sparse member's
        # holes are written as zeros but never pass through the stream counted above (an
        # 81 KB tar.gz declaring a 300 MB member).
        budget.ratio(budget.declared, self.size, "what the members declare")
        links, result = self._annotations(plan)
        wanted = {media.index: media for media in plan.media}
        written = Budget(self.limits)  # the bytes actually written, holes included
        for index, (info, tar) in enumerate(self._tar_members(Budget(self.limits))):
            media = wanted.pop(index, None)
            if media is not None:
                member = tar.extractfile(info)
                assert member is not None
                self._write(media, _chunks(member, written), links, result)
        return result

    def _tar_members(self, budget: Budget) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
        compressed = 0

        def on_compressed(count: int) -> None:
            nonlocal compressed
            compressed += count

        def on_extracted(count: int) -> None:
            budget.take(count)
            budget.ratio(budget.extracted, compressed, "the archive")

        raw: IO[bytes] = io.BufferedReader(_Counted(self.reader.stream(), on_compressed))
        if self.container == "gzip":
            raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        counted = io.BufferedReader(_Counted(raw, on_extracted), CHUNK_BYTES)
        with tarfile.open(fileobj=counted, mode="r|") as tar:
            for info in tar:
                if info.isdir():
                    continue
                budget.member(info.name, info.size)
                yield info, tar

    def _tar_member(self, plan: _Plan, index: int, info: tarfile.TarInfo) -> io.BytesIO | None:
        if not info.isfile():
            what = (
                "symbolic link"
                if info.issym()
                else "hard link"
                if info.islnk()
                else ("device or FIFO")
            )
            plan.refused.append(
                _refusal(info.name, MemberRefused(ErrorCode.ARCHIVE_LINK_REFUSED, what), 0)
            )
            return None
        return self._classify(plan, index, info.name, info.size)

    # -- shared ---------------------------------------------------------------------------
    def _classify(self, plan: _Plan, index: int, name: str, size: int) -> io.BytesIO | None:
        """Plan one regular member; returns a buffer to fill when it is an annotation CSV."""
        try:
            path = member_path(name)
            member_key(self.key, name)
            if path in plan.paths:
                raise MemberRefused(
                    ErrorCode.ARCHIVE_DUPLICATE_NAME,
                    f"an earlier member ({printable(plan.paths[path], 200)}) has the same "
                    "path; the first one is written",
                )
        except MemberRefused as refused:
            plan.refused.append(_refusal(name, refused, size))
            return None
        plan.paths[path] = name
        if tator.hidden(path):
            return None
        if tator.locate(path) is None:
            plan.media.append(_Media(index, name, path, size))
            return None
        buffer = io.BytesIO()
        plan.csvs.append((name, path, buffer))
        return buffer

    def _annotations(self, plan: _Plan) -> tuple[dict[tuple[str, str], AnnotationLinks], Result]:
        """Validate every CSV, store the valid ones that have media, and build the links."""
        result = Result(refused=list(plan.refused))
        bases = {media_base(media.path) for media in plan.media}
        links: dict[tuple[str, str], dict[str, dict[str, AnnotationFile]]] = {}
        for name, path, buffer in plan.csvs:
            data = buffer.getvalue()
            location = tator.locate(path)
            assert location is not None
            try:
                if len(data) > self.limits.max_annotation_bytes:
                    raise AnnotationError(
                        ErrorCode.INVALID_ANNOTATION,
                        f"larger than {self.limits.max_annotation_bytes:,} bytes",
                        source=path,
                    )
                rows = _rows(data, path, location)
            except AnnotationError as error:
                result.refused.append(_refusal(name, error, len(data)))
                continue
            base = annotation_base(location)
            if base not in bases:
                folder = f"{base[0]}/" if base[0] else ""
                result.refused.append(
                    _refusal(
                        name,
                        MemberRefused(
                            ErrorCode.ANNOTATION_WITHOUT_MEDIA,
                            f"no media named {folder}{base[1]}.* in the archive",
                            Stage.ANNOTATION,
                        ),
                        len(data),
                    )
                )
                continue
            url = self.store.put(f"{prefix_of(self.key)}/{path}", data)
            kinds = links.setdefault(base, {"localizations": {}, "states": {}})
            kinds[location.kind][location.type] = AnnotationFile(url=url, rows=rows)
            result.annotations += 1
        return {b: AnnotationLinks.model_validate(k) for b, k in links.items()}, result

    def _write(
        self,
        media: _Media,
        chunks: Iterator[bytes],
        links: dict[tuple[str, str], AnnotationLinks],
        result: Result,
    ) -> None:
        key = member_key(self.key, media.name)
        head = _first(chunks, SNIFF_BYTES)
        if is_archive(head):
            refused = MemberRefused(
                ErrorCode.ARCHIVE_NESTED, "an archive inside an archive is not extracted"
            )
            result.refused.append(_refusal(media.name, refused, media.size))
            return
        if self.writer.written(key, media.size, self.source):
            result.skipped.append(key)
            return
        link = links.get(media_base(media.path))
        if link is not None:
            if len(link.model_dump_json()) > MAX_LINKS_BYTES:
                refused = MemberRefused(
                    ErrorCode.ANNOTATION_LINKS_TOO_LARGE,
                    f"its annotation links take more than {MAX_LINKS_BYTES:,} bytes; the media "
                    "is ingested without them",
                    Stage.ANNOTATION,
                )
                result.refused.append(_refusal(media.name, refused, media.size))
            else:
                # In the catalog, before the member exists (its event may be handled at
                # once): only the stack writes there, whereas object metadata is set by
                # whoever uploads, so a link read from it could be forged.
                self.links.record_links(self.writer.bucket, key, self.source, link)
        try:
            self.writer.write(key, _prepend(head, chunks), {SOURCE_METADATA: self.source})
        except MemberExists as exists:
            if self.writer.written(key, media.size, self.source):
                result.skipped.append(key)  # a concurrent delivery of this archive wrote it
            else:
                result.refused.append(_refusal(media.name, exists, media.size))
            return
        result.written.append(key)


class _Zip(zipfile.ZipFile):
    """zipfile, with the ValueError it raises for the offsets of a damaged central
    directory (a negative seek) told as what it is: BadZipFile."""

    def open(
        self, name: Any, mode: Any = "r", pwd: Any = None, *, force_zip64: bool = False
    ) -> IO[bytes]:
        try:
            return super().open(name, mode, pwd, force_zip64=force_zip64)
        except (ValueError, NotImplementedError) as exc:
            raise zipfile.BadZipFile(f"a member cannot be opened: {exc}") from exc


def _zip_file(data: IO[bytes]) -> _Zip:
    try:
        return _Zip(data)
    except ValueError as exc:  # UnicodeDecodeError too: Extraction.run tells it apart
        if isinstance(exc, UnicodeDecodeError):
            raise
        raise zipfile.BadZipFile(f"central directory at a bad offset: {exc}") from exc
    except NotImplementedError as exc:  # a member needing a zip version zipfile lacks
        raise zipfile.BadZipFile(str(exc)) from exc


def _check_zip_member(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise MemberRefused(ErrorCode.ARCHIVE_ENCRYPTED, "encrypted member")
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
        raise MemberRefused(
            ErrorCode.ARCHIVE_METHOD_UNSUPPORTED,
            f"compression method {info.compress_type} ({method}) is not supported; "
            "re-create the archive with Deflate",
        )
    mode = info.external_attr >> 16
    # Unix zips keep the file type in the high bits; many tools leave it 0 (a plain file).
    if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        what = "symbolic link" if stat.S_ISLNK(mode) else "device, FIFO or socket"
        raise MemberRefused(ErrorCode.ARCHIVE_LINK_REFUSED, what)


def _rows(data: bytes, path: str, location: tator.Location) -> int:
    text = tator.decode(data, path)
    if location.kind == "localizations":
        return len(tator.parse_localizations(text, path, location).localizations)
    return len(tator.parse_states(text, path, location).states)


def _refusal(name: str, error: MediaError, size: int) -> Refusal:
    # The name as a record can hold it: bytes that are not UTF-8 and control characters
    # escaped (a failure record is JSON, and a DynamoDB string must be valid UTF-8).
    return Refusal(
        member=printable(name, MAX_KEY_BYTES),
        code=error.code,
        stage=error.stage,
        message=error.message,
        size=size,
    )


def _bounded(member: IO[bytes], limit: int) -> bytes:
    """At most limit + 1 bytes: enough to tell a CSV over the limit without holding it."""
    return member.read(limit + 1)


def _chunks(member: IO[bytes], budget: Budget | None) -> Iterator[bytes]:
    while chunk := member.read(CHUNK_BYTES):
        if budget is not None:
            budget.take(len(chunk))
        yield chunk


def _first(chunks: Iterator[bytes], size: int) -> bytes:
    head = bytearray()
    while len(head) < size:
        chunk = next(chunks, b"")
        if not chunk:
            break
        head += chunk
    return bytes(head)


def _prepend(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from chunks


def member_url(archive_url: str, name: str) -> str:
    """What a member's failure record names: the archive's URL, the member as its fragment."""
    return f"{archive_url}#{quote(name, safe='/')}"
