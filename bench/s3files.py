"""A read-only S3-compatible endpoint over local files: GetObject and HeadObject with Range.

Why not moto for the probe benchmarks: moto 5.2 keeps each object in a SpooledTemporaryFile
and answers a range GET by reading the *whole* object into memory, copying it, then slicing
(moto/s3/models.py `FakeKey.value`, moto/s3/responses.py `_handle_range_header`). Tried
here: uploading a 100 MB object raised the moto process's peak RSS by ~360 MB and every
64 KB range GET of it took ~80 ms. At 1 GB that is gigabytes per range read inside the
benchmark's own process, which would swamp the figures being measured. This server streams
the requested range straight from the file (sendfile) instead.

Speaks just enough S3 for boto3 (path-style addressing) and for ffprobe over a presigned
URL: `GET|HEAD /<bucket>/<key>`, `Range: bytes=a-b | a- | -n`, `If-Match`, 404/412/416 as
S3 error XML. Signatures are not checked (query strings are ignored).
"""

from __future__ import annotations

import hashlib
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit


def etag_of(path: Path) -> str:
    """A stable ETag (quoted, as S3 sends it) without hashing gigabytes: size and mtime."""
    stat = path.stat()
    return '"' + hashlib.md5(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest() + '"'


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, clipped to the object; None if unsatisfiable.

    Raises ValueError for a header this server does not understand (served as a whole object).
    """
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ValueError(header)
    first_text, _, last_text = spec.strip().partition("-")
    if not first_text:  # suffix: the last n bytes
        n = int(last_text)
        return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


class LocalServer:
    """A QuietServer on 127.0.0.1 at an ephemeral port, served from a daemon thread while
    the context is open; `handler_base` gets `owner` set to the instance."""

    def __init__(self, handler_base: type[BaseHTTPRequestHandler]) -> None:
        handler = type("Handler", (handler_base,), {"owner": self})
        self._server = QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class S3FileServer(LocalServer):
    """Serves `buckets` ({bucket name: folder}) on 127.0.0.1 at an ephemeral port."""

    def __init__(self, buckets: dict[str, Path]) -> None:
        self.buckets = {name: folder.resolve() for name, folder in buckets.items()}
        super().__init__(_FileHandler)

    def resolve(self, path: str) -> Path | None:
        bucket, _, key = unquote(urlsplit(path).path).lstrip("/").partition("/")
        folder = self.buckets.get(bucket)
        if folder is None or not key:
            return None
        file = (folder / key).resolve()
        if not file.is_relative_to(folder) or not file.is_file():
            return None
        return file


class _FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: S3FileServer  # set on the subclass each server makes

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        file = self.owner.resolve(self.path)
        if file is None:
            self._error(404, "NoSuchKey", "The specified key does not exist.", body)
            return
        size, etag = file.stat().st_size, etag_of(file)
        wanted = (self.headers.get("If-Match") or "").strip()
        if wanted and wanted != "*" and wanted.strip('"') != etag.strip('"'):
            self._error(412, "PreconditionFailed", "At least one precondition failed.", body)
            return
        span = self._span(size)
        if span is None:
            self._error(416, "InvalidRange", "The requested range is not satisfiable", body)
            return
        status, first, last = span
        length = max(last - first + 1, 0)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(file.stat().st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        if self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")  # as S3 does; ffprobe relies on it
        self.end_headers()
        if body and length:
            try:
                with file.open("rb") as stream:
                    self.connection.sendfile(stream, offset=first, count=length)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client had read enough and hung up

    def _span(self, size: int) -> tuple[int, int, int] | None:
        """(status, first byte, last byte) to send; None if the range is unsatisfiable."""
        header = self.headers.get("Range")
        if not header:
            return 200, 0, size - 1
        try:
            found = parse_range(header, size)
        except ValueError:
            return 200, 0, size - 1  # as S3 does with a range it cannot parse
        return None if found is None else (206, *found)

    def _error(self, status: int, code: str, message: str, body: bool) -> None:
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(xml) if body else 0))
        self.end_headers()
        if body:
            self.wfile.write(xml)


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client hangs up."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
