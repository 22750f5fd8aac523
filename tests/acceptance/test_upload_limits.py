"""Issue 8, finding 1, over a real socket: the app of ``serve`` under uvicorn, with the settings
``serve`` uses, and a client that streams a chunked body.

- Without a key, POST …/triggers is answered 401 before the client has sent a byte of its body.
- With a key, an endless chunked body is answered 413 and the connection closed once the limit
  is passed: the client cannot push more than the limit plus socket buffers, and the server's
  memory does not grow by the upload.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import uvicorn

from lineoa_export import apikeys
from lineoa_export.context import open_context
from lineoa_export.settings import Settings
from lineoa_export.web.app import MAX_BODY_BYTES, create_app
from lineoa_export.web.slow_clients import server_limits

CHUNK = b"x" * 65536
PUSHED_AT_MOST = 4 * MAX_BODY_BYTES  # the limit, plus far more than any socket buffers


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[tuple[str, int], str]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", secret_key="an upload-limit test passphrase, 32+ chars"
    )
    ctx = open_context(settings)
    key = apikeys.create(ctx.db, "ops", now=0.0)
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(ctx), lifespan="off", log_level="warning", **server_limits())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield listener.getsockname(), key
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
        ctx.close()


def head(path: str, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def stream_until_answered(address: tuple[str, int], request_head: bytes) -> tuple[bytes, int]:
    """Send ``request_head`` and then chunks until the server answers or hangs up: (answer, bytes sent)."""
    frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    sent, pending, answer = 0, b"", b""
    with socket.create_connection(address) as conn:
        conn.sendall(request_head)
        conn.setblocking(False)
        while sent < PUSHED_AT_MOST and not answer:
            try:
                answer += conn.recv(65536)
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            pending = pending or frame
            try:
                n = conn.send(pending)
            except BlockingIOError:
                time.sleep(0.001)  # the server is not reading: its answer is on the way
                continue
            except ConnectionError:
                break
            sent, pending = sent + n, pending[n:]
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionError):
            pass
    return answer, sent


def test_a_trigger_without_a_key_is_401_before_any_body_is_sent(served: tuple[tuple[str, int], str]) -> None:
    address, _ = served
    with socket.create_connection(address) as conn:
        conn.sendall(head("/v1/activations/welcome/triggers", None))  # and no body at all
        conn.settimeout(5)
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401")


def test_an_endless_chunked_upload_is_cut_off_with_413(served: tuple[tuple[str, int], str]) -> None:
    address, key = served
    process = psutil.Process()
    before = process.memory_info().rss

    answer, sent = stream_until_answered(address, head("/v1/activations/welcome/triggers", key))

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < PUSHED_AT_MOST
    assert process.memory_info().rss - before < 2 * MAX_BODY_BYTES  # not the upload's size
