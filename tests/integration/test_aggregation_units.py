"""Aggregation units on pushes: every push of an activation carries its unit, LINE's 1,000 a
month are checked before a unit's first push, and a withheld unit is said, not lost silently."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from lineoa_export import activations
from lineoa_export.line_time import JST, line_month
from lineoa_export.operations import Operations
from lineoa_export.simulator import ChannelConfig, SimulatorOptions
from lineoa_export.simulator.options import DEFAULT_CHANNEL_ID
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
