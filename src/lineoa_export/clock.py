"""Time, injectable.

Everything that waits or stamps a time takes a :class:`Clock`, so tests advance a
:class:`FakeClock` instead of sleeping (the idea comes from stamina's test mode).
Times are POSIX seconds (float, UTC).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Current wall-clock time in POSIX seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (or less, if woken by the implementation)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to.

    ``sleep`` advances the clock by the requested amount at once and yields control
    once, so a worker waiting for a retry 8 seconds away resumes immediately with
    ``now()`` exactly 8 seconds later. ``advance`` moves time by hand.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        self._now += seconds
        await asyncio.sleep(0)
