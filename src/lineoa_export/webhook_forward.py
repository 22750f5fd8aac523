"""Forwarding a verified LINE webhook request to the customer's own bot.

Owns re-sending one request: body and ``x-line-signature`` untouched (the bot verifies them
with the same channel secret), a timeout per try, retries with exponential backoff, and a log
line for every failed try. Its one rule: forwarding never changes what we stored or answered
to LINE; it only reports how it went.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from lineoa_export.api_hosts import normalise_host
from lineoa_export.clock import Clock
from lineoa_export.store.database import Database

if TYPE_CHECKING:
    from lineoa_export.followers import Received

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
        # No redirects: a redirect would send the request to a host nobody allowed.
        async with session.post(url, data=body, headers=headers, timeout=limit, allow_redirects=False) as answer:
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
        # The kind only: aiohttp's messages can quote the URL, and its query may hold a token.
        return "timeout" if isinstance(failure, TimeoutError) else type(failure).__name__
    return "" if 200 <= status < 300 else f"HTTP {status}"


def _host(url: str) -> str:
    return urlsplit(url).netloc or "?"


# -- where a request may be forwarded --------------------------------------------------------------

FORWARD_HOSTS_VARIABLE = "LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS"


def forward_url_problem(url: str, allowed: frozenset[str]) -> str | None:
    """Why ``url`` may not receive forwarded webhooks, or None when it may.

    The webhook endpoint answers anyone who holds a channel's secret, and every verified request is
    re-sent: so the destination must be a host the operator named (``allowed``), never one an
    authentication's creator picks alone. No user info (a password would be stored and shown), no
    fragment; a path and a query are the bot's own business.
    """
    if not (url.isascii() and url.isprintable() and " " not in url and len(url) <= 2000):
        return "must be an http(s) URL of printable ASCII without spaces, at most 2000 characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL that can be read (host or port)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    if "@" in parts.netloc:
        return "must not contain a user name or password (user:pw@)"
    if parts.fragment or "#" in url:
        return "must not contain a fragment (#)"
    host = normalise_host(parts.hostname)
    if host is None:
        return f"host {parts.hostname!r} is not a valid host name or IP address"
    if host not in allowed:
        return f"host {host!r} is not allowed: the operator adds the bot's host to {FORWARD_HOSTS_VARIABLE}"
    del port  # read only to refuse a port that is not a number
    return None


def shown_url(url: str | None) -> str | None:
    """The forward URL as shown: without its query, which may hold a token of the customer's."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


# -- forwarding in the background ------------------------------------------------------------------


class Forwarder:
    """Re-sends verified webhook requests after LINE was answered; failures go to a log table.

    LINE stops sending to a slow endpoint, so the 200 never waits for the customer's bot: each
    request is forwarded by a task of its own. The destination is checked again before each send,
    so a host the operator removed from :data:`FORWARD_HOSTS_VARIABLE` receives nothing more.
    """

    def __init__(
        self, db: Database, clock: Clock, allowed: frozenset[str], policy: ForwardPolicy = ForwardPolicy()
    ) -> None:
        self._db = db
        self._clock = clock
        self._allowed = allowed
        self._policy = policy
        self._tasks: set[asyncio.Task[ForwardResult]] = set()

    def on_verified(self, received: Received, body: bytes, signature: str) -> None:
        auth = received.authentication
        if auth.forward_webhook is None:
            return
        task = asyncio.get_running_loop().create_task(self._forward(auth.name, auth.forward_webhook, body, signature))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, name: str, url: str, body: bytes, signature: str) -> ForwardResult:
        problem = forward_url_problem(url, self._allowed)
        if problem:
            result = ForwardResult(False, 0, f"not sent: forward_webhook {problem}")
        else:
            async with aiohttp.ClientSession(trust_env=False) as session:
                result = await forward(aiohttp_post(session), self._clock, url, body, signature, self._policy)
        if not result.delivered:
            failure = {"authentication": name, "failed_at": self._clock.now(), "attempts": result.attempts}
            try:
                await asyncio.to_thread(self._db.run, "forward_failure_insert", {**failure, "error": result.last_error})
            except Exception:
                log.exception("could not record a failed webhook forward of %s", name)
        return result

    async def drain(self) -> None:
        """Wait for the forwards under way (tests, shutdown)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class FailureSummary:
    count: int
    last_at: float | None
    last_error: str | None


def failures(db: Database, authentication: str) -> FailureSummary:
    row = db.run("forward_failures_summary", {"authentication": authentication})[0]
    return FailureSummary(int(row["n"]), row["last_at"], row["last_error"])
