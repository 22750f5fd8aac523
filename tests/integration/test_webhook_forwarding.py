"""Forwarding LINE's webhooks to the customer's own bot (issue 9): every verified request is re-sent,
body and x-line-signature untouched, with retries and a log of failures, only to a host the operator
allowed (LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS); refused requests are never forwarded."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lineoa_export import authentications
from lineoa_export.errors import InvalidInput
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import Pipeline, pipeline, serving, user_id
from lineoa_export.web.app import create_app
from lineoa_export.webhook_forward import failures
from lineoa_export.webhooks import signature_is_valid

SECRET = "webhook-channel-secret-0123456789"


@dataclass
class Bot:
    """The customer's bot: records what it receives, answers the statuses given, then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), request.headers.get("x-line-signature")))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@contextlib.asynccontextmanager
async def running_bot(*statuses: int) -> AsyncIterator[Bot]:
    bot = Bot(list(statuses))
    app = web.Application()
    app.router.add_post("/callback", bot.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    bot.url = f"http://127.0.0.1:{port}/callback?token=bots-own"
    try:
        yield bot
    finally:
        await runner.cleanup()


def hooked(p: Pipeline, forward: str | None) -> None:
    creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, SECRET)
    authentications.create(p.ctx.db, p.ctx.vault, name="hooked", credentials=creds, api_url=p.sim.url, now=0.0)
    if forward:
        authentications.set_forward_webhook(p.ctx.db, "hooked", forward, allowed=frozenset({"127.0.0.1"}))


async def send(p: Pipeline, url: str, **spec: Any) -> list[int]:
    body = {"url": url, "channel_secret": SECRET, "events": [{"type": "unfollow", "user_id": user_id(1)}], **spec}
    async with aiohttp.ClientSession() as session, session.post(p.sim.url + "/__sim/webhook", json=body) as answer:
        return [r["status"] for r in (await answer.json())["requests"]]


def test_a_verified_request_reaches_the_bot_untouched_after_a_retry(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, allowed_forward_hosts="127.0.0.1") as p, running_bot(500) as bot:
            hooked(p, bot.url)
            app = create_app(p.ctx)
            async with serving(app) as base:
                assert await send(p, base + "/line/webhook/hooked") == [200]
                await app.state.forwarder.drain()
            assert len(bot.received) == 2 and bot.received[0] == bot.received[1]
            body, signature = bot.received[0]
            assert signature_is_valid(SECRET, body, signature)  # the bot checks it with the same secret
            assert failures(p.ctx.db, "hooked").count == 0
            shown = authentications.get(p.ctx.db, "hooked").public()["forward_webhook"]
            assert shown.endswith("/callback?…") and "bots-own" not in shown

    run(scenario())


def test_a_bot_that_keeps_failing_is_logged_and_a_refused_request_is_never_forwarded(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, allowed_forward_hosts="127.0.0.1") as p, running_bot(*[503] * 10) as bot:
            hooked(p, bot.url)
            app = create_app(p.ctx)
            async with serving(app) as base:
                assert await send(p, base + "/line/webhook/hooked", signature="wrong") == [401]
                await app.state.forwarder.drain()
                assert bot.received == []
                assert await send(p, base + "/line/webhook/hooked") == [200]  # LINE is answered first
                await app.state.forwarder.drain()
            assert len(bot.received) == 4  # the first try and 3 retries, with backoff
            logged = failures(p.ctx.db, "hooked")
            assert (logged.count, logged.last_error) == (1, "HTTP 503")

    run(scenario())


def test_only_hosts_the_operator_allowed_receive_forwards(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p, running_bot() as bot:  # no LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS
            hooked(p, None)
            with pytest.raises(InvalidInput) as refused:
                authentications.set_forward_webhook(p.ctx.db, "hooked", bot.url, allowed=p.ctx.settings.forward_hosts)
            assert [x.path for x in refused.value.problems] == ["forward_webhook"]
            assert "LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS" in str(refused.value)
            for bad in ("http://user:pw@127.0.0.1/x", "ftp://127.0.0.1/x", "http://127.0.0.1/x#frag"):
                with pytest.raises(InvalidInput):
                    authentications.set_forward_webhook(p.ctx.db, "hooked", bad, allowed=frozenset({"127.0.0.1"}))
            # Stored while allowed, then the operator removed the host: nothing is sent there any more.
            authentications.set_forward_webhook(p.ctx.db, "hooked", bot.url, allowed=frozenset({"127.0.0.1"}))
            app = create_app(p.ctx)
            async with serving(app) as base:
                assert await send(p, base + "/line/webhook/hooked") == [200]
                await app.state.forwarder.drain()
            assert bot.received == []
            assert failures(p.ctx.db, "hooked").last_error.startswith("not sent: forward_webhook host")

    run(scenario())
