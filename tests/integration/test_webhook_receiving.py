"""LINE's webhooks over real HTTP: the simulator signs and sends follow / unfollow events to
``serve``'s app, which checks the signature, stores each webhookEventId once, and keeps the newest
follow state per user (issue 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lineoa_export import authentications, followers
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import Pipeline, pipeline, serving, user_id
from lineoa_export.web.app import create_app
from lineoa_export.webhooks import signature_for

SECRET = "webhook-channel-secret-0123456789"


def with_secret(p: Pipeline, name: str = "hooked") -> authentications.Authentication:
    creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, SECRET)
    return authentications.create(
        p.ctx.db, p.ctx.vault, name=name, credentials=creds, api_url=p.sim.url, now=p.clock.now()
    )


async def sim_webhook(p: Pipeline, url: str, **spec: Any) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        body = {"url": url, "channel_secret": SECRET, **spec}
        async with session.post(p.sim.url + "/__sim/webhook", json=body) as answer:
            assert answer.status == 200, await answer.text()
            result: list[dict[str, Any]] = (await answer.json())["requests"]
            return result


def state(p: Pipeline, auth: authentications.Authentication, n: int) -> bool | None:
    found = followers.state_of(p.ctx.db, auth.channel_key, user_id(n))
    return None if found is None else found.following


def follow(n: int, type_: str = "follow", timestamp: int | None = None) -> dict[str, Any]:
    return {"type": type_, "user_id": user_id(n), **({"timestamp": timestamp} if timestamp is not None else {})}


def test_signed_follow_and_unfollow_set_the_state(tmp_path: Path, run: Any, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            auth = with_secret(p)
            async with serving(create_app(p.ctx)) as base:
                url = base + auth.webhook_path
                sent = await sim_webhook(p, url, events=[follow(1, "unfollow"), follow(2)])
                assert [r["status"] for r in sent] == [200, 200]
            assert state(p, auth, 1) is False and state(p, auth, 2) is True
            assert followers.blocked_count(p.ctx.db, auth.channel_key) == 1
            assert p.sim.record.blocked == {user_id(1)}

    run(scenario())


def test_duplicates_and_reordering_count_once_and_the_newest_wins(tmp_path: Path, run: Any, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            auth = with_secret(p)
            async with serving(create_app(p.ctx)) as base:
                url = base + auth.webhook_path
                # Blocked at t=1000, unblocked at t=2000; sent newest first, each twice (redelivered).
                events = [follow(1, "unfollow", 1000), follow(1, "follow", 2000)]
                sent = await sim_webhook(p, url, events=events, reverse=True, duplicates=1, redelivery=True)
                assert [r["status"] for r in sent] == [200] * 4
            assert state(p, auth, 1) is True
            seen = p.ctx.db.run("follower_get", {"channel_key": auth.channel_key, "user_id": user_id(1)})
            assert seen[0]["changed_at_ms"] == 2000
            rows = p.ctx.db.run(
                "webhook_event_seen",
                {"channel_key": auth.channel_key, "webhook_event_id": sent[0]["webhook_event_ids"][0], "now": 0.0},
            )
            assert rows == []  # already stored: a third copy would count for nothing

    run(scenario())


@pytest.mark.parametrize("signature", ["wrong", "missing"])
def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(tmp_path: Path, run: Any, signature: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            auth = with_secret(p)
            async with serving(create_app(p.ctx)) as base:
                sent = await sim_webhook(
                    p, base + auth.webhook_path, events=[follow(1, "unfollow")], signature=signature
                )
            assert [r["status"] for r in sent] == [401]
            assert state(p, auth, 1) is None
            assert p.ctx.db.run("followers_blocked_count", {"channel_key": auth.channel_key})[0]["n"] == 0

    run(scenario())


def test_unknown_names_and_tokens_without_a_secret_answer_like_a_bad_signature(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:  # its authentication "line" holds a token, no secret
            async with serving(create_app(p.ctx)) as base, aiohttp.ClientSession() as session:
                body = b'{"destination":"U0","events":[]}'
                headers = {"x-line-signature": signature_for(SECRET, body), "content-type": "application/json"}
                answers = []
                for name in ("line", "nobody"):
                    async with session.post(f"{base}/line/webhook/{name}", data=body, headers=headers) as answer:
                        answers.append((answer.status, await answer.json()))
            assert answers[0] == answers[1]
            assert answers[0][0] == 401

    run(scenario())


def test_the_empty_probe_answers_200_and_a_body_altered_by_one_byte_401(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            auth = with_secret(p)
            async with serving(create_app(p.ctx)) as base:
                probe = await sim_webhook(p, base + auth.webhook_path, events=[], one_request=True)
                async with aiohttp.ClientSession() as session:
                    body = b'{"destination":"U0","events":[]}'
                    headers = {"x-line-signature": signature_for(SECRET, body), "content-type": "application/json"}
                    altered = body.replace(b"U0", b"U1")
                    async with session.post(base + auth.webhook_path, data=altered, headers=headers) as answer:
                        altered_status = answer.status
            assert [r["status"] for r in probe] == [200]
            assert altered_status == 401

    run(scenario())
