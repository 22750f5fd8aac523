"""One bucket per LINE channel, shared by every activation on it.

LINE's limit is "N requests per second" per channel, counted where the requests *arrive*.
A plain bucket that holds N tokens lets 2N through in its first second
(``aiolimiter.AsyncLimiter(2000, 1)`` does exactly that), so the pacing here is sized on
purpose:

* ``budget = rate × HEADROOM``: pushes leave on time but can arrive bunched (a busy event
  loop, a descheduled process); 5 % headroom absorbs about 50 ms of such jitter so the
  *arrivals* stay within the rate too;
* a small ``burst`` (at most half the budget) leaves at once, then one push every
  ``1 / (budget − burst)`` seconds: any half-open 1-second window sees at most
  ``burst + (budget − burst) = budget`` departures.

It is the generic cell rate algorithm (GCRA): each ``acquire`` reserves the next departure
slot and sleeps once until it. We use it rather than aiolimiter because aiolimiter wakes
every waiter on each timeout to re-check capacity, which under 100+ waiting senders cost
more CPU than the pushes, and its bucket size cannot be smaller than one second of rate
without changing its period.

A rate-limit 429 means someone else is spending the channel's tokens too, so the channel
slows to half its rate for ``cooldown`` seconds, then recovers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, Protocol

HEADROOM = 0.95


class Limiter(Protocol):
    @property
    def slowed(self) -> bool: ...

    @property
    def degraded(self) -> bool:
        """True while a shared bucket is out of reach and a safe local share is used instead."""
        ...

    def try_acquire(self) -> bool: ...

    async def acquire(self) -> None: ...

    def slow_down(self) -> None: ...


def pacing(rate: float, burst: int) -> tuple[float, int]:
    """(seconds between departures after the burst, burst) for a channel limited to ``rate``/s."""
    budget = rate * HEADROOM
    burst = max(1, min(burst, int(budget // 2)))
    steady = budget - burst if budget - burst >= 1 else budget  # under ~2/s: one at a time
    return 1.0 / steady, burst


class ChannelLimiter:
    """GCRA pacing for one channel, on the event loop's clock (``monotonic`` times the cooldown)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        cooldown: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._slow_until = float("-inf")
        self._tat = float("-inf")  # theoretical arrival time of the next push
        self.set_rate(rate)

    def set_rate(self, rate: float) -> None:
        """Pace at ``rate`` from now on (a share of the channel's limit changed)."""
        self.rate = rate
        self._normal = pacing(rate, self.burst)
        self._slow = pacing(max(1.0, rate / 2), max(1, self.burst // 2))
        old = list(getattr(self, "_departures", ()))
        self._departures: deque[float] = deque(old, maxlen=max(1, int(rate * HEADROOM)))

    @property
    def slowed(self) -> bool:
        return self._monotonic() < self._slow_until

    @property
    def degraded(self) -> bool:
        return False

    def try_acquire(self) -> bool:
        """Take a departure slot if one is free right now (the common case, no coroutine)."""
        interval, burst = self._slow if self.slowed else self._normal
        now = asyncio.get_running_loop().time()
        tat = max(self._tat, now)
        window = self._departures
        if tat - (burst - 1) * interval - now > 1e-9 or (len(window) == window.maxlen and now - window[0] < 1.0):
            return False
        self._tat = tat + interval
        window.append(now)
        return True

    async def acquire(self) -> None:
        if not self.try_acquire():
            await self._paced()
            await self._within_window()

    async def _paced(self) -> None:
        interval, burst = self._slow if self.slowed else self._normal
        now = asyncio.get_running_loop().time()
        tat = max(self._tat, now)
        wait = tat - (burst - 1) * interval - now
        self._tat = tat + interval
        if wait <= 1e-9:  # float dust must not turn the last burst slot into a wait
            return
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            if self._tat == tat + interval:  # nobody reserved after us: give the slot back
                self._tat = tat
            raise

    async def _within_window(self) -> None:
        """The backstop: count real departures, not reservations.

        Pacing reserves slots on schedule, but a stalled event loop releases the senders of
        several slots at once, late. Keeping the last ``budget`` departure times and waiting
        until the oldest is a second old bounds every 1-second window of actual departures.
        """
        loop = asyncio.get_running_loop()
        window = self._departures
        # A timed wait is the point here: the slot frees at a known moment, no event will tell us.
        while len(window) == window.maxlen and (age := loop.time() - window[0]) < 1.0:  # noqa: ASYNC110
            await asyncio.sleep(1.0 - age)
        window.append(loop.time())

    def slow_down(self) -> None:
        """LINE said the bucket is empty: halve our rate for a while."""
        self._slow_until = self._monotonic() + self.cooldown


Sharing = Literal["redis", "divided", "single"]


def sharing(redis_url: str | None, *, shared_store: bool) -> Sharing:
    """How the processes on one store share a channel's limit: one bucket in Redis; without Redis on
    a shared store (PostgreSQL), the limit divided among the live workers; else one process alone."""
    return "redis" if redis_url else "divided" if shared_store else "single"


class RateLimits:
    """The limiters of one process, by channel key.

    With ``redis_url`` the buckets live in Redis and are shared by every worker process
    (see rate_limit_redis.py); without it they are local to this process. Local buckets
    pace at ``rate / share`` where ``share`` is the number of live workers when the store
    is shared (PostgreSQL) and Redis is not: several processes must never spend the whole
    channel limit each. The same share is the fallback while Redis is unreachable.
    """

    def __init__(self, rate: float, burst: int, redis_url: str | None = None, *, shared_store: bool = False) -> None:
        self._rate = rate
        self._burst = burst
        self._redis: Any = None
        self._share = 1
        self._divide_local = sharing(redis_url, shared_store=shared_store) == "divided"
        if redis_url:
            import redis.asyncio

            self._redis = redis.asyncio.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._by_channel: dict[str, Limiter] = {}

    @property
    def local_rate(self) -> float:
        """What one process may spend on its own: the limit divided among the live workers."""
        return self._rate / self._share

    def rescale(self, live_workers: int) -> None:
        """The number of live workers changed: local shares follow it."""
        share = max(1, live_workers)
        if share == self._share:
            return
        self._share = share
        for limiter in self._by_channel.values():
            if isinstance(limiter, ChannelLimiter) and self._divide_local:
                limiter.set_rate(self.local_rate)
            elif hasattr(limiter, "set_fallback_rate"):
                limiter.set_fallback_rate(self.local_rate)

    def for_channel(self, channel_key: str) -> Limiter:
        limiter = self._by_channel.get(channel_key)
        if limiter is None:
            limiter = self._by_channel[channel_key] = self._make(channel_key)
        return limiter

    def degraded(self) -> list[str]:
        """Channels whose shared bucket is out of reach right now."""
        return [key for key, limiter in self._by_channel.items() if limiter.degraded]

    def _make(self, channel_key: str) -> Limiter:
        if self._redis is None:
            return ChannelLimiter(self.local_rate if self._divide_local else self._rate, self._burst)
        from .rate_limit_redis import SharedChannelLimiter

        fallback = ChannelLimiter(self.local_rate, self._burst)
        return SharedChannelLimiter(self._redis, channel_key, self._rate, fallback=fallback)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
