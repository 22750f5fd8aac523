"""Frequency caps and quiet hours per activation (issue 9), on the fake clock: a deferred event
waits in state ``deferred`` (its body, retry key and retry budget kept), is delivered exactly once
after its time, across a worker restart; over the cap or in quiet hours with ``drop`` it is
``suppressed`` with the reason."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lineoa_export import activations
from lineoa_export.errors import InvalidInput
from lineoa_export.testing import Pipeline, pipeline, user_id
from lineoa_export.web.metrics import Metrics

TOKYO = ZoneInfo("Asia/Tokyo")


def set_clock(p: Pipeline, *wall: int, zone: ZoneInfo = TOKYO) -> float:
    """Move the fake clock forward to a wall time in ``zone``; returns it as POSIX seconds."""
    target = datetime(*wall, tzinfo=zone).timestamp()  # type: ignore[misc]
    assert target >= p.clock.now()
    p.clock.advance(target - p.clock.now())  # type: ignore[attr-defined]
    return target


def events(*specs: tuple[str, int], **extra: Any) -> list[dict[str, Any]]:
    return [{"event_id": e, "line_user_id": user_id(n), "name": "Ann", **extra} for e, n in specs]


def by_id(p: Pipeline) -> dict[str, dict[str, Any]]:
    return {e["event_id"]: e for e in p.log()}


def test_a_trigger_in_quiet_hours_is_deferred_then_delivered_once_after_a_restart(
    tmp_path: Path, run: Any, db_url: str
) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation(quiet_hours="22:00-08:00")
            set_clock(p, 2027, 1, 15, 23, 30)
            p.trigger(events(("night", 1)))
            await p.run_worker()
            night = p.event("night")
            assert night["state"] == "deferred" and night["attempts"] == 0
            assert night["due_at"] == "2027-01-15T23:00:00.000Z"  # 08:00 in Tokyo
            assert "quiet hours 22:00-08:00 Asia/Tokyo" in night["error"]
            key = night["retry_key"]
            assert p.sim.record.accepted == []

            set_clock(p, 2027, 1, 16, 7, 59)
            await p.run_worker()  # a new worker, still inside quiet hours
            assert p.event("night")["state"] == "deferred"

            set_clock(p, 2027, 1, 16, 8, 0)
            await p.run_worker()
            await p.run_worker()  # and once more: nothing is sent twice
            delivered = p.event("night")
            assert delivered["state"] == "delivered" and delivered["error"] is None
            assert delivered["retry_key"] == key and delivered["attempts"] == 1
            assert [push.retry_key for push in p.sim.record.pushes_to(user_id(1))] == [key]

    run(scenario())


def test_in_quiet_hours_drop_suppresses_and_outside_them_events_go_at_once(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation(quiet_hours="22:00-08:00", in_quiet_hours="drop")
            set_clock(p, 2027, 1, 16, 2, 0)
            p.trigger(events(("late", 1)))
            await p.run_worker()
            set_clock(p, 2027, 1, 16, 12, 0)
            p.trigger(events(("noon", 1)))
            await p.run_worker()
            log = by_id(p)
            assert log["late"]["state"] == "suppressed" and log["late"]["delivered"] is False
            assert log["late"]["error"] == "quiet hours 22:00-08:00 Asia/Tokyo"
            assert log["noon"]["state"] == "delivered"
            assert len(p.sim.record.accepted) == 1

    run(scenario())


def test_the_recipients_own_zone_decides_when_the_event_carries_one(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation(quiet_hours="22:00-08:00", time_zone_attribute="tz")
            set_clock(p, 2027, 1, 16, 23, 0)  # 23:00 in Tokyo is 09:00 in New York
            p.trigger(events(("ny", 1), tz="America/New_York"))
            p.trigger(events(("tokyo", 2)))
            p.trigger(events(("bad-zone", 3), tz="Asia/Tokio"))  # not a zone: the activation's
            await p.run_worker()
            log = by_id(p)
            assert log["ny"]["state"] == "delivered"
            assert log["tokyo"]["state"] == log["bad-zone"]["state"] == "deferred"

    run(scenario())


def test_over_the_cap_is_suppressed_with_the_cap_in_the_reason(tmp_path: Path, run: Any, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation(frequency_cap="1/24h")
            p.trigger(events(("cart-1", 1), ("cart-2", 1), ("cart-3", 1), ("other", 2)))
            await p.run_worker()
            log = by_id(p)
            states = sorted(log[e]["state"] for e in ("cart-1", "cart-2", "cart-3"))
            assert states == ["delivered", "suppressed", "suppressed"]
            suppressed = [log[e] for e in ("cart-1", "cart-2", "cart-3") if log[e]["state"] == "suppressed"]
            assert all(e["error"] == "frequency cap 1/24h reached" and e["attempts"] == 0 for e in suppressed)
            assert log["other"]["state"] == "delivered"
            assert len(p.sim.record.pushes_to(user_id(1))) == 1

            p.clock.advance(24 * 3600)  # type: ignore[attr-defined]
            p.trigger(events(("next-day", 1)))
            await p.run_worker()
            assert p.event("next-day")["state"] == "delivered"

    run(scenario())


def test_over_cap_defer_waits_until_the_window_allows_one_more(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation(frequency_cap="2/1h", over_cap="defer")
            start = p.clock.now()
            p.trigger(events(("a", 1), ("b", 1), ("c", 1)))
            await p.run_worker()
            log = by_id(p)
            assert [log[e]["state"] for e in "abc"].count("delivered") == 2
            waiting = next(log[e] for e in "abc" if log[e]["state"] == "deferred")
            assert waiting["error"].endswith("frequency cap 2/1h reached")

            p.clock.advance(start + 3600 - 1 - p.clock.now())  # type: ignore[attr-defined]
            await p.run_worker()
            assert p.event(waiting["event_id"])["state"] == "deferred"
            p.clock.advance(1)  # type: ignore[attr-defined]
            await p.run_worker()
            again = p.event(waiting["event_id"])
            assert again["state"] == "delivered" and again["retry_key"] == waiting["retry_key"]
            assert len(p.sim.record.pushes_to(user_id(1))) == 3

    run(scenario())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quiet_hours", "25:00-08:00", 'quiet_hours: "25:00-08:00" is not HH:MM-HH:MM'),
        ("time_zone", "Asia/Tokio", 'time_zone: unknown zone "Asia/Tokio"'),
        ("frequency_cap", "often", 'frequency_cap: "often" is not N/PERIOD'),
        ("over_cap", "later", "over_cap: Input should be 'suppress' or 'defer'"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: str, message: str) -> None:
    spec = {
        "name": "x",
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": [{"type": "text", "text": "hi"}],
    }
    with pytest.raises(InvalidInput) as refused:
        activations.parse_spec({**spec, field: value})
    assert [p.path for p in refused.value.problems] == [field]
    assert str(refused.value).startswith(message)


def test_held_events_count_in_the_workers_prometheus_counters(tmp_path: Path, run: Any, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation("later", quiet_hours="22:00-08:00")
            p.create_activation("dropped", quiet_hours="22:00-08:00", in_quiet_hours="drop")
            p.create_activation("day")
            set_clock(p, 2027, 1, 15, 23, 30)
            for name in ("later", "dropped", "day"):
                p.trigger(events((f"{name}-1", 1), (f"{name}-2", 2)), name)
            metrics = Metrics(p.ctx.db, rate_limit=p.ctx.settings.rate_limit)
            worker = p.worker()
            metrics.watch(worker)
            await worker.run(until_idle=True)
            scraped = metrics.render().decode().splitlines()
            held = sorted(
                line
                for line in scraped
                if line.startswith(("lineoa_export_events_deferred_total{", "lineoa_export_events_suppressed_total{"))
            )
            assert held == [
                'lineoa_export_events_deferred_total{activation="later"} 2.0',
                'lineoa_export_events_suppressed_total{activation="dropped"} 2.0',
            ]
            assert p.event("day-1", "day")["state"] == "delivered"  # not held: not counted there

    run(scenario())
