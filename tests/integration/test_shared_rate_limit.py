"""Rate-limit buckets shared by worker processes through the real Redis server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.exceptions

from lineoa_export.clock import SystemClock
from lineoa_export.delivery.rate_limit_redis import SharedChannelLimiter
from lineoa_export.testing import pipeline, user_id

REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def channel() -> Iterator[str]:
    yield "test-" + uuid.uuid4().hex


def test_processes_sharing_a_channel_never_exceed_its_rate_in_any_window(channel: str) -> None:
    rate, ttl = 2000.0, 0.05

    async def scenario() -> list[tuple[float, int]]:
        client = redis.asyncio.from_url(REDIS_URL)
        clock = Clock()
        workers = [SharedChannelLimiter(client, channel, rate, token_ttl=ttl, clock=clock) for _ in range(3)]
        grants: list[tuple[float, int]] = []
        for _ in range(1500):  # 3 s of fake time, every worker asks for a block every 2 ms
            for w in workers:
                granted = await w.lease()
                if granted:
                    grants.append((clock.now, granted))
            clock.now += 0.002
        await client.aclose()
        return grants

    grants = asyncio.run(scenario())
    # Tokens are spent within `ttl` of their grant, so pushes in [t, t+1) come from grants in [t-ttl, t+1).
    worst = max(sum(n for at, n in grants if start - ttl <= at < start + 1.0) for start, _ in grants)
    total = sum(n for _, n in grants)
    print(f"granted {total} in 3 s to 3 processes; worst 1-second window could see {worst}")
    assert worst <= rate
    assert total >= 0.9 * rate * 3  # the price of the guarantee is small


def test_a_block_is_granted_once_then_refills_at_the_shared_rate(channel: str) -> None:
    async def scenario() -> tuple[int, int, int, int]:
        client = redis.asyncio.from_url(REDIS_URL)
        clock = Clock()
        a = SharedChannelLimiter(client, channel, 500.0, token_ttl=0.0, clock=clock)
        b = SharedChannelLimiter(client, channel, 500.0, token_ttl=0.0, clock=clock)
        first, second = await a.lease(), await b.lease()  # the bucket holds one block (10)
        clock.now += 0.01  # 490/s × 0.01 s = 4.9 tokens
        third = await b.lease()
        await client.set(f"lineoa-export:slow:{channel}", "1")  # a rate-limit 429 elsewhere
        clock.now += 0.02  # halved: 245/s × 0.02 s = 4.9 (+0.9 left over)
        fourth = await a.lease()
        await client.aclose()
        return first, second, third, fourth

    assert asyncio.run(scenario()) == (10, 0, 4, 5)


def test_acquire_spends_leased_tokens_locally(channel: str) -> None:
    async def scenario() -> int:
        client = redis.asyncio.from_url(REDIS_URL)
        limiter = SharedChannelLimiter(client, channel, 1000.0)
        calls = 0
        original = limiter.lease

        async def counting_lease() -> int:
            nonlocal calls
            calls += 1
            return await original()

        limiter.lease = counting_lease  # type: ignore[method-assign]
        for _ in range(20):  # one block is 20 tokens at 1000/s
            await limiter.acquire()
        await client.aclose()
        return calls

    assert asyncio.run(scenario()) == 1  # one Redis round trip for 20 pushes


# -- Redis going away mid-run ------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (so it can be killed), on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.02)  # the server is starting; nothing to wait on but the port
    client.close()
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait()


def test_when_redis_goes_away_workers_keep_delivering_at_a_safe_local_rate(
    tmp_path: Path, own_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, server = own_redis
    rate = 400.0

    async def scenario() -> None:
        async with pipeline(tmp_path, clock=SystemClock(), redis_url=url, rate_limit=rate) as p:
            p.create_activation()
            p.trigger([{"event_id": f"r{i}", "line_user_id": user_id(i), "name": "n"} for i in range(600)])
            worker = p.worker()
            seen_degraded: list[list[str]] = []

            def on_result(claimed: Any, result: Any, outcome: Any) -> None:
                if p.sim.record.accepted_total >= 100 and server.poll() is None:
                    server.kill()  # Redis is gone: the rest must still go out, within the limit
                    server.wait()
                if worker.rate_limit_degraded():
                    seen_degraded.append(worker.rate_limit_degraded())

            worker._listener = on_result
            await worker.run(until_idle=True)
            assert p.sim.record.accepted_total == 600
            assert {e["state"] for e in p.log()} == {"delivered"}
            assert seen_degraded, "the worker never said its shared limit was unreachable"
            assert p.sim.record.max_accepted_in_any_window(1.0) <= rate

    asyncio.run(scenario())
