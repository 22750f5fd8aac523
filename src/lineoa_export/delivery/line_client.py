"""The only module that speaks HTTP to LINE.

The transport is a seam (as in httpx): :class:`AiohttpTransport` is the real one, and
tests may pass any object with the same ``request`` coroutine. aiohttp's exceptions are
translated here, once, into :class:`~lineoa_export.delivery.outcomes.NoAnswer`; nothing above this
module sees them. No exception of any kind escapes :meth:`AiohttpTransport.request`: whatever
goes wrong becomes an outcome, never a loop of tracebacks.

Two bounds protect the caller from whatever answers at ``api_url``: redirects are never
followed (a bearer token must not travel to another host), and at most
:data:`MAX_ANSWER_BYTES` of an answer are read (LINE's answers are small).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
import orjson

from .outcomes import Answer, NoAnswer

DEFAULT_API_URL = "https://api.line.me"
PUSH_PATH = "/v2/bot/message/push"
#: LINE's answers are a few hundred bytes (statistics a few kB): anything larger is not LINE.
MAX_ANSWER_BYTES = 1 << 20


class Transport(Protocol):
    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer | NoAnswer: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 3.0
    total: float = 10.0


class AiohttpTransport:
    """aiohttp with bounded timeouts: no request can hang a worker."""

    def __init__(self, timeouts: Timeouts = Timeouts(), max_connections: int = 256) -> None:
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so the session binds to the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=self._timeouts.total,
                    sock_connect=self._timeouts.connect,
                    connect=self._timeouts.connect,
                ),
                # LINE sets no cookies we would send back: no jar to search on every request.
                cookie_jar=aiohttp.DummyCookieJar(),
                # (A User-Agent given here already replaces aiohttp's own; skip_auto_headers would
                # only send every request down aiohttp's slower header path.)
                headers={"User-Agent": "lineoa-export"},
            )
        return self._session

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer | NoAnswer:
        try:
            async with self._get_session().request(
                method, url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                content = await _read_bounded(resp.content)
                if content is None:
                    return NoAnswer(f"answer larger than {MAX_ANSWER_BYTES} bytes (not LINE's)")
                h = resp.headers
                return Answer(
                    resp.status,
                    content,
                    h.get("x-line-request-id"),
                    h.get("x-line-accepted-request-id"),
                )
        except aiohttp.ConnectionTimeoutError:
            # Never connected: LINE cannot have seen this request (a sure resend, and not the
            # 10-s answer timeout the next line speaks of).
            return NoAnswer(f"connect timeout: could not connect within {self._timeouts.connect:g} s")
        except TimeoutError:
            return NoAnswer(f"timeout: no answer within {self._timeouts.total:g} s")
        except aiohttp.ClientError as exc:
            return NoAnswer(f"connection error: {type(exc).__name__}: {exc}".rstrip(": "))
        except OSError as exc:
            return NoAnswer(f"connection error: {exc.strerror or exc}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. ValueError or UnicodeError from a URL aiohttp cannot use
            return NoAnswer(f"request could not be sent: {type(exc).__name__}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # Let the connector's transports finish closing (aiohttp's documented advice).
            await asyncio.sleep(0)


async def _read_bounded(stream: aiohttp.StreamReader) -> bytes | None:
    """The whole body, or None as soon as it passes :data:`MAX_ANSWER_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        if not chunks and stream.at_eof():
            return chunk  # the usual answer: all of it in one read, no second read to see the end
        chunks.append(chunk)
    return b"".join(chunks)


class LineClient:
    """LINE Messaging API calls for one API base URL. Returns raw :class:`Answer` values."""

    def __init__(self, transport: Transport, api_url: str = DEFAULT_API_URL) -> None:
        self.transport = transport
        self.api_url = api_url.rstrip("/")
        self._push_url = self.api_url + PUSH_PATH

    def push(self, token: str, body: bytes, retry_key: str) -> Awaitable[Answer | NoAnswer]:
        # A plain function handing back the transport's coroutine: one frame less for every
        # resumption of the request on the push path.
        headers = {
            "Authorization": "Bearer " + token,
            "Content-Type": "application/json",
            # Only on push: LINE answers 400 to a retry key on endpoints that do not take one.
            "X-Line-Retry-Key": retry_key,
        }
        return self.transport.request("POST", self._push_url, headers, body)

    async def get(self, token: str, path: str) -> Answer | NoAnswer:
        return await self.transport.request("GET", self.api_url + path, {"Authorization": "Bearer " + token}, None)

    async def post_json(self, token: str, path: str, payload: Any) -> Answer | NoAnswer:
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        return await self.transport.request("POST", self.api_url + path, headers, orjson.dumps(payload))

    async def issue_stateless_token(self, channel_id: str, channel_secret: str) -> Answer | NoAnswer:
        form = urlencode(
            {"grant_type": "client_credentials", "client_id": channel_id, "client_secret": channel_secret}
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self.transport.request("POST", self.api_url + "/oauth2/v3/token", headers, form)

    async def bot_info(self, token: str) -> Answer | NoAnswer:
        return await self.get(token, "/v2/bot/info")

    async def quota(self, token: str) -> Answer | NoAnswer:
        return await self.get(token, "/v2/bot/message/quota")

    async def quota_consumption(self, token: str) -> Answer | NoAnswer:
        return await self.get(token, "/v2/bot/message/quota/consumption")

    async def aggregation_info(self, token: str) -> Answer | NoAnswer:
        """Aggregation units used this month (UTC+9)."""
        return await self.get(token, "/v2/bot/message/aggregation/info")

    async def aggregation_list(self, token: str, start: str | None = None) -> Answer | NoAnswer:
        """One page of this month's unit names (``start``: the ``next`` of the page before)."""
        query = {"limit": "100"} if start is None else {"limit": "100", "start": start}
        return await self.get(token, "/v2/bot/message/aggregation/list?" + urlencode(query))

    async def unit_statistics(self, token: str, unit: str, first: str, last: str) -> Answer | NoAnswer:
        """LINE's statistics for a unit between two ``yyyyMMdd`` days (60 requests an hour per channel)."""
        query = urlencode({"customAggregationUnit": unit, "from": first, "to": last})
        return await self.get(token, "/v2/bot/insight/message/event/aggregation?" + query)

    async def push_count(self, token: str, day: str) -> Answer | NoAnswer:
        """Pushes LINE counted on a ``yyyyMMdd`` day (UTC+9)."""
        return await self.get(token, "/v2/bot/message/delivery/push?" + urlencode({"date": day}))

    async def validate_push(self, token: str, messages: Any) -> Answer | NoAnswer:
        return await self.post_json(token, "/v2/bot/message/validate/push", {"messages": messages})
