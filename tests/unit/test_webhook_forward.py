"""Forwarding: untouched body and signature, retries with backoff, failures reported."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lineoa_export.clock import FakeClock
from lineoa_export.webhook_forward import ForwardPolicy, ForwardResult, forward


class Bot:
    def __init__(self, answers: list[int | Exception]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, bytes, dict[str, str], float]] = []

    async def __call__(self, url: str, body: bytes, headers: dict[str, str], limit_seconds: float) -> int:
        self.seen.append((url, body, headers, limit_seconds))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


POLICY = ForwardPolicy(attempts=3, timeout_seconds=2.5, first_backoff_seconds=1.0)


def run(bot: Bot, clock: FakeClock) -> ForwardResult:
    return asyncio.run(forward(bot, clock, "https://bot.example/hook?t=secret", b'{"a":1}', "SIG=", POLICY))


def test_body_and_signature_forwarded_untouched() -> None:
    bot, clock = Bot([200]), FakeClock()
    result = run(bot, clock)
    assert result.delivered and result.attempts == 1
    _, body, headers, timeout = bot.seen[0]
    assert (body, headers["x-line-signature"], timeout) == (b'{"a":1}', "SIG=", 2.5)
    assert clock.slept == []


def test_retries_with_backoff_then_succeeds() -> None:
    bot, clock = Bot([TimeoutError(), 503, 204]), FakeClock()
    result = run(bot, clock)
    assert (result.delivered, result.attempts) == (True, 3)
    assert clock.slept == [1.0, 2.0]


def test_gives_up_and_logs_without_the_url_secret(caplog: pytest.LogCaptureFixture) -> None:
    bot, clock = Bot([500, ConnectionRefusedError("refused"), 404]), FakeClock()
    with caplog.at_level(logging.WARNING):
        result = run(bot, clock)
    assert (result.delivered, result.last_error) == (False, "HTTP 404")
    assert len(caplog.records) == 3
    assert "bot.example" in caplog.text and "secret" not in caplog.text
