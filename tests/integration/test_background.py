"""What a delivering process does about LINE by itself: recent units' statistics kept fresh within
2/3 of LINE's 60 requests an hour per channel, one failing channel never stopping the others,
and (below) the daily reconciliation, done once however many processes run (fake clock)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from lineoa_export import activations, authentications, followers
from lineoa_export.clock import FakeClock
from lineoa_export.context import Context, open_context
from lineoa_export.insight import background, reconcile, statistics
from lineoa_export.insight.background import Background
from lineoa_export.line_time import JST, compact, line_day
from lineoa_export.operations import Operations
from lineoa_export.simulator import ChannelConfig, SimulatorOptions
from lineoa_export.simulator.app import PUSH_COUNT
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.store.database import Database, Tx, open_database, query
from lineoa_export.testing import channel, pipeline, token, user_id
from lineoa_export.web.metrics import Metrics
from lineoa_export.webhooks import signature_for

STATS = "unit_statistics"
DAY = 86_400.0


def line_requests(p) -> int:  # type: ignore[no-untyped-def]
    return sum(p.sim.record.status_by_endpoint.get(STATS, {}).values())


def requests_last_hour(p, channel_key: str) -> int:  # type: ignore[no-untyped-def]
    rows = p.ctx.db.run("insight_requests_since", {"channel_key": channel_key, "since": p.clock.now() - 3600.0})
    return int(rows[0]["n"])


def fetched_at(p, name: str) -> float | None:  # type: ignore[no-untyped-def]
    x = activations.get(p.ctx.db, name)
    assert x.spec.aggregation_unit is not None
    period = statistics.period_of(None, None, created_at=x.created_at, now=p.clock.now())
    kept = statistics.stored(p.ctx.db, x.channel_key, x.spec.aggregation_unit, period)
    return None if kept is None else kept[1]


async def next_slot(p, chores: Background, channel_key: str) -> background.Pass:  # type: ignore[no-untyped-def]
    """Move the clock to the channel's next background slot and make one pass."""
    now = p.clock.now()
    p.clock.advance((background.slot(channel_key, now) + 1) * background.SPACING - background.phase(channel_key) - now)
    return await chores.run_once()


def test_channels_ask_at_moments_of_their_own_one_slot_every_90_seconds() -> None:
    keys = [f"channel-{n}" for n in range(60)]
    phases = [background.phase(key) for key in keys]
    assert all(0 <= ph < background.SPACING for ph in phases)
    assert len({int(ph // background.TICK) for ph in phases}) == 3  # spread over every pass of a slot
    start = 1_800_000_000.0
    for key in keys[:5]:
        boundaries = [
            t for t in range(int(start), int(start + 3600)) if background.slot(key, t) != background.slot(key, t - 1)
        ]
        assert len(boundaries) == background.BACKGROUND_PER_HOUR  # 40 slots an hour, 90 s apart
        assert {b - a for a, b in itertools.pairwise(boundaries)} == {int(background.SPACING)}


def test_recent_units_are_refreshed_once_their_figures_are_a_few_minutes_old(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(3)])
            await p.run_worker()
            key = activations.get(p.ctx.db, "welcome").channel_key
            chores = Background(p.ctx)
            assert (await chores.run_once()).refreshed == ["welcome"]
            assert fetched_at(p, "welcome") == p.clock.now() and line_requests(p) == 1
            assert (await chores.run_once()).refreshed == []  # the same slot: nothing more
            await next_slot(p, chores, key)  # 90 s later: the figures are not 5 minutes old yet
            assert line_requests(p) == 1
            p.clock.advance(statistics.FRESH_FOR)
            assert (await chores.run_once()).refreshed == ["welcome"]
            assert line_requests(p) == 2
            # An operator's `stats` now reads what the background fetched, without asking LINE.
            shown = await Operations(p.ctx).activation_stats("welcome")
            assert not shown.asked_line and shown.figures is not None and line_requests(p) == 2

    run(scenario())


def test_only_units_used_in_the_last_14_days_and_the_stalest_first(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            for name in ("old", "recent", "idle"):
                p.create_activation(name)
            p.trigger([{"line_user_id": user_id(1), "name": "Ann"}], "old")
            p.clock.advance(2 * DAY)
            p.trigger([{"line_user_id": user_id(2), "name": "Bo"}], "recent")
            # 15 days after the old one's event (a day past LINE's 14, for a push deferred or retried).
            p.clock.advance(background.RECENT_DAYS * DAY - 2 * DAY + 1.0)
            key = activations.get(p.ctx.db, "recent").channel_key
            chores = Background(p.ctx)
            assert (await chores.run_once()).refreshed == ["recent"]
            p.clock.advance(statistics.FRESH_FOR)
            assert (await next_slot(p, chores, key)).refreshed == ["recent"]  # never "old", never "idle"
            assert line_requests(p) == 2
            p.trigger([{"line_user_id": user_id(3), "name": "Cy"}], "idle")
            assert (await next_slot(p, chores, key)).refreshed == ["idle"]  # never fetched: first
            assert (await next_slot(p, chores, key)).refreshed == []  # both fresh now

    run(scenario())


def test_the_background_uses_at_most_40_an_hour_and_stats_still_gets_an_answer(
    tmp_path: Path, run, db_url: str
) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            names = [f"a{n:02d}" for n in range(45)]  # more units than an hour's requests
            for n, name in enumerate(names):
                p.create_activation(name)
                p.trigger([{"line_user_id": user_id(n), "name": "Ann"}], name)
            key = activations.get(p.ctx.db, names[0]).channel_key
            chores = Background(p.ctx)
            refreshed: list[str] = []
            for _ in range(2 * 3600 // int(background.TICK)):  # two hours of passes
                refreshed += (await chores.run_once()).refreshed
                assert requests_last_hour(p, key) <= background.BACKGROUND_PER_HOUR
                p.clock.advance(background.TICK)
            assert len(refreshed) >= 2 * background.BACKGROUND_PER_HOUR - 2
            assert set(refreshed) == set(names)  # the stalest first: every unit had its turn
            stale = min(names, key=lambda name: fetched_at(p, name) or 0.0)
            answer = await Operations(p.ctx).activation_stats(stale)
            assert answer.asked_line, answer.note
            assert 429 not in p.sim.record.status_by_endpoint[STATS]  # LINE never had to refuse

    run(scenario())


def test_requests_made_by_hand_count_against_the_backgrounds_share(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            for n in range(10):
                p.create_activation(f"a{n}")
                p.trigger([{"line_user_id": user_id(n), "name": "Ann"}], f"a{n}")
            ops = Operations(p.ctx)
            for day in range(1, 36):  # an operator asks for 35 other periods
                p.clock.advance(1.0)
                first = (line_day(p.clock.now()) - timedelta(days=day)).isoformat()
                assert (await ops.activation_stats("a0", first, first)).asked_line
            chores = Background(p.ctx)
            refreshed: list[str] = []
            for _ in range(20):
                p.clock.advance(background.SPACING)
                refreshed += (await chores.run_once()).refreshed
            assert len(refreshed) == background.BACKGROUND_PER_HOUR - 35  # 40 in the hour, in all
            assert (await ops.activation_stats("a9")).asked_line  # and the operator still gets an answer

    run(scenario())


def test_a_failing_channel_logs_one_line_rests_and_never_stops_the_others(
    tmp_path: Path, run, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = SimulatorOptions(channels=[channel(1, forbidden=True), channel(2)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            for n in (1, 2):
                p.create_auth(name=f"oa{n}", token=token(n))
                p.create_activation(f"x{n}", authentication=f"oa{n}")
                p.trigger([{"line_user_id": user_id(n), "name": "Ann"}], f"x{n}")
            keys = [activations.get(p.ctx.db, f"x{n}").channel_key for n in (1, 2)]
            chores = Background(p.ctx)
            with caplog.at_level(logging.WARNING, logger=background.__name__):
                assert (await chores.run_once()).refreshed == ["x2"]
                for _ in range(4):  # an hour of slots of the good channel
                    p.clock.advance(statistics.FRESH_FOR)
                    assert (await next_slot(p, chores, keys[1])).refreshed == ["x2"]
            failures = [r for r in caplog.records if "x1" in r.getMessage()]
            assert len(failures) == 1 and failures[0].exc_info is None
            assert "not available for your account" in failures[0].getMessage()
            assert requests_last_hour(p, keys[0]) == 1  # it rests: no request a minute and a line each
            p.clock.advance(background.REST_AFTER_FAILURE)
            await next_slot(p, chores, keys[0])
            assert requests_last_hour(p, keys[0]) == 1  # tried again once the rest is over

    run(scenario())


def test_two_processes_share_a_channels_slots(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            for name in ("a", "b"):
                p.create_activation(name)
                p.trigger([{"line_user_id": user_id(1), "name": "Ann"}], name)
            first, second = Background(p.ctx, name="host-1:1"), Background(p.ctx, name="host-2:2")
            done = (await first.run_once()).refreshed + (await second.run_once()).refreshed
            assert len(done) == 1 and line_requests(p) == 1  # one request per channel and slot in all

    run(scenario())


def stored_periods(p) -> list[tuple[str, str, str, bool]]:  # type: ignore[no-untyped-def]
    with p.ctx.db.transaction() as tx:
        rows = tx._conn.execute("SELECT unit, from_day, to_day, default_period FROM unit_statistics")
        return sorted((r["unit"], r["from_day"], r["to_day"], bool(r["default_period"])) for r in rows)


def test_figures_no_view_can_show_are_pruned_and_every_unit_keeps_its_latest(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            for name in ("a", "b"):
                p.create_activation(name, aggregation_unit=f"{name}_unit")
                p.trigger([{"line_user_id": user_id(1), "name": "Ann"}], name)
            await p.run_worker()
            ops = Operations(p.ctx)
            day = line_day(p.clock.now())
            assert (await ops.activation_stats("b")).asked_line
            for _ in range(2):  # `stats` on days 0, 8 and 16: three default periods of a's
                assert (await ops.activation_stats("a")).asked_line
                p.clock.advance(8 * DAY)  # (16 days on, no unit is refreshed in the background any more)
            assert (await ops.activation_stats("a")).asked_line
            past = (day + timedelta(days=3)).isoformat()
            assert (await ops.activation_stats("a", past, past)).asked_line  # a period asked for by hand
            p.clock.advance(60.0)
            chores = Background(p.ctx)
            assert (await chores.run_once()).statistics_forgotten == 2  # a's two earlier default periods

            def c(n: int) -> str:
                return compact(day + timedelta(days=n))

            assert stored_periods(p) == [("a_unit", c(0), c(16), True), ("a_unit", c(3), c(3), False),
                                         ("b_unit", c(0), c(0), True)]  # fmt: skip
            requests = line_requests(p)
            for first, last in ((None, None), (past, past)):  # what `stats` stored minutes ago, it still shows
                shown = await ops.activation_stats("a", first, last)
                assert not shown.asked_line and shown.figures is not None
            assert line_requests(p) == requests
            p.clock.advance(background.PRUNE_EVERY)
            assert (await chores.run_once()).statistics_forgotten == 0  # by hand: kept a day, for `stats`
            p.clock.advance(statistics.KEEP_FOR)
            assert (await chores.run_once()).statistics_forgotten == 1  # a day old now
            assert stored_periods(p) == [("a_unit", c(0), c(16), True), ("b_unit", c(0), c(0), True)]

    run(scenario())


# -- the daily reconciliation --------------------------------------------------------------------


def jst(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JST).timestamp()


def count_requests(p) -> int:  # type: ignore[no-untyped-def]
    return sum(p.sim.record.status_by_endpoint.get(PUSH_COUNT, {}).values())


async def deliver_on(p, when: str, count: int, first: int = 0) -> None:  # type: ignore[no-untyped-def]
    p.clock.advance(jst(when) - p.clock.now())
    p.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in range(first, first + count)])
    await p.run_worker()


def test_every_channel_is_reconciled_once_a_day_from_10_jst(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1), channel(2)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            for n in (1, 2):
                p.create_auth(name=f"oa{n}", token=token(n))
                p.create_activation(f"x{n}", authentication=f"oa{n}", no_aggregation_unit=True)
            p.activation = "x1"
            await deliver_on(p, "2027-01-20 12:00:00", 20)
            chores = Background(p.ctx)
            p.clock.advance(jst("2027-01-21 09:59:59") - p.clock.now())
            assert (await chores.run_once()).reconciled == []  # LINE may not have counted yet
            p.clock.advance(1.0)
            done = (await chores.run_once()).reconciled
            assert sorted((r.authentication, r.day.isoformat(), r.verdict) for r in done) == [
                ("line", "2027-01-20", "unavailable"),  # no pushes at all: LINE does not tell
                ("oa1", "2027-01-20", "equal"),
                ("oa2", "2027-01-20", "unavailable"),
            ]
            requests = count_requests(p)
            for hour in ("10:30", "13:00", "22:00"):  # the day is done: not asked again
                p.clock.advance(jst(f"2027-01-21 {hour}:00") - p.clock.now())
                assert (await chores.run_once()).reconciled == []
            assert count_requests(p) == requests
            kept = reconcile.stored(p.ctx.db, "oa1", date(2027, 1, 20))
            assert kept is not None and (kept.line_count, kept.our_count) == (20, 20)
            # What /metrics shows, read from the stored results (as in every serve process).
            scraped = Metrics(p.ctx.db, rate_limit=1.0).render().decode()
            assert 'lineoa_export_reconciliation{authentication="oa1",day="2027-01-20",verdict="equal"} 1.0' in scraped
            assert 'lineoa_export_reconciliation_difference{authentication="oa1",day="2027-01-20"} 0.0' in scraped

    run(scenario())


def test_not_ready_is_tried_again_later_that_day(tmp_path: Path, run, db_url: str) -> None:
    line_clock = FakeClock(jst("2027-01-20 12:00:00"))  # LINE's clock; the scheduler's runs ahead

    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url, clock=line_clock) as p:
            p.create_activation(no_aggregation_unit=True)
            await deliver_on(p, "2027-01-20 12:00:00", 21)
            line_clock.advance(jst("2027-01-20 23:00:00") - line_clock.now())  # LINE still on the 20th
            ours = FakeClock(jst("2027-01-21 10:00:00"))
            chores = Background(Context(p.ctx.settings, p.ctx.db, p.ctx.vault, ours))
            assert [r.verdict for r in (await chores.run_once()).reconciled] == ["not_ready"]
            ours.advance(3600.0)  # 11:00: the same try
            assert (await chores.run_once()).reconciled == [] and count_requests(p) == 1
            line_clock.advance(3 * 3600.0)  # LINE has counted the 20th now
            ours.advance(2 * 3600.0)  # 13:00: the next try
            again = (await chores.run_once()).reconciled
            assert [(r.verdict, r.line_count, r.our_count) for r in again] == [("equal", 21, 21)]

    run(scenario())


def test_while_line_is_not_ready_a_pass_with_nothing_to_do_writes_nothing(
    tmp_path: Path, run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write on SQLite takes BEGIN IMMEDIATE: the worker's writers would wait for each
    # authentication on every 30-s pass, for the hours until the next try of the day.
    line_clock = FakeClock(jst("2027-01-20 12:00:00"))
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url, clock=line_clock) as p:
            p.create_auth(name="other", token=token(1))
            p.create_activation(no_aggregation_unit=True)
            await deliver_on(p, "2027-01-20 12:00:00", 21)
            line_clock.advance(jst("2027-01-20 23:00:00") - line_clock.now())  # LINE still on the 20th
            ours = FakeClock(jst("2027-01-21 10:00:00"))
            chores = Background(Context(p.ctx.settings, p.ctx.db, p.ctx.vault, ours))
            assert [r.verdict for r in (await chores.run_once()).reconciled] == ["not_ready"] * 2
            writes = count_writes(p.ctx.db, monkeypatch)
            for _ in range(int(3600 / background.TICK) - 1):  # the rest of the hour, until the hourly prune
                ours.advance(background.TICK)
                assert (await chores.run_once()).reconciled == []
            assert writes() == [] and count_requests(p) == 2
            ours.advance(jst("2027-01-21 13:00:00") - ours.now())  # the next try claims, asks and keeps
            assert [r.verdict for r in (await chores.run_once()).reconciled] == ["not_ready"] * 2
            assert writes().count("background_claim") == 2 and count_requests(p) == 4

    run(scenario())


def count_writes(db: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """From now on: each transaction ``db`` opens, each statement run in one, each other write."""
    seen: list[str] = []
    transaction, run = db.transaction, db.run

    class Counted:
        def __init__(self, tx: Tx) -> None:
            self.tx = tx

        def run(self, name: str, params: Any = None) -> list[dict[str, Any]]:
            seen.append(name)
            return self.tx.run(name, params)

        def run_changed(self, name: str, params: Any = None) -> int:
            seen.append(name)
            return self.tx.run_changed(name, params)

    @contextmanager
    def counted_transaction() -> Iterator[Counted]:
        seen.append("BEGIN")
        with transaction() as tx:
            yield Counted(tx)

    def counted_run(name: str, params: Any = None) -> list[dict[str, Any]]:
        sql = [line for line in query(name, db.dialect).splitlines() if not line.lstrip().startswith("--")]
        if not sql[0].lstrip().upper().startswith("SELECT"):
            seen.append(name)
        return run(name, params)

    monkeypatch.setattr(db, "transaction", counted_transaction)
    monkeypatch.setattr(db, "run", counted_run)
    return lambda: list(seen)


def test_a_mismatch_is_a_warning_and_a_failing_channel_does_not_stop_the_others(
    tmp_path: Path, run, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1, forbidden=True)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            p.create_auth(name="refused", token=token(1))
            p.create_activation(no_aggregation_unit=True)
            await deliver_on(p, "2027-01-20 12:00:00", 21)
            del p.sim.record.accepted[-1]  # an acceptance LINE did not count
            p.clock.advance(jst("2027-01-21 10:00:00") - p.clock.now())
            with caplog.at_level(logging.INFO, logger=background.__name__):
                done = (await Background(p.ctx).run_once()).reconciled
            assert [(r.authentication, r.verdict) for r in done] == [("line", "line_fewer")]
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 2 and all(r.exc_info is None for r in caplog.records)
            assert any("line on 2027-01-20" in w and "LINE counted 20" in w and "21" in w for w in warnings)
            assert any(w.startswith("reconciliation of refused on 2027-01-20 (UTC+9) failed") for w in warnings)

    run(scenario())


def test_two_schedulers_on_one_database_reconcile_a_day_once(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation(no_aggregation_unit=True)
            await deliver_on(p, "2027-01-20 12:00:00", 20)
            p.clock.advance(jst("2027-01-21 10:00:00") - p.clock.now())
            other = open_context(p.ctx.settings, clock=p.clock)  # a second process: its own connections
            try:
                passes = await asyncio.gather(*(Background(c).run_once() for c in (p.ctx, other, p.ctx, other)))
            finally:
                other.close()
            assert sum(len(done.reconciled) for done in passes) == 1
            assert count_requests(p) == 1

    run(scenario())


# -- housekeeping ----------------------------------------------------------------------------------

SECRET = "webhook-channel-secret-0123456789"


def test_webhook_event_ids_are_kept_30_days_for_deduplication_then_pruned(tmp_path: Path, run, db_url: str) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, SECRET)
            authentications.create(p.ctx.db, p.ctx.vault, name="hooked", credentials=creds, api_url=p.sim.url,
                                   now=p.clock.now())  # fmt: skip

            def receive(event_id: str) -> int:
                event = {"type": "unfollow", "timestamp": int(p.clock.now() * 1000), "webhookEventId": event_id,
                         "source": {"type": "user", "userId": user_id(1)}, "mode": "active"}  # fmt: skip
                body = orjson.dumps({"destination": "U" + "0" * 32, "events": [event]})
                got = followers.receive(p.ctx.db, p.ctx.vault, "hooked", body, signature_for(SECRET, body),
                                        now=p.clock.now())  # fmt: skip
                return got.new

            assert receive("E1") == 1
            chores = Background(p.ctx)
            p.clock.advance(29 * DAY)
            assert receive("E2") == 1
            assert (await chores.run_once()).webhook_ids_forgotten == 0
            assert receive("E1") == 0  # LINE repeating itself within 30 days: still counted once
            p.clock.advance(2 * DAY)
            assert (await chores.run_once()).webhook_ids_forgotten == 1  # E1 only; E2 is 2 days old
            assert (await chores.run_once()).webhook_ids_forgotten == 0  # once an hour, not every pass
            assert receive("E2") == 0  # still remembered
            assert receive("E1") == 1  # forgotten: an id LINE no longer repeats after this long

    run(scenario())


def test_a_large_prune_of_webhook_ids_goes_in_short_transactions_and_keeps_the_window(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first prune after an upgrade can meet 30+ days of ids at once: on SQLite one transaction
    # for all of them would hold the one write lock that webhooks and the worker wait for.
    now = 1_800_000_000.0
    cutoff = now - followers.SEEN_KEPT
    old = [{"channel_key": f"c{n % 3}", "webhook_event_id": f"old{n}", "now": cutoff - 1.0 - n} for n in range(1_050)]
    within = {"at-the-edge": cutoff, "a-second-inside": cutoff + 1.0, "today": now}
    db = open_database(db_url)
    try:
        with db.transaction() as tx:
            for row in old + [{"channel_key": "c0", "webhook_event_id": k, "now": t} for k, t in within.items()]:
                tx.run("webhook_event_seen", row)
        opened = []
        real = db.transaction

        @contextmanager
        def counted() -> Iterator[Tx]:
            opened.append(len(opened))
            with real() as tx:
                yield tx

        monkeypatch.setattr(db, "transaction", counted)
        assert followers.forget_old_event_ids(db, now=now, batch=100) == len(old)
        assert len(opened) == 11  # ten of 100 and one of 50: the lock is let go in between
        with real() as tx:
            left = {r["webhook_event_id"] for r in tx._conn.execute("SELECT webhook_event_id FROM webhook_events")}  # type: ignore[attr-defined]
        assert left == set(within)  # exactly the ids inside the 30 days are still remembered
    finally:
        db.close()
