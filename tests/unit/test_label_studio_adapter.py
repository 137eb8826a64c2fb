"""adapters/label_studio.py, the real label-studio-sdk against a stub server on loopback: how
Label Studio's answers become TaskRefused (the tasks are at fault) or TransientError (retry),
that the secret is read again after 401/403, and that the token never reaches a message or
a log line. The live server's behaviour is tests/integration/test_label_studio.py's."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from media_ingest.adapters.label_studio import SdkTaskStore
from media_ingest.adapters.secrets import LabelStudioCredentials
from media_ingest.errors import TransientError
from media_ingest.sinks.label_studio import TaskRefused

TOKEN = "s3cr3t-token-never-logged"


class Stub:
    def __init__(self) -> None:
        self.status = 201
        self.body: dict[str, Any] = {"task_count": 1}
        self.seen: list[tuple[str, str, str]] = []


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            state.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
            body = json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _store(url: str, reads: list[int] | None = None) -> SdkTaskStore:
    def credentials() -> LabelStudioCredentials:
        if reads is not None:
            reads.append(1)
        return LabelStudioCredentials(url=url, api_key=SecretStr(TOKEN))

    return SdkTaskStore(credentials, timeout=5, retries=0)


TASK = {"data": {"image": "s3://drop/a.png"}, "meta": {"key": "a.png"}}


def test_an_import_reaches_the_project_with_the_token(stub: tuple[Stub, str]) -> None:
    state, url = stub
    _store(url).create(7, [TASK])
    [(method, path, authorization)] = state.seen
    assert (method, path.split("?")[0]) == ("POST", "/api/projects/7/import")
    assert TOKEN in authorization


def test_a_refused_import_is_task_refused_with_label_studios_detail(
    stub: tuple[Stub, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = stub
    state.status = 400
    state.body = {"detail": "Validation error", "validation_errors": {"non_field_errors": ["x"]}}
    with caplog.at_level(logging.DEBUG), pytest.raises(TaskRefused) as refused:
        _store(url).create(7, [TASK])
    assert "(400)" in str(refused.value) and "non_field_errors" in str(refused.value)
    assert TOKEN not in str(refused.value) and TOKEN not in caplog.text


@pytest.mark.parametrize("status", [500, 502, 429])
def test_a_failing_label_studio_is_transient(stub: tuple[Stub, str], status: int) -> None:
    state, url = stub
    state.status = status
    with pytest.raises(TransientError, match=f"answered {status}") as error:
        _store(url).create(7, [TASK])
    assert TOKEN not in error.value.message


def test_a_refused_token_is_transient_and_the_secret_is_read_again(
    stub: tuple[Stub, str],
) -> None:
    state, url = stub
    reads: list[int] = []
    store = _store(url, reads)
    state.status = 401
    with pytest.raises(TransientError, match="answered 401"):
        store.create(7, [TASK])
    state.status = 201
    store.create(7, [TASK])
    assert len(reads) == 2  # rotated tokens are picked up without a cold start


def test_an_unreachable_label_studio_is_transient_and_says_nothing_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(TransientError) as error:
        _store("http://127.0.0.1:9").create(7, [TASK])
    assert "unreachable" in error.value.message
    assert TOKEN not in error.value.message and TOKEN not in caplog.text


def test_a_task_already_gone_is_deleted(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.status, state.body = 404, {"detail": "Not found."}
    _store(url).delete(12)  # what a redelivered deletion finds: nothing to do
    assert [(m, p) for m, p, _ in state.seen] == [("DELETE", "/api/tasks/12/")]
