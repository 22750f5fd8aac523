"""Aggregation units on pushes: every push of an activation carries its unit, LINE's 1,000 a
month are checked before a unit's first push, and a withheld unit is said, not lost silently."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import orjson

from lineoa_export import activations, authentications
from lineoa_export.delivery import units
from lineoa_export.delivery.channel import LineChannel
from lineoa_export.delivery.line_client import AiohttpTransport, LineClient
from lineoa_export.delivery.units import UnitBudget
from lineoa_export.line_time import JST, line_month
from lineoa_export.operations import Operations
from lineoa_export.simulator import ChannelConfig, SimulatorOptions
from lineoa_export.simulator.options import DEFAULT_CHANNEL_ID
from lineoa_export.store.database import open_database
from lineoa_export.testing import pipeline, user_id

INFO = "aggregation_info"


def jst(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JST).timestamp()


def sent_units(p) -> list[list[str] | None]:  # type: ignore[no-untyped-def]
    return [orjson.loads(a.body).get("customAggregationUnits") for a in p.sim.record.accepted]


def info_requests(p) -> int:  # type: ignore[no-untyped-def]
    return sum(p.sim.record.status_by_endpoint.get(INFO, {}).values())


def test_every_push_carries_the_unit_and_line_is_asked_once_a_month(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.clock.advance(jst("2027-01-31 23:00:00") - p.clock.now())
            p.create_activation("spring-sale")
            p.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(5)], "spring-sale")
            await p.run_worker()
            unit = activations.derived_unit("spring-sale")
            assert sent_units(p) == [[unit]] * 5
            assert [a.aggregation_unit for a in p.sim.record.accepted] == [unit] * 5  # LINE kept it
            assert info_requests(p) == 1
            status = Operations(p.ctx).unit_status("spring-sale")
            assert status.state == "in_use" and status.month == "2027-01"
            p.clock.advance(3600.0)  # February in Japan: a new month, asked again
            p.trigger([{"line_user_id": user_id(9), "name": "Bo"}], "spring-sale")
            await p.run_worker()
            assert info_requests(p) == 2
            assert Operations(p.ctx).unit_status("spring-sale").month == "2027-02"

    run(scenario())


def test_when_the_months_1000_units_are_used_pushes_go_without_and_say_so(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(prior_aggregation_units=1000)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            p.create_activation("late")
            p.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(3)], "late")
            await p.run_worker()
            assert [e["state"] for e in p.log("late")] == ["delivered"] * 3
            assert sent_units(p) == [None, None, None]  # sent, without a unit LINE would drop
            status = Operations(p.ctx).unit_status("late")
            assert status.state == "withheld"
            assert "1,000 units this month are used up" in status.describe()
            rows = p.ctx.db.run("aggregation_units_withheld", {"month": status.month})
            assert [(r["activation"], r["unit"]) for r in rows] == [("late", "late")]

    run(scenario())


def test_a_unit_already_among_a_full_months_units_is_still_used(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(prior_aggregation_units=999)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            # Another sender on this channel used "first" this month, the 1,000th unit: LINE lists it.
            month = line_month(p.clock.now())
            assert p.sim.record.use_unit(DEFAULT_CHANNEL_ID, month, "first", prior=999, limit=1000)
            p.create_activation("first")
            p.trigger([{"line_user_id": user_id(1), "name": "Ann"}], "first")
            await p.run_worker()
            assert sent_units(p) == [["first"]]
            status = Operations(p.ctx).unit_status("first")
            assert status.state == "in_use" and "already among" in status.describe()

    run(scenario())


def test_a_retry_sends_the_same_bytes_as_the_first_attempt(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(1)
    options = SimulatorOptions(script={u: [503]}, channels=[ChannelConfig(prior_aggregation_units=1000)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e1", "line_user_id": u, "name": "Ann"}])
            await p.run_worker()
            assert [a["status_code"] for a in p.event("e1")["attempt_log"]] == [503, 200]
            assert p.sim.record.stats()["key_body_mismatches"] == 0
            assert sent_units(p) == [None]

    run(scenario())


def test_no_unit_means_no_unit_and_no_question_to_line(tmp_path: Path, run) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            ops = Operations(p.ctx)
            text = [{"type": "text", "text": "hi"}]
            fields = {"authentication": "line", "recipient": "{{line_user_id}}", "messages": text}
            ops.create_activation("quiet", {**fields, "no_aggregation_unit": True})
            ops.create_activation("named", {**ops.copied_fields("quiet"), "aggregation_unit": "Promo_A"})
            p.trigger([{"line_user_id": user_id(1)}], "quiet")
            p.trigger([{"line_user_id": user_id(2)}], "named")
            await p.run_worker()
            assert sorted(sent_units(p), key=lambda unit: unit or []) == [None, ["Promo_A"]]
            assert info_requests(p) == 1
            assert ops.unit_status("quiet").state == "none"

    run(scenario())


def test_the_event_view_shows_the_bytes_sent_without_a_withheld_unit(tmp_path: Path, run, db_url: str) -> None:
    u = user_id(1)
    # LINE takes the first attempt and the answer is lost: the retry must send the same bytes.
    options = SimulatorOptions(script={u: ["accept-then-drop"]}, channels=[ChannelConfig(prior_aggregation_units=1000)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e1", "line_user_id": u, "name": "Ann"}])
            p.trigger([{"event_id": "later", "line_user_id": user_id(2), "name": "Bo"}])
            await p.run_worker()
            entry = p.event("e1")
            assert entry["state"] == "delivered" and len(entry["attempt_log"]) == 2
            assert p.sim.record.stats()["key_body_mismatches"] == 0  # the retry sent the first bytes
            [sent, _] = p.sim.record.accepted
            assert "customAggregationUnits" not in entry["request_body"]
            assert orjson.dumps(entry["request_body"]) == bytes(sent.body)  # what LINE got, byte for byte
            assert Operations(p.ctx).unit_status("welcome").state == "withheld"

    run(scenario())


def test_the_event_view_keeps_a_unit_that_went_out_and_one_not_sent_yet(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"event_id": "e1", "line_user_id": user_id(1), "name": "Ann"}])
            await p.run_worker()
            p.trigger([{"event_id": "queued", "line_user_id": user_id(2), "name": "Bo"}])
            [sent] = p.sim.record.accepted
            assert orjson.dumps(p.event("e1")["request_body"]) == bytes(sent.body)
            assert p.event("e1")["request_body"]["customAggregationUnits"] == ["welcome"]
            assert p.event("queued")["request_body"]["customAggregationUnits"] == ["welcome"]

    run(scenario())


# -- two workers deciding at once ------------------------------------------------------------------


def test_the_months_last_unit_goes_to_one_of_two_new_units() -> None:
    prior = frozenset(f"prior_{i}" for i in range(999))
    assert units.judge("a", 998, frozenset(), None) == (True, "998 of LINE's 1,000 units a month used before this one")
    assert units.judge("b", 999, frozenset({"a"}), None) is None  # "a" may not be counted yet: ask the list
    withheld = units.judge("b", 999, frozenset({"a"}), units.Listing(prior, complete=True))
    assert withheld is not None and not withheld[0]
    assert units.judge("b", 1000, frozenset({"a"}), units.Listing(prior | {"a"}, complete=True)) == withheld
    listed = units.judge("a", 1000, frozenset({"a"}), units.Listing(prior | {"a"}, complete=True))
    assert listed == (True, "already among this month's 1000 units")
    # LINE did not say: sent with the unit, unless our own grants fill the month.
    assert units.judge("x", None, frozenset(), None) is not None
    full = frozenset(f"ours_{i}" for i in range(1000))
    assert units.judge("x", None, full, None) == (
        False,
        "1000 units used this month by this channel's activations: pushes go without the unit",
    )


def test_two_stores_deciding_at_999_admit_one_unit(tmp_path: Path, db_url: str) -> None:
    """Two processes' connections decide two new units at the same moment, round after round."""
    databases = [open_database(db_url), open_database(db_url)]
    prior = units.Listing(frozenset(f"prior_{i}" for i in range(999)), complete=True)
    try:
        for round_ in range(12):
            month = f"2027-{round_ + 1:02d}"
            start = threading.Barrier(2)

            def decide(n: int, month: str = month, start: threading.Barrier = start) -> units.UnitDecision | None:
                start.wait()
                return units.decide(databases[n], ("ch", month, f"unit_{n}"), 999, None, 1.0)

            with ThreadPoolExecutor(2) as pool:
                first = list(pool.map(decide, range(2)))
            assert sorted(d is not None and d.granted for d in first) == [False, True], month
            [undecided] = [n for n, d in enumerate(first) if d is None]
            later = units.decide(databases[undecided], ("ch", month, f"unit_{undecided}"), 999, prior, 2.0)
            assert later is not None and not later.granted
    finally:
        for db in databases:
            db.close()


def test_two_workers_at_999_send_one_new_unit_and_line_drops_none(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(prior_aggregation_units=999)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            other = open_database(db_url)  # the second worker's own connections
            transport = AiohttpTransport(p.ctx.timeouts)
            try:
                auth = authentications.get(p.ctx.db, "line")
                creds = authentications.load_credentials(p.ctx.db, p.ctx.vault, auth)
                client = LineClient(transport, auth.api_url)
                line = LineChannel(auth, client, authentications.TokenSource(client, creds, p.clock))
                budgets = [UnitBudget(db, asyncio.to_thread, p.clock.now) for db in (p.ctx.db, other)]
                bodies = [
                    orjson.dumps({"to": user_id(n), "messages": [{"type": "text", "text": "hi"}],
                                  "customAggregationUnits": [f"unit_{n}"]})
                    for n in range(2)
                ]  # fmt: skip
                now = p.clock.now()
                sent = await asyncio.gather(
                    *(b.body_for(line, auth.channel_key, f"unit_{n}", bodies[n], now) for n, b in enumerate(budgets))
                )
                assert sorted("customAggregationUnits" in orjson.loads(body) for body in sent) == [False, True]
                for n, body in enumerate(sent):
                    assert (await line.push(body, str(uuid.UUID(int=n + 1)))).status_code == 200
            finally:
                await transport.close()
                other.close()
            assert p.sim.record.units_dropped == 0  # LINE dropped no unit silently
            decided = p.ctx.db.run("aggregation_units_granted", {"channel_key": auth.channel_key,
                                                                 "month": line_month(now)})  # fmt: skip
            assert len(decided) == 1

    run(scenario())
