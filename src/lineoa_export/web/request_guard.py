"""What every request passes before the app reads a byte of its body: the API key, then a body
bounded in size and in time.

A pure ASGI middleware (it wraps ``receive``, as starlette's own middlewares do), because a
check made in a route or a dependency comes too late: FastAPI reads and parses the whole body
before it solves dependencies, so a key check there lets anyone without a key make the
process hold an arbitrarily large body in memory.

- Paths under :data:`KEYED_PATHS` answer 401 without a valid ``Authorization: Bearer`` key
  before their body is read. The key's name is left in ``scope["state"]`` for the route's
  own dependency, so a key is looked up once per request.
- A declared ``Content-Length`` over the limit answers 413 at once; a chunked body is
  counted as it streams and the app gets :class:`BodyTooLarge` (a 413) at the first chunk
  that crosses the limit, so no more than the limit plus one chunk is ever read.
- A body whose next chunk takes longer than ``body_timeout`` seconds to arrive answers 408.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import DatabaseUnavailable

KEYED_PATHS = ("/v1/", "/metrics")
VERIFIED_KEY = "api_key"  # where the verified key (name and role) is left in scope["state"]

ErrorResponse = Callable[[int, str, str], Response]
VerifyKey = Callable[[str], object | None]  # the key (apikeys.ApiKey) or None


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit // (1024 * 1024)} MB")


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive in time (no data for {seconds:g} s)")


def needs_key(path: str) -> bool:
    return path == "/v1" or any(path == p.rstrip("/") or path.startswith(p) for p in KEYED_PATHS)


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verify_key: VerifyKey,
        error: ErrorResponse,
        max_body_bytes: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.verify_key = verify_key
        self.error = error
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._bounded(receive), tracking_send)
        except (BodyTooLarge, BodyTooSlow) as exc:  # raised where no handler turned it into an answer
            if started:
                raise
            await self.error(exc.status_code, _NAMES[exc.status_code], exc.detail)(scope, receive, send)

    async def _refusal(self, scope: Scope) -> Response | None:
        """The answer to give before reading the body, or None to let the request in."""
        headers = Headers(scope=scope)
        if needs_key(scope["path"]):
            token = bearer_token(headers)
            try:
                name = await run_in_threadpool(self.verify_key, token) if token else None
            except DatabaseUnavailable:  # the store reconnects by itself: a retry will do
                return self.error(503, "database_unavailable", DatabaseUnavailable.public_message)
            if name is None:
                response = self.error(401, "unauthorized", "a valid API key is required (Authorization: Bearer KEY)")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            scope.setdefault("state", {})[VERIFIED_KEY] = name
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            return self.error(413, "too_large", BodyTooLarge(self.max_body_bytes).detail)
        return None

    def _bounded(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        received = 0
        body_complete = False

        async def bounded_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # later calls wait for a disconnect (streaming answers): no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise BodyTooSlow(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
                body_complete = not message.get("more_body", False)
            return message

        return bounded_receive


_NAMES = {408: "request_timeout", 413: "too_large"}
