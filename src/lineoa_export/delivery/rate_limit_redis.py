"""A channel's bucket shared by every worker process, through Redis.

LINE's rate limit belongs to the channel, not to a process: with several workers each
process's local bucket would let the channel go N times too fast. Here the bucket lives
in Redis and processes *lease tokens in blocks* (one round trip, ~150 µs, per block
rather than per push), then spend them locally.

Why the numbers work: Redis grants at most ``block + refill × t`` tokens in any span of
``t`` seconds (a bucket of capacity ``block``). A leased token must be spent within
``token_ttl`` seconds or it is thrown away, so the pushes in any 1-second window come
from grants made within ``1 + token_ttl`` seconds. With::

    refill = (rate − block) / (1 + token_ttl)

no 1-second window sees more than ``block + refill × (1 + token_ttl) = rate`` pushes.
The price is a sustained rate a few percent under the configured one.

When Redis cannot be reached the limiter falls back to a local bucket at a safe share of
the limit (the channel's limit divided by the live workers) and says so in the log and in
``degraded``; it asks Redis again every few seconds. No event is dropped meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions

from .rate_limit import ChannelLimiter

log = logging.getLogger(__name__)
#: Seconds on the local fallback before Redis is asked again.
REDIS_RETRY_SECONDS = 5.0

# KEYS[1]: the bucket hash, KEYS[2]: the slow-down flag.
# ARGV: refill per second, capacity, tokens wanted, now (seconds; "" = Redis TIME).
# Returns the tokens granted (0..wanted).
_LEASE = """
local refill = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
if redis.call('EXISTS', KEYS[2]) == 1 then refill = refill / 2 end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(capacity, tokens + (now - ts) * refill) end
local granted = math.min(want, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', math.max(now, ts))
redis.call('EXPIRE', KEYS[1], 60)
return granted
"""


class SharedChannelLimiter:
    """Same interface as :class:`~lineoa_export.delivery.rate_limit.ChannelLimiter`, bucket in Redis."""

    def __init__(
        self,
        redis: Any,
        channel_key: str,
        rate: float,
        *,
        token_ttl: float = 0.05,
        cooldown: float = 10.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        fallback: ChannelLimiter | None = None,
    ) -> None:
        self._redis = redis
        self._keys = [f"lineoa-export:bucket:{channel_key}", f"lineoa-export:slow:{channel_key}"]
        self.rate = rate
        # A block is 1/50 s of traffic: small enough to keep bursts short, big enough that
        # Redis sees 50 calls per second per channel instead of `rate`.
        self.block = max(1, int(rate // 50))
        self.refill = max(rate - self.block, 1.0) / (1 + token_ttl)
        self._token_ttl = token_ttl
        self._cooldown = cooldown
        self._clock = clock  # None: Redis TIME, one clock for every host
        self._sleep = sleep
        self._tokens = 0
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._script = redis.register_script(_LEASE)
        self._background: set[asyncio.Future[Any]] = set()
        self._channel_key = channel_key
        self._fallback = fallback or ChannelLimiter(rate, max(1, self.block))
        self._redis_retry_at = 0.0  # monotonic; > now while Redis is out of reach

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._redis_retry_at

    def set_fallback_rate(self, rate: float) -> None:
        self._fallback.set_rate(rate)

    @property
    def slowed(self) -> bool:
        return False  # shared state lives in Redis; see slow_down

    async def lease(self) -> int:
        now = "" if self._clock is None else repr(self._clock())
        granted = await self._script(keys=self._keys, args=[self.refill, self.block, self.block, now])
        return int(granted)

    def try_acquire(self) -> bool:
        if self._tokens > 0 and time.monotonic() < self._expires:
            self._tokens -= 1
            return True
        if self.degraded:
            return self._fallback.try_acquire()
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        if self.degraded:
            await self._fallback.acquire()
            return
        try:
            await self._acquire_shared()
        except (redis.exceptions.RedisError, OSError) as exc:
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning(
                "channel %s: Redis unreachable (%s); pacing locally at %.0f/s until it answers",
                self._channel_key,
                type(exc).__name__,
                self._fallback.rate,
            )
            await self._fallback.acquire()

    async def _acquire_shared(self) -> None:
        async with self._lock:
            while not (self._tokens > 0 and time.monotonic() < self._expires):
                granted = await self.lease()
                if granted:
                    self._tokens = granted
                    self._expires = time.monotonic() + self._token_ttl
                else:
                    await self._sleep(self.block / self.refill)
            self._tokens -= 1

    def slow_down(self) -> None:
        """Halve the channel's refill for every process for ``cooldown`` seconds."""
        self._fallback.slow_down()
        if self.degraded:
            return
        task = asyncio.ensure_future(self._slow_down_shared())
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)

    async def _slow_down_shared(self) -> None:
        # On an outage the local fallback slowed down already, and acquire notices the outage.
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self._redis.set(self._keys[1], "1", ex=max(1, int(self._cooldown)))
