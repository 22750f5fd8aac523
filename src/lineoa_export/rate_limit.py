"""One bucket per LINE channel, shared by every activation on it.

LINE's limit is "N requests per second" per channel. A plain leaky bucket that holds
N tokens lets 2N through in its first second (``AsyncLimiter(2000, 1)`` does exactly
that), so the bucket here holds only a small ``burst`` and drains at ``rate − burst``
per second: the most any 1-second window can see is ``burst + (rate − burst) = rate``.

A rate-limit 429 means someone else is spending the channel's tokens too, so the
channel slows to half its rate for ``cooldown`` seconds, then recovers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from aiolimiter import AsyncLimiter


class Limiter(Protocol):
    @property
    def slowed(self) -> bool: ...

    async def acquire(self) -> None: ...

    def slow_down(self) -> None: ...


def _limiter(rate: float, burst: int) -> AsyncLimiter:
    # The burst may take at most half the rate, so the steady drain keeps the other half.
    burst = max(1, min(burst, int(rate // 2)))
    # Tokens leave at drain/s after the first `burst`, so a half-open 1 s window sees at most
    # burst + drain − 1 ≤ rate. Under 2/s that means one token at a time, drained at the rate.
    drain = rate - burst if rate - burst >= 1 else rate
    # AsyncLimiter(max_rate, time_period) holds max_rate and drains max_rate/time_period per second.
    return AsyncLimiter(burst, burst / drain)


class ChannelLimiter:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        cooldown: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._normal = _limiter(rate, burst)
        self._current = self._normal
        self._slow_until = 0.0

    @property
    def slowed(self) -> bool:
        return self._current is not self._normal

    async def acquire(self) -> None:
        if self._current is not self._normal and self._monotonic() >= self._slow_until:
            self._current = self._normal
        await self._current.acquire()

    def slow_down(self) -> None:
        """LINE said the bucket is empty: halve our rate for a while."""
        now = self._monotonic()
        if self._current is self._normal:
            self._current = _limiter(max(1.0, self.rate / 2), max(1, self.burst // 2))
        self._slow_until = now + self.cooldown


class RateLimits:
    """The limiters of one process, by channel key.

    With ``redis_url`` the buckets live in Redis and are shared by every worker process
    (see shared_rate_limit.py); without it they are local to this process.
    """

    def __init__(self, rate: float, burst: int, redis_url: str | None = None) -> None:
        self._rate = rate
        self._burst = burst
        self._redis: Any = None
        if redis_url:
            import redis.asyncio

            self._redis = redis.asyncio.from_url(redis_url)
        self._by_channel: dict[str, Limiter] = {}

    def for_channel(self, channel_key: str) -> Limiter:
        limiter = self._by_channel.get(channel_key)
        if limiter is None:
            limiter = self._by_channel[channel_key] = self._make(channel_key)
        return limiter

    def _make(self, channel_key: str) -> Limiter:
        if self._redis is None:
            return ChannelLimiter(self._rate, self._burst)
        from .shared_rate_limit import SharedChannelLimiter

        return SharedChannelLimiter(self._redis, channel_key, self._rate)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
