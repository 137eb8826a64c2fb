"""A loopback HTTP server with Range support that counts what it serves and who asked.

Used as a stand-in object store for the ffprobe runner and as the canary that hostile media
must never reach.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)  # the Range header of each ranged GET
    bytes_sent: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request
    # The files' ETag: a GET whose If-Match names another one is answered 412, as S3 does.
    etag: str | None = None


def _handler(state: Served, announce_close: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive unless the request says `Connection: close`; then the server closes
        # after the response, which repeats it (as S3 does) unless `announce_close` is off
        # (a lax server: HTTP/1.1 says it should, not must).
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            state.headers.append(dict(self.headers.items()))
            body = state.files.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            wanted = self.headers.get("If-Match")
            if wanted is not None and state.etag is not None and wanted != f'"{state.etag}"':
                self.send_error(412, "Precondition Failed")
                return
            start, end = 0, len(body) - 1
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes="):
                state.ranges.append(ranged[6:])
                first, _, last = ranged[6:].partition("-")
                start = int(first or 0)
                end = min(int(last), end) if last else end
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start : end + 1]
            if announce_close and self.headers.get("Connection", "").lower() == "close":
                self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            try:
                self.wfile.write(chunk)
                state.bytes_sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def serve(
    files: dict[str, bytes] | None = None, announce_close: bool = True, etag: str | None = None
) -> Iterator[tuple[str, Served]]:
    """A server on 127.0.0.1 (free port); yields its base URL and its counters."""
    state = Served(dict(files or {}), etag=etag)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, announce_close))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
