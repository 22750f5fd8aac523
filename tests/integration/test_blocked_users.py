"""Blocked users are not pushed (issue 9): LINE answers 200 to a push to someone who blocked the
account, so the simulator's unfollow webhook, sent over real HTTP to ``serve``'s app, is what makes
the worker record the event ``suppressed`` with no push; a new follow makes it push again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from lineoa_export import authentications
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import Pipeline, pipeline, serving, user_id
from lineoa_export.web.app import create_app

SECRET = "webhook-channel-secret-0123456789"


async def announce(p: Pipeline, url: str, *events: tuple[str, int]) -> None:
    """The simulator sends LINE's follow / unfollow webhooks for (type, user number)."""
    spec = {
        "url": url,
        "channel_secret": SECRET,
        "events": [{"type": kind, "user_id": user_id(n)} for kind, n in events],
    }
    async with aiohttp.ClientSession() as session, session.post(p.sim.url + "/__sim/webhook", json=spec) as answer:
        assert answer.status == 200
        assert [r["status"] for r in (await answer.json())["requests"]] == [200] * len(events)


def with_secret(p: Pipeline) -> None:
    authentications.delete(p.ctx.db, p.auth)
    creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, SECRET)
    authentications.create(p.ctx.db, p.ctx.vault, name=p.auth, credentials=creds, api_url=p.sim.url, now=p.clock.now())


def by_id(p: Pipeline) -> dict[str, dict[str, Any]]:
    return {e["event_id"]: e for e in p.log()}


def test_an_unfollowed_recipient_is_suppressed_without_a_push_and_pushed_again_after_a_follow(
    tmp_path: Path, run: Any, db_url: str
) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            with_secret(p)
            p.create_activation()
            async with serving(create_app(p.ctx)) as base:
                url = base + "/line/webhook/" + p.auth
                await announce(p, url, ("unfollow", 1), ("follow", 2))
                blocked = authentications.get(p.ctx.db, p.auth)
                assert blocked.blocked_users == 1 and blocked.public()["blocked_users"] == 1
                p.trigger([{"event_id": f"e{n}", "line_user_id": user_id(n), "name": "Ann"} for n in (1, 2, 3)])
                await p.run_worker()
                log = by_id(p)
                assert log["e1"]["state"] == "suppressed" and log["e1"]["delivered"] is False
                assert log["e1"]["error"].startswith("blocked the account at 20")
                assert log["e1"]["attempts"] == 0
                assert log["e2"]["state"] == log["e3"]["state"] == "delivered"
                assert p.sim.record.pushes_to(user_id(1)) == []
                assert p.sim.record.pushes_to_blocked == 0

                p.clock.advance(60)  # the follow comes later: its timestamp is newer
                await announce(p, url, ("follow", 1))
                assert authentications.get(p.ctx.db, p.auth).blocked_users == 0
                p.trigger([{"event_id": "e1-again", "line_user_id": user_id(1), "name": "Ann"}])
                await p.run_worker()
                assert by_id(p)["e1-again"]["state"] == "delivered"
                assert len(p.sim.record.pushes_to(user_id(1))) == 1

    run(scenario())


def test_an_event_queued_before_the_unfollow_arrived_is_not_pushed_either(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            with_secret(p)
            p.create_activation()
            p.trigger([{"event_id": "early", "line_user_id": user_id(1), "name": "Ann"}])
            async with serving(create_app(p.ctx)) as base:
                await announce(p, base + "/line/webhook/" + p.auth, ("unfollow", 1))
            await p.run_worker()
            assert by_id(p)["early"]["state"] == "suppressed"
            assert p.sim.record.accepted == []

    run(scenario())


def test_claims_find_blocked_recipients_by_key_however_many_blocked_the_channel(tmp_path: Path) -> None:
    # A channel with many blocked followers must not cost each claimed event a read of all of them
    # (SQLite cannot use an index for a subquery naming the updated row): every look-up of followers
    # on the claim's path is a search by key, never a scan.
    from lineoa_export.store.database import open_database, query

    db = open_database(f"sqlite:///{tmp_path / 'plans.db'}")
    try:
        conn = db._conn()
        params = {"now": 0.0, "until": 1.0, "worker": "w", "alive_since": 0.0, "channel_key": "c", "limit": 1}
        for name, args in (
            ("claim_due", params),
            ("followers_blocked_among_sqlite", {"channel_key": "c", "user_ids": "[]"}),
        ):
            plan = [r["detail"] for r in conn.execute("EXPLAIN QUERY PLAN " + query(name, "sqlite"), args)]
            on_followers = [step for step in plan if " f " in f" {step} " or "followers" in step]
            assert on_followers and all(step.startswith("SEARCH") for step in on_followers), (name, plan)
    finally:
        db.close()
