"""``stats``: LINE's statistics for an activation's unit, stored with their fetch time, asked
only when older than a few minutes and within LINE's 60 an hour per channel (fake clock)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest

from lineoa_export import activations, overview
from lineoa_export.errors import InvalidInput
from lineoa_export.insight import statistics
from lineoa_export.line_time import line_day
from lineoa_export.operations import Operations
from lineoa_export.simulator import ChannelConfig, SimulatorOptions
from lineoa_export.store.database import open_database
from lineoa_export.testing import pipeline, user_id

STATS = "unit_statistics"
SHOP = "https://example.com/shop"
MESSAGES = [
    {"type": "text", "text": "Hello {{name}}"},
    {
        "type": "template",
        "altText": "offer",
        "template": {"type": "buttons", "text": "offer", "actions": [{"type": "uri", "label": "shop", "uri": SHOP}]},
    },
]


def everyone_looks() -> SimulatorOptions:
    options = SimulatorOptions()
    options.engagement.open_rate = 1.0
    options.engagement.click_rate = 1.0
    return options


def line_requests(p) -> int:  # type: ignore[no-untyped-def]
    return sum(p.sim.record.status_by_endpoint.get(STATS, {}).values())


async def send(p, users: int) -> None:  # type: ignore[no-untyped-def]
    p.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(users)])
    await p.run_worker()


def test_stats_show_lines_figures_and_keep_them_a_few_minutes(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, everyone_looks(), database_url=db_url) as p:
            p.create_activation(messages=MESSAGES)
            await send(p, 30)
            ops = Operations(p.ctx)
            fresh = await ops.activation_stats("welcome")
            assert fresh.asked_line and fresh.age_seconds == 0
            assert fresh.figures is not None
            assert fresh.figures["overview"]["uniqueImpression"] == 30
            assert fresh.figures["overview"]["uniqueClick"] == 30
            assert [m["impression"] for m in fresh.figures["messages"]] == [30, 30]
            assert fresh.figures["clicks"][0]["url"] == SHOP
            p.clock.advance(120.0)
            again = await ops.activation_stats("welcome")
            assert not again.asked_line and again.age_seconds == 120.0
            assert again.figures == fresh.figures
            assert line_requests(p) == 1
            p.clock.advance(statistics.FRESH_FOR)
            assert (await ops.activation_stats("welcome")).asked_line
            assert line_requests(p) == 2

    run(scenario())


def test_a_period_asked_for_by_hand_leaves_the_overviews_default_figures(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, everyone_looks(), database_url=db_url) as p:
            p.create_activation(messages=MESSAGES)
            first_day = line_day(p.clock.now())
            await send(p, 30)
            p.clock.advance(2 * 86_400.0)
            ops = Operations(p.ctx)
            default = await ops.activation_stats("welcome")
            assert default.asked_line and (default.period.first, default.period.last) == (
                first_day, first_day + timedelta(days=2))  # fmt: skip
            p.clock.advance(60.0)
            by_hand = await ops.activation_stats("welcome", first_day.isoformat(), first_day.isoformat())
            assert by_hand.asked_line and by_hand.fetched_at == default.fetched_at + 60.0
            activation = activations.get(p.ctx.db, "welcome")
            [shown] = overview.read(p.ctx.db, overview.activation_scope(p.ctx.db, activation), now=p.clock.now(),
                                    rate_limit=1.0, rate_sharing="single").engagement  # fmt: skip
            assert (shown.first_day, shown.last_day, shown.fetched_at) == (
                first_day.isoformat(), (first_day + timedelta(days=2)).isoformat(), default.fetched_at)  # fmt: skip
            assert shown.impressions == 30

    run(scenario())


def test_figures_under_20_are_fewer_than_20_not_0(tmp_path: Path, run) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, everyone_looks()) as p:
            p.create_activation(messages=MESSAGES)
            await send(p, 5)
            result = await Operations(p.ctx).activation_stats("welcome")
            assert result.figures is not None
            assert result.figures["overview"]["uniqueImpression"] is None
            assert statistics.shown(result.figures["overview"]["uniqueImpression"]) == "fewer than 20"
            assert statistics.shown(0) == "0"
            assert result.public()["null_means"] == "fewer than 20"

    run(scenario())


def test_at_most_60_requests_an_hour_per_channel_then_the_stored_figures(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            ops = Operations(p.ctx)
            days = [line_day(p.clock.now()) - timedelta(days=n) for n in range(61)]
            # Sixty different days asked for in one hour, a minute apart: sixty requests.
            for day in days[:60]:
                assert (await ops.activation_stats("welcome", day.isoformat(), day.isoformat())).asked_line
                p.clock.advance(59.0)
            assert line_requests(p) == 60
            first = days[0].isoformat()
            refused = await ops.activation_stats("welcome", first, first)
            assert not refused.asked_line and refused.figures is not None  # the stored ones, with their age
            assert refused.age_seconds == 60 * 59.0
            assert refused.note is not None and "60 statistics requests an hour" in refused.note
            never = await ops.activation_stats("welcome", days[60].isoformat(), days[60].isoformat())
            assert never.figures is None and never.public()["source"] == "none"
            assert line_requests(p) == 60
            p.clock.advance(60.0)  # the first request is an hour old now: one more may go
            assert (await ops.activation_stats("welcome", first, first)).asked_line
            assert line_requests(p) == 61

    run(scenario())


def test_when_line_refuses_the_request_counts_and_the_reason_is_shown(tmp_path: Path, run) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, SimulatorOptions(channels=[ChannelConfig(forbidden=True)])) as p:
            p.create_activation()
            result = await Operations(p.ctx).activation_stats("welcome")
            assert result.figures is None and not result.asked_line
            assert result.note is not None and "not available for your account" in result.note
            key = activations.get(p.ctx.db, "welcome").channel_key
            rows = p.ctx.db.run("insight_requests_since", {"channel_key": key, "since": 0})
            assert rows[0]["n"] == 1

    run(scenario())


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("2027-13-01", None, "from"),
        ("20270101", None, "from"),
        ("2027-01-01", "yesterday", "to"),
        ("2027-01-10", "2027-01-09", "to"),
        ("2027-01-01", "2027-02-01", "to"),
    ],
)
def test_bad_days_are_refused_naming_the_field(
    tmp_path: Path, run, first: str | None, last: str | None, field: str
) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation()
            with pytest.raises(InvalidInput) as exc:
                await Operations(p.ctx).activation_stats("welcome", first, last)
            assert [problem.path for problem in exc.value.problems] == [field]
            assert line_requests(p) == 0

    run(scenario())


def test_an_activation_without_a_unit_has_no_statistics(tmp_path: Path, run) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation(no_aggregation_unit=True)
            with pytest.raises(InvalidInput) as exc:
                await Operations(p.ctx).activation_stats("welcome")
            assert exc.value.problems[0].path == "aggregation_unit"

    run(scenario())


def test_the_default_period_runs_from_the_activations_first_day_to_today() -> None:
    created = 1_800_000_000.0
    period = statistics.period_of(None, None, created_at=created, now=created + 3 * 86_400)
    assert period.first == line_day(created)
    assert period.last == line_day(created) + timedelta(days=3)
    old = statistics.period_of(None, None, created_at=created, now=created + 90 * 86_400)
    assert old.last - old.first == timedelta(days=30)
    assert statistics.period_of("2027-01-01", None, created_at=created, now=created).first == date(2027, 1, 1)


def test_concurrent_callers_never_spend_more_than_60_an_hour(tmp_path: Path, db_url: str) -> None:
    """Eight processes' connections ask at once when 55 of the hour are spent, round after round."""
    callers = 8
    databases = [open_database(db_url) for _ in range(callers)]
    try:
        for round_ in range(6):
            channel_key = f"ch{round_}"
            now = 1_800_000_000.0 + round_
            with databases[0].transaction() as tx:
                tx.run_many("insight_request_add", [{"channel_key": channel_key, "now": now - 60.0}] * 55)
            start = threading.Barrier(callers)

            def ask(n: int, key: str = channel_key, at: float = now, barrier: threading.Barrier = start) -> bool:
                barrier.wait()
                return statistics.take_request(databases[n], key, at) is None

            with ThreadPoolExecutor(callers) as pool:
                taken = list(pool.map(ask, range(callers)))
            assert taken.count(True) == 5, channel_key
            rows = databases[0].run("insight_requests_since", {"channel_key": channel_key, "since": now - 3600.0})
            assert rows[0]["n"] == statistics.REQUESTS_PER_HOUR
    finally:
        for db in databases:
            db.close()
