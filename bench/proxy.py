"""A counting reverse proxy: forwards HTTP requests to an upstream endpoint and counts, per
request, the response body bytes that reached the client. Optionally it also routes by
bucket (the first path segment: path-style S3) to other upstreams, and holds every request
for the latency of bench/latency.py (first byte, then the bodies at its bandwidth), so that
the code under test meets S3's round trips on loopback.

Clients use the proxy's URL as their endpoint (boto3 `endpoint_url`, presigned URLs made by
such a client). A response relayed in full is charged its body length. A client that hangs
up early (ffprobe does, to seek: it closes the connection and opens a new ranged request)
is charged what its TCP stack had acknowledged by then (Linux `TCP_INFO.tcpi_bytes_acked`,
less the header bytes), not what the proxy had handed to its own socket: on loopback the
sender's buffer alone holds MBs that never reach the client. The charged figure still
includes what sat unread in the client's receive buffer when it hung up: data transferred,
as S3 would count it, not data the client parsed. Where TCP_INFO is unavailable, the bytes
accepted by `socket.send` are counted instead (an overestimate for early hang-ups).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from bench.latency import Latency
from bench.s3files import LocalServer

CHUNK = 64 * 1024
TCPI_BYTES_ACKED = 120  # offset of the u64 tcpi_bytes_acked in Linux's struct tcp_info (>= 4.1)
# Not forwarded: they describe one connection, not the message.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass
class Served:
    """One request through the proxy."""

    method: str
    path: str  # without the query string (it holds presigned credentials)
    range: str | None
    status: int
    body_bytes: int  # response body bytes sent to the client
    complete: bool  # the whole upstream body was sent (False: the client hung up first)
    agent: str  # product token of the User-Agent: "Boto3", "Lavf" (ffprobe), ...


class CountingProxy(LocalServer):
    def __init__(
        self,
        upstream: str,
        routes: dict[str, str] | None = None,
        latency: Latency | None = None,
    ) -> None:
        self.upstream = _address(upstream)
        self.routes = {bucket: _address(url) for bucket, url in (routes or {}).items()}
        self.latency = latency
        self._lock = threading.Lock()
        self._served: list[Served] = []
        self._active = 0
        super().__init__(_RelayHandler)

    def reset(self) -> None:
        with self._lock:
            self._served = []

    def served(self) -> list[Served]:
        with self._lock:
            return list(self._served)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being relayed (a hung-up client's relay may lag behind)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._active == 0:
                    return
            time.sleep(0.01)

    def upstream_for(self, path: str) -> tuple[str, int]:
        bucket = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        return self.routes.get(bucket, self.upstream)

    def _begin(self) -> None:
        with self._lock:
            self._active += 1

    def _end(self, served: Served | None) -> None:
        with self._lock:
            self._active -= 1
            if served is not None:
                self._served.append(served)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def send_counted(sock: Any, data: bytes | memoryview) -> int:
    """Send all of `data`, returning how many bytes went out before any error.

    Raises OSError (with `.sent` set to the partial count) if the peer hung up.
    """
    view = memoryview(data)
    sent = 0
    try:
        while view:
            n = sock.send(view)
            sent += n
            view = view[n:]
    except OSError as exc:
        exc.sent = sent  # type: ignore[attr-defined]
        raise
    return sent


def bytes_acked(sock: socket.socket) -> int | None:
    """How many bytes the peer has acknowledged on this connection (Linux), else None."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except (OSError, AttributeError):
        return None
    if len(info) < TCPI_BYTES_ACKED + 8:
        return None
    acked: int = struct.unpack_from("Q", info, TCPI_BYTES_ACKED)[0]
    return acked


class _RelayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: CountingProxy  # set on the subclass each proxy makes

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._relay()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _relay(self) -> None:
        if self.path == "/_bench/reset":  # the counts start again (a worker process asks)
            self.owner.reset()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.owner._begin()
        served = None
        try:
            served = self._forward()
        finally:
            self.owner._end(served)

    def _forward(self) -> Served:
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        latency = self.owner.latency
        began = time.monotonic()
        upstream = http.client.HTTPConnection(*self.owner.upstream_for(self.path), timeout=120)
        try:
            upstream.request(self.command, self.path, body=request_body, headers=headers)
            response = upstream.getresponse()
            if latency is not None:  # the first byte no sooner than S3's would arrive
                due = latency.seconds(sent=len(request_body or b""))
                time.sleep(max(due - (time.monotonic() - began), 0.0))
            sent, complete = self._respond(response)
        finally:
            upstream.close()
        return Served(
            method=self.command,
            path=self.path.split("?", 1)[0],
            range=self.headers.get("Range"),
            status=response.status,
            body_bytes=sent,
            complete=complete,
            agent=(self.headers.get("User-Agent") or "-").split("/", 1)[0],
        )

    def _respond(self, response: http.client.HTTPResponse) -> tuple[int, bool]:
        """Relay status, headers and body; (body bytes that reached the client, all of it?)."""
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if response.getheader("Content-Length") is None and self.command != "HEAD":
            self.send_header("Connection", "close")  # the end of the body is the close
        elif (self.headers.get("Connection") or "").lower() == "close":
            self.send_header("Connection", "close")  # repeated, as S3 does, before closing
        buffered: list[bytes] = getattr(self, "_headers_buffer", [])
        header_bytes = sum(len(line) for line in buffered) + 2  # + the blank line
        acked_before = bytes_acked(self.connection)
        sent = 0
        try:
            self.end_headers()
            latency = self.owner.latency
            while chunk := response.read1(CHUNK):
                sent += send_counted(self.connection, chunk)
                if latency is not None:
                    time.sleep(len(chunk) / (latency.mb_per_s * 1e6))
        except OSError as exc:
            self.close_connection = True
            acked_after = bytes_acked(self.connection)
            if acked_before is None or acked_after is None:
                return sent + int(getattr(exc, "sent", 0)), False
            return max(acked_after - acked_before - header_bytes, 0), False
        return sent, True
