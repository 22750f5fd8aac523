"""Forwarding a verified LINE webhook request to the customer's own bot.

Owns re-sending one request: body and ``x-line-signature`` untouched (the bot verifies them
with the same channel secret), a timeout per try, retries with exponential backoff, and a log
line for every failed try. Its one rule: forwarding never changes what we stored or answered
to LINE; it only reports how it went.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from lineoa_export.clock import Clock

log = logging.getLogger(__name__)

# (url, body, headers, time limit in seconds) -> HTTP status; raises OSError/aiohttp/timeout errors.
Post = Callable[[str, bytes, dict[str, str], float], Awaitable[int]]


@dataclass(frozen=True)
class ForwardPolicy:
    attempts: int = 4
    timeout_seconds: float = 5.0
    first_backoff_seconds: float = 1.0


@dataclass(frozen=True)
class ForwardResult:
    delivered: bool
    attempts: int
    last_error: str


def aiohttp_post(session: aiohttp.ClientSession) -> Post:
    async def post(url: str, body: bytes, headers: dict[str, str], limit_seconds: float) -> int:
        limit = aiohttp.ClientTimeout(total=limit_seconds)
        async with session.post(url, data=body, headers=headers, timeout=limit) as answer:
            return answer.status

    return post


async def forward(
    post: Post, clock: Clock, url: str, body: bytes, signature: str, policy: ForwardPolicy
) -> ForwardResult:
    headers = {"content-type": "application/json", "x-line-signature": signature}
    error = ""
    for attempt in range(1, policy.attempts + 1):
        error = await _try_once(post, url, body, headers, policy.timeout_seconds)
        if not error:
            return ForwardResult(True, attempt, "")
        # The URL can carry a token of the customer's; log the host only.
        log.warning("webhook forward to %s failed (try %d): %s", _host(url), attempt, error)
        if attempt < policy.attempts:
            await clock.sleep(policy.first_backoff_seconds * 2 ** (attempt - 1))
    return ForwardResult(False, policy.attempts, error)


async def _try_once(post: Post, url: str, body: bytes, headers: dict[str, str], limit_seconds: float) -> str:
    try:
        status = await post(url, body, headers, limit_seconds)
    except (OSError, aiohttp.ClientError, TimeoutError) as failure:
        return f"{type(failure).__name__}: {failure}"
    return "" if 200 <= status < 300 else f"HTTP {status}"


def _host(url: str) -> str:
    return urlsplit(url).netloc or "?"
