"""A token bucket, the way LINE limits requests per channel and endpoint.

It holds at most ``burst`` tokens (LINE: one second's worth), refills smoothly at ``rate`` tokens
per second and starts full. A request takes one token or is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Tolerance for float rounding in the refill (0.1 s x 10/s must give a whole token).
_EPSILON = 1e-9


class TokenBucket:
    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(rate if burst is None else burst)
        if self.burst <= 0:
            raise ValueError("burst must be positive")
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def try_take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if the bucket holds them; False (nothing taken) otherwise."""
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self._last = now
        if tokens >= n - _EPSILON:
            self._tokens = tokens - n
            return True
        self._tokens = tokens
        return False

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        return min(self.burst, self._tokens + (self._clock() - self._last) * self.rate)

    def reconfigure(self, rate: float, burst: float | None = None) -> None:
        """Change rate and size, keeping the tokens held (capped at the new size)."""
        current = self.tokens
        self._last = self._clock()
        self.rate = float(rate)
        self.burst = float(rate if burst is None else burst)
        self._tokens = min(current, self.burst)

    def refill(self) -> None:
        """Fill the bucket to the brim."""
        self._tokens = self.burst
        self._last = self._clock()
