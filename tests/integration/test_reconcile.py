"""``reconcile``: LINE's count of a day's pushes (UTC+9) next to the pushes we recorded as
accepted that day; the JST day boundary; every verdict; results stored."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import aiohttp
import pytest

from lineoa_export.errors import InvalidInput
from lineoa_export.insight import reconcile
from lineoa_export.line_time import JST
from lineoa_export.operations import Operations
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import pipeline, user_id


def jst(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JST).timestamp()


async def deliver(p, first: int, count: int) -> None:  # type: ignore[no-untyped-def]
    p.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(first, first + count)])
    await p.run_worker()


async def push_from_elsewhere(p, count: int) -> None:  # type: ignore[no-untyped-def]
    """Someone else pushes on the same channel (another tool with the same token)."""
    headers = {"Authorization": f"Bearer {DEFAULT_ACCESS_TOKEN}"}
    async with aiohttp.ClientSession() as s:
        for n in range(count):
            body = {"to": user_id(1000 + n), "messages": [{"type": "text", "text": "hi"}]}
            async with s.post(p.sim.url + "/v2/bot/message/push", json=body, headers=headers) as r:
                assert r.status == 200


def test_a_push_at_235959_and_one_at_000000_jst_fall_on_their_own_days(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.clock.advance(jst("2027-01-20 23:59:59") - p.clock.now())
            await deliver(p, 0, 20)
            p.clock.advance(jst("2027-01-21 00:00:00") - p.clock.now())
            await deliver(p, 100, 21)
            p.clock.advance(jst("2027-01-22 09:00:00") - p.clock.now())
            ops = Operations(p.ctx)
            before = await ops.reconcile("line", "2027-01-20")
            assert (before.verdict, before.line_count, before.our_count) == ("equal", 20, 20)
            after = await ops.reconcile("line")  # yesterday in Japan: the 21st
            assert (after.day, after.verdict, after.line_count, after.our_count) == (date(2027, 1, 21), "equal", 21, 21)

    run(scenario())


def test_line_counted_more_fewer_not_ready_and_unavailable(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            ops = Operations(p.ctx)
            p.clock.advance(jst("2027-01-20 10:00:00") - p.clock.now())
            await deliver(p, 0, 20)
            await push_from_elsewhere(p, 3)
            today = await ops.reconcile("line", "2027-01-20")
            assert (today.verdict, today.line_status, today.line_count) == ("not_ready", "unready", None)
            p.clock.advance(86_400.0)
            more = await ops.reconcile("line", "2027-01-20")
            assert (more.verdict, more.line_count, more.our_count) == ("line_more", 23, 20)
            assert "someone else pushes on this channel" in more.says
            await deliver(p, 200, 25)  # on the 21st
            del p.sim.record.accepted[-1]  # an acceptance LINE did not count
            p.clock.advance(86_400.0)
            fewer = await ops.reconcile("line", "2027-01-21")
            assert (fewer.verdict, fewer.line_count, fewer.our_count) == ("line_fewer", 24, 25)
            await deliver(p, 300, 5)  # on the 22nd: under 20, LINE does not tell
            p.clock.advance(86_400.0)
            few = await ops.reconcile("line", "2027-01-22")
            assert (few.verdict, few.line_status, few.our_count) == ("unavailable", "unavailable_for_privacy", 5)
            stored = {r.day.isoformat(): r.verdict for r in ops.reconciliations("line")}
            assert stored == {"2027-01-20": "line_more", "2027-01-21": "line_fewer", "2027-01-22": "unavailable"}
            assert [r.verdict for r in reconcile.latest(p.ctx.db)] == ["unavailable"]

    run(scenario())


def test_a_bad_day_is_refused_naming_the_field(tmp_path: Path, run) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            for bad in ("2027-02-30", "20270101", "yesterday"):
                with pytest.raises(InvalidInput) as exc:
                    await Operations(p.ctx).reconcile("line", bad)
                assert [problem.path for problem in exc.value.problems] == ["date"]

    run(scenario())


def test_the_verdicts() -> None:
    assert reconcile.verdict_of("ready", 10, 10) == "equal"
    assert reconcile.verdict_of("ready", 11, 10) == "line_more"
    assert reconcile.verdict_of("ready", 9, 10) == "line_fewer"
    assert reconcile.verdict_of("unready", None, 10) == "not_ready"
    assert reconcile.verdict_of("unavailable_for_privacy", None, 3) == "unavailable"
    assert reconcile.verdict_of("out_of_service", None, 0) == "unavailable"
