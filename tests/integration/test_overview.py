"""The overview's read model (overview.py) on SQLite and PostgreSQL, at a fixed ``now``: minute
buckets and their edges, what counts as delivered, retried and failed, retry reasons, the queue
and its lag, a channel next to one activation, engagement and reconciliation as stored; then the
whole pipeline on a fake clock, with LINE's quota asked at most once a minute."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet

from lineoa_export import activations, authentications, overview
from lineoa_export.delivery import outbox, pauses, triggers
from lineoa_export.delivery.states import EventState
from lineoa_export.delivery.worker import Worker
from lineoa_export.insight import reconcile, statistics
from lineoa_export.line_time import JST
from lineoa_export.operations import Operations, WorkerHandle
from lineoa_export.simulator import ChannelConfig, SimulatorOptions
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.store import migrations
from lineoa_export.store.database import Database
from lineoa_export.store.migrations import SHIPPED, Catalog
from lineoa_export.testing import pipeline, user_id
from lineoa_export.vault import Vault

NOW = 1_800_000_000.0 + 30  # half a minute into a minute: FakeClock's start is a whole minute
START = NOW - 30 - 59 * 60  # the first of the hour's 60 minutes


def read(db: Database, name: str = "welcome", *, channel: bool = False, now: float = NOW) -> overview.Overview:
    activation = activations.get(db, name)
    scope = (
        overview.channel_scope(db, authentications.get(db, activation.spec.authentication))
        if channel
        else overview.activation_scope(db, activation)
    )
    return overview.read(db, scope, now=now, rate_limit=2000.0, rate_sharing="single")


def accept(db: Database, ids: Sequence[int], *, at: float, activation: str = "welcome") -> None:
    events = [{"event_id": f"e{n}", "line_user_id": user_id(n), "name": "Ann"} for n in ids]
    assert all(r.status == "accepted" for r in triggers.accept(db, activation, events, now=at))


def push(db: Database, answers: dict[str, tuple[float, int | None, str | None, EventState]]) -> None:
    """One attempt for each event named in ``answers``: (started at, status code, error, new state)."""
    key = activations.get(db, "welcome").channel_key
    claimed = outbox.claim(db, worker="w", now=NOW + 3600, lease_seconds=30, wants=[(key, 100)], alive_since=0)
    by_event_id = {
        r["id"]: r["event_id"] for r in db.run("log_page", _log_params()) if r["id"] in {c.id for c in claimed}
    }
    results = []
    for c in claimed:
        started, status, error, state = answers[by_event_id[c.id]]
        results.append(
            outbox.Result(
                c.id, state, c.attempts + 1, c.retries + (state is EventState.RETRYING), started, 5.0, status, error,
                None, None, None, started if state is EventState.RETRYING else None,
                None if state is EventState.RETRYING else started,
            )
        )  # fmt: skip
    outbox.record(db, results, worker="w")


def _log_params() -> dict[str, Any]:
    return dict.fromkeys(("state", "delivered", "status_code", "since", "until", "before_id"), None) | {
        "activation": "welcome",
        "limit": 1000,
    }


def test_minutes_are_whole_minutes_and_pushes_are_delivered_retried_or_failed(tmp_path: Path, run, db_url) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation(max_retries=3)
            db = p.ctx.db
            accept(db, [1, 2, 3, 4], at=START - 10)
            push(db, {
                "e1": (START, 500, "Internal Server Error", EventState.RETRYING),  # first instant of minute 0
                "e2": (START + 59.999, 400, "bad request", EventState.FAILED),  # last instant of minute 0
                "e3": (START - 0.001, 200, None, EventState.DELIVERED),  # before the hour: not counted
                "e4": (NOW, 200, None, EventState.DELIVERED),  # the current minute, the last
            })  # fmt: skip
            push(db, {"e1": (START + 60, 409, None, EventState.DELIVERED)})  # a key LINE had accepted

            view = read(db)
            assert len(view.minutes) == 60 and view.since == START and view.minutes[-1].start == NOW - 30
            counts = {i: (m.delivered, m.retried, m.failed) for i, m in enumerate(view.minutes) if m.pushes}
            assert counts == {0: (0, 1, 1), 1: (1, 0, 0), 59: (1, 0, 0)}
            assert view.outcomes == {"delivered": 2, "retried": 1, "failed": 1, "suppressed": 0, "deferred": 0}
            assert view.reasons == (("400", 1), ("500", 1))
            assert view.pushes == 4
            # trigger → push latency of the pushes that delivered (e1 after its retry, e4)
            assert view.minutes[1].latency_avg == 70.0
            assert view.latency_max == NOW - (START - 10)
            assert view.latency_avg == (70.0 + NOW - START + 10) / 2
            # a minute later the first minute has left the hour
            later = read(db, now=NOW + 60)
            assert later.since == START + 60 and later.minutes[0].delivered == 1  # e1's second push
            assert later.outcomes["failed"] == 0 and later.outcomes["retried"] == 0  # e2 ended at 59.999

    run(scenario())


def test_retry_reasons_name_status_codes_timeouts_and_connect_errors(tmp_path: Path, run, db_url) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation(max_retries=3)
            db = p.ctx.db
            accept(db, range(1, 8), at=START)
            retry = EventState.RETRYING
            push(db, {
                "e1": (NOW - 5, 429, "The API rate limit has been exceeded. Try again later.", retry),
                "e2": (NOW - 5, 429, "The API rate limit has been exceeded. Try again later.", retry),
                "e3": (NOW - 5, None, "timeout: no answer within 10 s", retry),
                "e4": (NOW - 5, None, "connect timeout: could not connect within 3 s", retry),
                "e5": (NOW - 5, None, "connection error: ServerDisconnectedError: Server disconnected", retry),
                "e6": (NOW - 5, None, "request could not be sent: ValueError", retry),
                "e7": (NOW - 5, 200, None, EventState.DELIVERED),
            })  # fmt: skip
            view = read(db)
            assert view.reasons == (("429", 2), ("connect error", 2), ("other", 1), ("timeout", 1))
            assert view.outcomes["retried"] == 6 and view.outcomes["delivered"] == 1

    run(scenario())


def test_queue_depth_lag_and_a_channel_next_to_one_of_its_activations(tmp_path: Path, run, db_url) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.create_activation("reminder")
            db = p.ctx.db
            accept(db, [1, 2, 3], at=NOW - 42)
            accept(db, [4], at=NOW - 7, activation="reminder")
            accept(db, [5], at=NOW + 5, activation="reminder")  # due later: waiting, not late

            view = read(db)
            assert view.queue == {"queued": 3, "retrying": 0, "paused": 0, "deferred": 0}
            assert view.lag == 42.0
            channel = read(db, channel=True)
            assert channel.queue["queued"] == 5 and channel.lag == 42.0
            assert {a.name for a in channel.scope.activations} == {"welcome", "reminder"}
            assert read(db, "reminder").lag == 7.0

            pauses.pause_activation(db, "welcome", "by hand, for the test", now=NOW)
            held = read(db)
            assert held.queue["paused"] == 3 and held.lag == 0.0
            assert held.paused_by_hand == "by hand, for the test" and held.hold is None
            key = activations.get(db, "welcome").channel_key
            pauses.trip(db, key, reason="circuit breaker: LINE did not answer", trips=1, now=NOW)
            tripped = read(db, channel=True)
            assert tripped.hold is not None and tripped.hold.kind is pauses.PauseKind.BREAKER
            assert tripped.hold.probe_at == NOW + pauses.probe_delay(1)

    run(scenario())


def test_engagement_and_reconciliation_come_from_the_store(tmp_path: Path, run, db_url) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation(aggregation_unit="welcome_unit")
            p.create_activation("plain", no_aggregation_unit=True)
            db = p.ctx.db
            assert read(db).engagement == () and read(db).reconciliation is None
            key = activations.get(db, "welcome").channel_key
            period = statistics.Period(date(2027, 1, 1), date(2027, 1, 14))
            older = {"overview": {"uniqueImpression": 11, "uniqueClick": 3}}
            newer = {"overview": {"uniqueImpression": 25, "uniqueClick": None, "uniqueMediaPlayed": None}}
            statistics.keep(db, key, "welcome_unit", statistics.Period(date(2027, 1, 1), date(2027, 1, 2)), older,
                            NOW - 900, default_period=True)  # fmt: skip
            statistics.keep(db, key, "welcome_unit", period, newer, NOW - 300, default_period=True)
            [e] = read(db).engagement
            assert (e.unit, e.activations, e.first_day, e.last_day) == ("welcome_unit", ("welcome",), "2027-01-01",
                                                                        "2027-01-14")  # fmt: skip
            assert (e.impressions, e.clicks, e.media_played, e.fetched_at) == (25, None, None, NOW - 300)
            assert read(db, channel=True).engagement == (e,)

            reconcile.keep(db, reconcile.Reconciliation("line", date(2027, 1, 13), key, "equal", "ready", 30, 30, NOW))
            assert not read(db).mismatch
            reconcile.keep(
                db, reconcile.Reconciliation("line", date(2027, 1, 14), key, "line_fewer", "ready", 28, 30, NOW)
            )
            view = read(db, "plain")
            assert view.mismatch and view.reconciliation is not None and view.reconciliation.day == date(2027, 1, 14)
            assert view.engagement == ()  # it sends without a unit
            public = view.public()
            assert public["reconciliation"]["difference"] == -2 and public["null_means"] == "fewer than 20"

    run(scenario())


def test_every_unit_shows_its_latest_default_period_among_hundreds_of_rows(tmp_path: Path, run, db_url) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            for name in ("quiet", "busy"):
                p.create_activation(name, aggregation_unit=f"{name}_unit")
            db = p.ctx.db
            key = activations.get(db, "busy").channel_key
            first = date(2026, 1, 1)

            def figures(n: int) -> dict[str, Any]:
                return {"overview": {"uniqueImpression": n, "uniqueClick": None, "uniqueMediaPlayed": None}}

            statistics.keep(db, key, "quiet_unit", statistics.Period(first, first), figures(20), NOW - 400 * 86_400,
                            default_period=True)  # fmt: skip
            for n in range(250):  # a refreshed unit keeps a default period a day
                last = first + timedelta(days=n)
                period = statistics.Period(max(first, last - timedelta(days=30)), last)
                statistics.keep(db, key, "busy_unit", period, figures(100 + n), NOW - (250 - n) * 86_400,
                                default_period=True)  # fmt: skip
            busy, quiet = read(db, "quiet", channel=True).engagement  # in the order of the activations
            assert (quiet.unit, quiet.first_day, quiet.last_day, quiet.impressions) == ("quiet_unit", "2026-01-01",
                                                                                       "2026-01-01", 20)  # fmt: skip
            assert (busy.unit, busy.last_day, busy.impressions, busy.fetched_at) == ("busy_unit", "2026-09-07", 349,
                                                                                    NOW - 86_400)  # fmt: skip
            assert read(db, "quiet").engagement == (quiet,) and read(db, "busy").engagement == (busy,)

    run(scenario())


def jst(*fields: int) -> float:
    return datetime(*fields, tzinfo=JST).timestamp()  # type: ignore[misc]


def test_figures_kept_before_the_upgrade_still_show_their_default_periods(tmp_path: Path, db_url: str) -> None:
    this = next(m for m in SHIPPED.migrations if m.name == "unit_statistics_default_period")
    before = tmp_path / "migrations"
    before.mkdir()
    for m in SHIPPED.migrations[: this.number - 1]:
        for dialect in ("sqlite", "postgres"):
            (before / f"{m.title}.{dialect}.sql").write_text(m.sql[dialect])  # type: ignore[index]
    db = Database(db_url)
    try:
        migrations.upgrade(db, Catalog(before))
        creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None)
        auth = authentications.create(db, Vault(Fernet.generate_key()), name="line", credentials=creds, now=NOW)
        for name, created in (("welcome", jst(2027, 1, 1, 0, 30)), ("old", jst(2026, 11, 1, 12))):
            spec = {"name": name, "authentication": "line", "recipient": "{{line_user_id}}",
                    "messages": [{"type": "text", "text": "Hi"}], "aggregation_unit": f"{name}_unit"}  # fmt: skip
            activations.create(db, activations.parse_spec(spec), now=created)
        kept = [  # unit, from, to, impressions, fetched at
            ("welcome_unit", "20270101", "20270110", 40, jst(2027, 1, 10, 9)),  # stats' default that day
            ("welcome_unit", "20270105", "20270105", 41, jst(2027, 1, 10, 10)),  # asked for by hand, later
            ("welcome_unit", "20270101", "20270112", 42, jst(2027, 1, 13, 8)),  # --to by hand
            ("old_unit", "20261211", "20270110", 50, jst(2027, 1, 10, 23, 59, 59)),  # 30 days back: the default
            ("old_unit", "20261101", "20261201", 51, jst(2027, 1, 11, 0, 0, 1)),
        ]
        mark = "?" if db.dialect == "sqlite" else "%s"
        with db.transaction() as tx:
            for unit, first, last, n, at in kept:
                tx._conn.execute(  # type: ignore[attr-defined]
                    "INSERT INTO unit_statistics (channel_key, unit, from_day, to_day, figures, fetched_at) "
                    f"VALUES ({', '.join([mark] * 6)})",
                    (auth.channel_key, unit, first, last, orjson.dumps({"overview": {"uniqueImpression": n}}).decode(),
                     at),
                )  # fmt: skip
        migrations.upgrade(db)
        view = overview.read(db, overview.channel_scope(db, auth), now=NOW, rate_limit=1.0, rate_sharing="single")
        assert [(e.unit, e.first_day, e.last_day, e.impressions) for e in view.engagement] == [
            ("old_unit", "2026-12-11", "2027-01-10", 50),
            ("welcome_unit", "2027-01-01", "2027-01-10", 40),
        ]
    finally:
        db.close()


def test_the_pipeline_on_a_fake_clock_and_the_quota_asked_once_a_minute(tmp_path: Path, run, db_url) -> None:  # type: ignore[no-untyped-def]
    options = SimulatorOptions(channels=[ChannelConfig(quota=500)])
    options.script = {user_id(2): [500], user_id(3): [400], user_id(4): ["drop", "drop"]}

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            p.create_activation(max_retries=1, initial_retry_delay=60, retry_delay_multiple=1)
            p.trigger([{"event_id": f"e{n}", "line_user_id": user_id(n), "name": "Ann"} for n in range(1, 6)])
            worker = p.worker()
            await worker.run(until_idle=True)
            states = {e["event_id"]: e["state"] for e in p.log()}
            assert states == {"e1": "delivered", "e2": "delivered", "e3": "failed", "e4": "failed", "e5": "delivered"}

            ops = Operations(p.ctx, WorkerHandle.on_running_loop(worker))
            view = await ops.activation_overview("welcome")
            assert view.outcomes == {"delivered": 3, "retried": 2, "failed": 2, "suppressed": 0, "deferred": 0}
            assert sum(m.delivered for m in view.minutes) == 3 and view.pushes == 7
            assert dict(view.reasons) == {"500": 1, "400": 1, "connect error": 2}
            assert view.queue == dict.fromkeys(overview.WAITING, 0) and view.lag == 0.0
            assert view.lane is not None and view.lane.in_flight == 0 and not view.lane.tripped
            assert view.quota is not None and (view.quota.limit, view.quota.used, view.quota.left) == (500, 3, 497)
            assert quota_requests(p) == 1

            p.trigger([{"event_id": "e6", "line_user_id": user_id(6), "name": "Ann"}])
            await p.run_worker()
            p.clock.advance(30)
            again = await ops.channel_overview("line")
            assert again.outcomes["delivered"] == 4
            assert again.quota is not None and again.quota.used == 3  # the answer of half a minute ago
            assert quota_requests(p) == 1
            p.clock.advance(31)
            fresh = await ops.channel_overview("line")
            assert fresh.quota is not None and fresh.quota.used == 4 and quota_requests(p) == 2

    run(scenario())


def quota_requests(p: Any) -> int:
    return sum(p.sim.record.status_by_endpoint.get("quota", {}).values())


def test_quota_says_why_when_line_does_not_tell(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation()
            p.create_auth(name="revoked", token="not-a-token-line-knows")
            p.create_activation("other", authentication="revoked")
            ops = Operations(p.ctx)
            view = await ops.activation_overview("other")
            assert view.quota is not None and not view.quota.known and view.quota.left is None
            assert "Authentication failed" in (view.quota.note or "")
            unlimited = await ops.activation_overview("welcome")
            assert unlimited.quota is not None and unlimited.quota.known and not unlimited.quota.limited

    run(scenario())


def test_worker_lanes_are_read_through_the_worker_handle(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with pipeline(tmp_path) as p:
            p.create_activation()
            key = activations.get(p.ctx.db, "welcome").channel_key
            worker = Worker(p.ctx.db, p.ctx.vault, p.ctx.settings, clock=p.clock)
            handle = WorkerHandle.on_running_loop(worker)
            assert handle.lane_state(key) is None  # this worker has no lane for it yet
            assert (await Operations(p.ctx).activation_overview("welcome")).lane is None  # no worker here
            p.trigger([{"line_user_id": user_id(1), "name": "Ann"}])
            await worker.run(until_idle=True)
            lane = handle.lane_state(key)
            assert lane is not None and lane.in_flight == 0 and lane.budget >= 1 and not lane.tripped
            assert (await Operations(p.ctx, handle).activation_overview("welcome")).lane == lane

    run(scenario())
