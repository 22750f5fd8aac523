"""Issue 8, finding 9: a slow or silent client cannot hold a connection of ``serve`` for ever.

A real uvicorn server on a thread, with the protocol and limits ``serve`` uses (the header
deadline shortened to 0.3 s so the test is quick), and raw sockets as the slow clients.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from lineoa_export.web.slow_clients import HeaderDeadlineH11Protocol, server_limits

DEADLINE = 0.3


class QuickDeadline(HeaderDeadlineH11Protocol):
    header_timeout = DEADLINE


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(hello, lifespan="off", log_level="warning", **{**server_limits(), "http": QuickDeadline})
    running = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(running.serve(sockets=[listener])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        running.should_exit = True
        thread.join(10)
        listener.close()


def closed_by_server_within(conn: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open that long."""
    conn.settimeout(seconds)
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    return received


def test_a_client_that_never_finishes_its_headers_is_disconnected(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # ... and nothing more

        assert closed_by_server_within(conn, DEADLINE * 10) == b""


def test_a_client_that_connects_and_says_nothing_is_disconnected(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as conn:
        assert closed_by_server_within(conn, DEADLINE * 10) == b""


def test_a_prompt_client_is_answered_and_its_next_request_gets_the_same_deadline(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(5)
        answer = b""
        while not answer.endswith(b"ok"):
            answer += conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the second request's head stalls

        assert closed_by_server_within(conn, DEADLINE * 10) == b""


def test_a_request_head_still_unfinished_at_16_kib_is_refused(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 * 1024))  # and no end in sight

        answer = closed_by_server_within(conn, 5)

    assert answer is not None and answer.startswith(b"HTTP/1.1 400")
