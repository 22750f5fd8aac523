"""Issue 8, finding 1: no request can make the process hold more than the body limit, and no
body is read before the API key is checked.

The app is driven at the ASGI level with a body that never ends (chunks of 64 KiB, always
``more_body``), counting how many chunks the app pulls: that is exactly what it read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_support import Api, make_api

from lineoa_export.web.app import MAX_BODY_BYTES
from lineoa_export.web.request_guard import RequestGuard

CHUNK = 64 * 1024
MOST_CHUNKS = MAX_BODY_BYTES // CHUNK + 1  # the limit, plus the one chunk that crosses it


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with make_api(tmp_path, None) as a:
        yield a


class EndlessBody:
    """An ASGI ``receive`` that hands out chunks as a 1.5 GB chunked upload would.

    It ends at twice the limit, so an app that reads it all (as before the guard) answers
    at all and the test fails on the count instead of running out of memory."""

    def __init__(self) -> None:
        self.chunks = 0

    async def __call__(self) -> dict[str, Any]:
        self.chunks += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": self.chunks < 2 * MOST_CHUNKS}


def call(app: Any, method: str, path: str, headers: dict[str, str], receive: Any) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, orjson.loads(body) if body.startswith(b"{") else {"text": body.decode(errors="replace")}


def test_a_trigger_without_a_key_answers_401_and_reads_no_body(api: Api) -> None:
    body = EndlessBody()
    status, answer = call(
        api.client.app,
        "POST",
        "/v1/activations/welcome/triggers",
        {"content-type": "application/json", "transfer-encoding": "chunked"},
        body,
    )

    assert status == 401
    assert answer["error"] == "unauthorized"
    assert body.chunks == 0


def test_a_wrong_key_answers_401_and_reads_no_body(api: Api) -> None:
    body = EndlessBody()
    status, _ = call(
        api.client.app,
        "POST",
        "/v1/authentications",
        {"authorization": "Bearer lxk_not-a-key", "content-type": "application/json"},
        body,
    )

    assert status == 401
    assert body.chunks == 0


def test_an_endless_chunked_body_with_a_key_stops_at_the_limit_with_413(api: Api) -> None:
    body = EndlessBody()
    status, answer = call(
        api.client.app,
        "POST",
        "/v1/activations/welcome/triggers",
        {"authorization": f"Bearer {api.key}", "content-type": "application/json"},
        body,
    )

    assert status == 413
    assert answer["error"] == "too_large"
    assert body.chunks <= MOST_CHUNKS


def test_an_endless_chunked_login_form_stops_at_the_limit_with_413(api: Api) -> None:
    body = EndlessBody()
    status, _ = call(
        api.client.app, "POST", "/console/login", {"content-type": "application/x-www-form-urlencoded"}, body
    )

    assert status == 413
    assert body.chunks <= MOST_CHUNKS


def test_a_declared_length_over_the_limit_answers_413_before_reading(api: Api) -> None:
    body = EndlessBody()
    status, _ = call(
        api.client.app,
        "POST",
        "/console/login",
        {"content-type": "application/x-www-form-urlencoded", "content-length": str(MAX_BODY_BYTES + 1)},
        body,
    )

    assert status == 413
    assert body.chunks == 0


def test_health_and_the_openapi_document_need_no_key_and_no_cdn_page_is_served(api: Api) -> None:
    api.client.headers.pop("Authorization")
    assert api.get("/healthz").status_code == 200
    assert api.get("/openapi.json").status_code == 200
    assert api.get("/metrics").status_code == 401
    for page in ("/docs", "/redoc"):
        assert api.get(page).status_code == 404


# -- the guard alone: bodies that stall ---------------------------------------------------------


async def echo_length(scope: Any, receive: Any, send: Any) -> None:
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def guard(app: Any = echo_length, timeout: float = 0.05) -> RequestGuard:
    from lineoa_export.web.api.errors import error_response as _error

    return RequestGuard(app, verify_key=lambda _: None, error=_error, max_body_bytes=1000, body_timeout=timeout)


def test_a_body_that_stops_arriving_answers_408() -> None:
    sent_once = False

    async def stalls() -> dict[str, Any]:
        nonlocal sent_once
        if not sent_once:
            sent_once = True
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}
        await asyncio.Event().wait()  # the client never sends the rest
        raise AssertionError("unreachable")

    status, answer = call(guard(), "POST", "/console/login", {}, stalls)

    assert status == 408
    assert answer["error"] == "request_timeout"


def test_waiting_for_a_disconnect_after_the_body_has_no_deadline() -> None:
    """A streaming answer (CSV export) listens on ``receive`` for as long as it streams."""
    messages = [{"type": "http.request", "body": b"abc", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(0.2)  # longer than the body timeout: the client is simply still reading
        return {"type": "http.disconnect"}

    async def streams(scope: Any, receive_: Any, send: Any) -> None:
        await receive_()
        assert (await receive_())["type"] == "http.disconnect"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    status, answer = call(guard(streams, timeout=0.01), "GET", "/console/export", {}, receive)
    assert status == 200 and answer["text"] == "done"
