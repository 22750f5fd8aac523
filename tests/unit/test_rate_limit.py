"""Per-channel rate limiting: a small burst, then even pacing that keeps every 1-second window
within the rate (less the headroom kept for arrival jitter).

The limiter reads the event loop's clock, so these tests run on a loop whose clock only moves
when the test says so (:class:`ManualTimeLoop`), and count how many ``acquire()`` calls
complete without waiting. Nothing sleeps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from lineoa_export.delivery.rate_limit import HEADROOM, ChannelLimiter, RateLimits, pacing

T = TypeVar("T")


class ManualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is set by the test."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def run(main: Callable[[ManualTimeLoop], Awaitable[T]]) -> T:
    loop = ManualTimeLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(main(loop))


async def sent_in_one_second(loop: ManualTimeLoop, limiter: ChannelLimiter) -> int:
    """A greedy sender, the clock stepped by 1 ms: how many acquire() calls pass in [0 s, 1 s]."""
    start = loop.now
    sent = 0
    for step in range(1001):
        loop.now = start + step / 1000
        sent += await take_now(limiter)
    return sent


async def take_now(limiter: ChannelLimiter, limit: int = 100_000) -> int:
    """How many acquire() calls complete right now, without waiting (at most ``limit``)."""
    taken = 0
    while taken < limit:
        task = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)  # the task runs its first step: done unless it must wait
        if not task.done():
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            break
        task.result()
        taken += 1
    return taken


@pytest.mark.parametrize(("rate", "burst"), [(100, 5), (2000, 20), (10, 3), (10, 50), (3, 20)])
def test_only_the_burst_passes_at_once(rate: float, burst: int) -> None:
    expected = max(1, min(burst, int(rate * HEADROOM // 2)))

    async def main(loop: ManualTimeLoop) -> int:
        return await take_now(ChannelLimiter(rate, burst))

    assert run(main) == expected


def test_rate_100_burst_5_lets_exactly_5_through_then_the_6th_waits() -> None:
    async def main(loop: ManualTimeLoop) -> tuple[int, int, int]:
        limiter = ChannelLimiter(100, 5)
        first = await take_now(limiter)
        then = await take_now(limiter)
        loop.now += 1.5 / (100 * HEADROOM - 5)  # one and a half intervals: one more departure
        after = await take_now(limiter)
        return first, then, after

    assert run(main) == (5, 0, 1)


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(2000, 20), (2000, 2000), (100, 5), (100, 1), (10, 3), (10, 50), (3, 20), (2, 1), (370, 20), (60, 10)],
)
def test_burst_plus_steady_pace_fits_the_rate(rate: float, burst: int) -> None:
    interval, used_burst = pacing(rate, burst)

    assert used_burst >= 1
    assert used_burst + 1 / interval <= rate * HEADROOM * (1 + 1e-12) or used_burst == 1
    assert used_burst <= max(1, rate * HEADROOM / 2)  # the steady pace keeps at least half the rate


@pytest.mark.parametrize(("rate", "burst"), [(2000, 20), (100, 5), (10, 3), (10, 50), (5, 2), (2, 1)])
def test_no_one_second_window_sees_more_than_the_rate(rate: float, burst: int) -> None:
    async def main(loop: ManualTimeLoop) -> int:
        return await sent_in_one_second(loop, ChannelLimiter(rate, burst))

    sent = run(main)
    assert sent <= max(rate * HEADROOM, math.floor(rate))
    assert sent >= min(rate * HEADROOM - 2, rate - 1)  # and the limiter does not starve the channel either


def test_slow_down_halves_the_rate_then_recovers_after_the_cooldown() -> None:
    mono = [500.0]

    async def main(loop: ManualTimeLoop) -> list[object]:
        limiter = ChannelLimiter(100, 10, cooldown=10.0, monotonic=lambda: mono[0])
        seen: list[object] = [limiter.slowed]
        limiter.slow_down()
        seen.append(limiter.slowed)
        seen.append(await take_now(limiter))  # slowed: half the burst
        loop.now += 1.0
        seen.append(await sent_in_one_second(loop, limiter))  # slowed: half the rate
        mono[0] += 9.999
        loop.now += 10.0
        seen.append(await take_now(limiter, limit=1))
        seen.append(limiter.slowed)  # still within the cooldown
        mono[0] += 0.001
        await limiter.acquire()
        seen.append(limiter.slowed)  # the cooldown is over: back to normal
        seen.append(await take_now(limiter))  # the normal bucket kept its own level
        return seen

    before, after_slow, burst, one_second, _, still_slow, recovered, normal = run(main)
    assert before is False
    assert after_slow is True
    assert burst == 5
    assert 45 <= one_second <= 47  # half of 100, less the headroom
    assert still_slow is True
    assert recovered is False
    # A fresh normal burst of 10, less the two acquires above: the one made at the slowed pace
    # reserved a slot twice as long.
    assert normal == 7


def test_repeated_slow_down_extends_the_cooldown() -> None:
    mono = [0.0]

    async def main(loop: ManualTimeLoop) -> list[bool]:
        limiter = ChannelLimiter(100, 10, cooldown=10.0, monotonic=lambda: mono[0])
        limiter.slow_down()
        mono[0] = 8.0
        limiter.slow_down()  # a second 429 while slowed
        mono[0] = 12.0
        await limiter.acquire()
        first = limiter.slowed
        mono[0] = 18.0
        await limiter.acquire()
        return [first, limiter.slowed]

    assert run(main) == [True, False]


def test_slow_down_never_goes_below_one_per_second() -> None:
    async def main(loop: ManualTimeLoop) -> int:
        limiter = ChannelLimiter(1, 1, monotonic=lambda: 0.0)
        limiter.slow_down()
        return await take_now(limiter)

    assert run(main) == 1


def test_rate_limits_share_one_limiter_per_channel() -> None:
    limits = RateLimits(100, 5)

    a = limits.for_channel("1234567890")
    assert limits.for_channel("1234567890") is a
    b = limits.for_channel("auth:other")
    assert b is not a
    assert (a.rate, a.burst) == (100, 5)


def test_two_activations_on_one_channel_drain_one_bucket() -> None:
    limits = RateLimits(100, 5)

    async def main(loop: ManualTimeLoop) -> tuple[int, int, int]:
        first = await take_now(limits.for_channel("chan"), limit=3)
        second = await take_now(limits.for_channel("chan"))
        other = await take_now(limits.for_channel("another"))
        return first, second, other

    assert run(main) == (3, 2, 5)


def test_slowing_one_channel_leaves_others_alone() -> None:
    limits = RateLimits(100, 5)

    limits.for_channel("a").slow_down()

    assert limits.for_channel("a").slowed
    assert not limits.for_channel("b").slowed


def test_a_stalled_loop_cannot_release_more_than_the_budget_in_one_second() -> None:
    """Senders whose slots passed while the loop was stalled leave together, late; the window
    of real departures still holds no more than the budget."""

    async def main(loop: ManualTimeLoop) -> int:
        limiter = ChannelLimiter(100, 5)
        waiting = [asyncio.ensure_future(limiter.acquire()) for _ in range(120)]
        await asyncio.sleep(0)  # the burst of 5 leaves; the others reserve slots up to ~1.3 s ahead
        loop.now += 1.4  # the loop stalls past all of them
        for _ in range(5):
            await asyncio.sleep(0)
        done = sum(task.done() for task in waiting) - 5  # those that left after the stall
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        return done

    assert run(main) == int(100 * HEADROOM)
