"""Delivery lanes: what one LINE channel does never slows another (issue 7).

Each scenario runs the real worker against the in-process simulator, whose channels can each
hang, answer 5xx or answer late, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lineoa_export import activations, authentications
from lineoa_export.activation_table import iso
from lineoa_export.clock import SystemClock
from lineoa_export.delivery import outbox, pauses
from lineoa_export.delivery.lanes import Breaker, InFlightBudget, Lane, fair_share
from lineoa_export.delivery.line_client import AiohttpTransport, Timeouts
from lineoa_export.delivery.liveness import DEAD_AFTER, FENCE_AFTER, Liveness
from lineoa_export.delivery.outbox import Claimed, Result
from lineoa_export.delivery.outcomes import Outcome
from lineoa_export.delivery.rate_limit import ChannelLimiter
from lineoa_export.delivery.states import EventState
from lineoa_export.delivery.worker import Worker
from lineoa_export.simulator import SimulatorOptions
from lineoa_export.simulator.options import ChannelConfig
from lineoa_export.testing import Pipeline, channel, pipeline, postgres_schema, token, user_id


def _events(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"event_id": f"{prefix}-{i}", "line_user_id": user_id(i), "name": f"n{i}"} for i in range(n)]


def _add_channel(p: Pipeline, n: int) -> str:
    """An authentication and an activation on simulator channel ``n``; returns the activation."""
    p.create_auth(name=f"oa{n}", token=token(n))
    p.create_activation(f"act{n}", authentication=f"oa{n}")
    return f"act{n}"


class Results:
    """A worker listener: every result in the order the worker kept it, by activation."""

    def __init__(self) -> None:
        self.order: list[tuple[str, EventState]] = []
        self.when_done: dict[str, asyncio.Event] = {}
        self.expected: dict[str, int] = {}

    def wait_for(self, activation: str, delivered: int) -> asyncio.Event:
        self.expected[activation] = delivered
        self.when_done[activation] = asyncio.Event()
        return self.when_done[activation]

    def delivered(self, activation: str) -> int:
        return sum(1 for a, s in self.order if a == activation and s is EventState.DELIVERED)

    def __call__(self, claimed: Claimed, result: Result, outcome: Outcome | None) -> None:
        self.order.append((claimed.activation, result.state))
        want = self.expected.get(claimed.activation)
        if want is not None and self.delivered(claimed.activation) >= want:
            self.when_done[claimed.activation].set()


async def _run_until(p: Pipeline, results: Results, done: list[asyncio.Event], **settings: Any) -> None:
    worker = p.worker(**settings)
    worker._listener = results
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(d.wait() for d in done))
    finally:
        worker.stop()
        await task


def test_a_hanging_channel_does_not_hold_back_the_healthy_ones(tmp_path: Path, run, db_url: str) -> None:
    """Three healthy channels deliver everything while the fourth's pushes are still hanging."""
    options = SimulatorOptions(
        channels=[ChannelConfig(), channel(1), channel(2), channel(3), channel(4, hang=True)], hang_seconds=30
    )

    async def scenario() -> None:
        # A real clock: the worker runs as serve runs it (a fake one would race through its quota checks).
        async with pipeline(tmp_path, options, database_url=db_url, clock=SystemClock(), timeout=6.0) as p:
            healthy = [_add_channel(p, n) for n in (1, 2, 3)]
            sick = _add_channel(p, 4)
            p.trigger(_events("h", 200), activation=sick)
            for name in healthy:
                p.trigger(_events(name, 200), activation=name)
            results = Results()
            done = [results.wait_for(name, 200) for name in healthy]
            await _run_until(p, results, done)
            # Every healthy event was delivered before any hanging push came back (6-s timeout).
            assert all(results.delivered(name) == 200 for name in healthy)
            last_healthy = max(i for i, (a, _) in enumerate(results.order) if a != sick)
            assert sick not in [a for a, _ in results.order[: last_healthy + 1]]
            assert p.sim.record.hung > 0

    run(scenario())


def test_a_5xx_storm_on_one_channel_costs_the_others_nothing(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1), channel(2, fail_status=500)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            well, storm = _add_channel(p, 1), _add_channel(p, 2)
            p.trigger(_events("s", 50), activation=storm)
            p.trigger(_events("w", 50), activation=well)
            start = p.clock.now()
            await p.run_worker()
            well_log = p.log(well)
            assert {e["state"] for e in well_log} == {"delivered"}
            # First attempt, at once: no retry wait of the sick channel was spent on them.
            assert all(e["attempts"] == 1 and e["finished_at"] == iso(start) for e in well_log)
            storm_log = p.log(storm)
            assert {e["state"] for e in storm_log} == {"failed"}
            assert {e["status_code"] for e in storm_log} == {500}
            # LINE answered (500): a 5xx storm is retried per event, it does not trip the breaker.
            assert pauses.board(p.ctx.db).tripped(activations.get(p.ctx.db, storm).channel_key) is None

    run(scenario())


def test_claims_are_fair_a_deep_backlog_does_not_starve_a_small_channel(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1), channel(2)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url) as p:
            deep, small = _add_channel(p, 1), _add_channel(p, 2)
            p.trigger(_events("d", 1500), activation=deep)
            p.trigger(_events("s", 10), activation=small)  # stored after all 1,500
            results = Results()
            worker = p.worker()
            worker._listener = results
            await worker.run(until_idle=True)
            positions = [i for i, (a, _) in enumerate(results.order) if a == small]
            assert len(positions) == 10
            # FIFO would send the small channel's events last (positions 1,500+): lanes send them
            # within the first claim of each lane.
            assert max(positions) < 400
            assert results.delivered(deep) == 1500

    run(scenario())


def test_the_breaker_trips_on_a_hanging_channel_probes_and_closes_by_itself(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1, hang=True)], hang_seconds=30)

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url, timeout=0.3) as p:
            act = _add_channel(p, 1)
            p.trigger(_events("b", 40), activation=act)
            key = activations.get(p.ctx.db, act).channel_key
            results = Results()
            seen_tripped: list[Any] = []

            waiting: list[str] = []

            def heal_once_tripped(claimed: Claimed, result: Result, outcome: Outcome | None) -> None:
                results(claimed, result, outcome)
                if not result.attempted and result.state is EventState.RETRYING:
                    waiting.append(result.error or "")
                hold = pauses.board(p.ctx.db).tripped(key)
                if hold is not None and not seen_tripped:
                    seen_tripped.append((hold, p.clock.now(), activations.get(p.ctx.db, act)))
                    p.sim.options.channels[1].hang = False  # LINE is back

            worker = p.worker()
            worker._listener = heal_once_tripped
            tripped_at_start = p.clock.now()
            await worker.run(until_idle=True)

            assert seen_tripped, "the breaker never tripped"
            hold, tripped_at, status = seen_tripped[0]
            assert hold.kind is pauses.PauseKind.BREAKER and "did not answer 5 pushes in a row" in hold.reason
            assert hold.probe_at == pytest.approx(tripped_at + 5.0)
            assert status.channel_pause_kind == "breaker"
            assert status.pause_reason.startswith("channel tripped since ")  # what activation show says
            # What the activation table says of the events that waited without being sent:
            assert waiting and all(error.startswith("waiting: channel tripped") for error in waiting)
            # It closed by itself once LINE answered, and every event went out exactly once.
            assert pauses.board(p.ctx.db).tripped(key) is None
            log = p.log(act)
            assert [e["state"] for e in log] == ["delivered"] * 40
            assert p.sim.record.accepted_total == 40
            # While tripped, nothing but the probe was sent: only the pushes in flight when it
            # tripped hung; the rest waited without an attempt and without spending a retry.
            # (A loaded machine may time a push out before it reaches the simulator: count attempts.)
            no_answers = sum(e["attempts"] for e in log) - 40
            assert 5 <= no_answers < 40
            assert p.sim.record.hung <= no_answers
            assert p.clock.now() >= tripped_at_start + 5.0

    run(scenario())


# -- budgets, shares, takeover: the pieces, on their own -------------------------------------------


def test_the_in_flight_budget_follows_the_latency_line_shows() -> None:
    budget = InFlightBudget(rate=2000, burst=20, max_connections=1000)
    start = budget.limit
    for _ in range(400):
        budget.observe(0.100)  # LINE 100 ms away
    assert budget.limit == pytest.approx(2000 * 0.100 * 1.5 + 20, rel=0.05)
    far = budget.limit
    for _ in range(400):
        budget.observe(0.001)
    assert budget.limit < start < far
    for _ in range(400):
        budget.observe(2.0)
    assert budget.limit == 1000  # bounded by the channel's connection limit


def test_a_lane_never_holds_more_than_its_fair_share_of_the_process() -> None:
    lane = Lane("c", ChannelLimiter(2000, 20), InFlightBudget(2000, 20, 1000), Breaker(5))
    assert lane.limit() == lane.budget.limit
    lane.share = fair_share(concurrency=16, busy_lanes=4)
    assert lane.limit() == 4
    assert fair_share(concurrency=1024, busy_lanes=1) == 1024
    assert fair_share(concurrency=8, busy_lanes=100) >= 1


def test_a_lane_leases_no_more_than_it_can_send_in_a_moment() -> None:
    # A rate far above what 64 connections carry at 10 ms: the lane claims for 6,400/s, not 1e6/s,
    # so the rest of the backlog stays claimable by other workers.
    lane = Lane("c", ChannelLimiter(1e6, 20), InFlightBudget(1e6, 20, 64), Breaker(5))
    for _ in range(200):
        lane.budget.observe(0.010)
    assert lane.limit() == 64
    assert lane.capacity() == pytest.approx(64 + 64 / 0.010 * 0.1, rel=0.05)
    # At LINE's usual limit the rate is what binds: a tenth of a second of it, as before.
    normal = Lane("d", ChannelLimiter(2000, 20), InFlightBudget(2000, 20, 1000), Breaker(5))
    for _ in range(200):
        normal.budget.observe(0.010)
    assert normal.capacity() == normal.limit() + 200
    normal.budget.latency = 0.0  # an answer faster than the clock can tell: the rate still bounds it
    assert normal.capacity() == normal.limit() + 200


def test_a_dead_workers_events_are_taken_over_within_5_seconds_not_at_lease_end(
    tmp_path: Path, run, db_url: str
) -> None:
    async def scenario() -> None:
        async with pipeline(tmp_path, database_url=db_url) as p:
            p.create_activation()
            p.trigger(_events("k", 5))
            db, now = p.ctx.db, p.clock.now()
            key = activations.get(db, p.activation).channel_key
            dead = Liveness(db, "dead-worker", p.clock.now)
            dead.register()
            held = outbox.claim(
                db, worker="dead-worker", now=now, lease_seconds=35, wants=[(key, 10)], alive_since=now - DEAD_AFTER
            )
            assert len(held) == 5
            # The dead worker's heartbeat stops here (kill -9). 3 s later it may still be alive:
            later = now + 3.0
            assert (
                outbox.claim(
                    db, worker="w2", now=later, lease_seconds=35, wants=[(key, 10)], alive_since=later - DEAD_AFTER
                )
                == []
            )
            # 4.5 s after its last heartbeat it is dead: its events move at once, 30 s before the lease ends.
            later = now + 4.5
            taken = outbox.claim(
                db, worker="w2", now=later, lease_seconds=35, wants=[(key, 10)], alive_since=later - DEAD_AFTER
            )
            assert sorted(c.retry_key for c in taken) == sorted(c.retry_key for c in held)

    run(scenario())


def test_a_worker_cut_off_from_the_database_fences_itself_before_anyone_may_take_over() -> None:
    """No overlap of one retry key: the fence comes before others may see the worker as dead."""
    mono = [100.0]

    live = Liveness(None, "w", lambda: 0.0, monotonic=lambda: mono[0])  # type: ignore[arg-type]  # no beat is made
    assert not live.fenced
    mono[0] += FENCE_AFTER - 0.1
    assert not live.fenced
    mono[0] += 0.2
    assert live.fenced
    assert FENCE_AFTER + 1.0 < DEAD_AFTER  # a heartbeat period of margin between the two


def test_a_rotated_token_takes_effect_in_a_running_worker_within_seconds(tmp_path: Path, run, db_url: str) -> None:
    options = SimulatorOptions(channels=[ChannelConfig(), channel(1), channel(2)])

    async def scenario() -> None:
        async with pipeline(tmp_path, options, database_url=db_url, clock=SystemClock()) as p:
            act = _add_channel(p, 1)
            results = Results()
            worker = p.worker()
            worker._listener = results
            task = asyncio.create_task(worker.run())
            try:
                first = results.wait_for(act, 5)
                p.trigger(_events("before", 5), activation=act)
                worker.wake()
                async with asyncio.timeout(20):
                    await first.wait()
                # The channel's token is rotated while the worker runs (to OA 2's token), and LINE
                # refuses the old one from now on: nothing may pause or be lost for it.
                creds = authentications.Credentials.from_options(token(2), None, None)
                authentications.rotate(p.ctx.db, p.ctx.vault, "oa1", credentials=creds, bot=None)
                p.sim.options.channels[1].access_tokens = []
                second = results.wait_for(act, 10)
                p.trigger(_events("after", 5), activation=act)
                worker.wake()
                async with asyncio.timeout(20):
                    await second.wait()
            finally:
                worker.stop()
                await task
            by_event = {a.retry_key: a.channel_id for a in p.sim.record.accepted}
            channels = [by_event[e["retry_key"]] for e in p.log(act)]
            # Pushes after the rotation went out with the new token: at once, not after a pause.
            assert channels.count(channel(1).channel_id) == 5
            assert channels.count(channel(2).channel_id) == 5
            assert {e["state"] for e in p.log(act)} == {"delivered"}
            assert activations.get(p.ctx.db, act).pause_reason is None

    run(scenario())


@pytest.mark.postgres
def test_workers_sharing_postgres_without_redis_split_the_limit_and_say_so(
    tmp_path: Path, run, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(url: str) -> None:
        async with pipeline(tmp_path, database_url=url, rate_limit=600) as p:
            p.create_activation()
            p.trigger(_events("s", 5))
            Liveness(p.ctx.db, "another-host:1:w", p.clock.now).register()  # a second live worker
            worker = p.worker()
            worker.liveness.register()
            worker.liveness.beat()
            await worker.run(until_idle=True)
            assert {e["state"] for e in p.log()} == {"delivered"}
            assert [lane.budget.rate for lane in worker.lanes().values()] == [300.0]

    with postgres_schema() as url, caplog.at_level("WARNING"):
        run(scenario(url))
    assert any("not LINEOA_EXPORT_REDIS_URL" in r.getMessage() for r in caplog.records)


def test_a_push_cut_off_by_the_fence_is_recorded_as_an_attempt_and_sent_again(tmp_path: Path, run) -> None:
    """Every attempt is in the activation table, also the one a fenced worker aborted mid-request."""

    class FirstPushHangs:
        """The real transport, except that the first push never gets an answer (it hangs)."""

        def __init__(self, real: AiohttpTransport) -> None:
            self.real, self.hanging, self.pushes = real, asyncio.Event(), 0

        async def request(self, method: str, url: str, headers: Any, body: bytes | None) -> Any:
            if url.endswith("/v2/bot/message/push"):
                self.pushes += 1
                if self.pushes == 1:
                    self.hanging.set()
                    await asyncio.Event().wait()  # until the fence cancels it
            return await self.real.request(method, url, headers, body)

        async def close(self) -> None:
            await self.real.close()

    class CutOff:
        """The worker's heartbeat database, which can be cut off."""

        def __init__(self, db: Any) -> None:
            self.db, self.cut = db, False

        def run(self, name: str, params: Any = None) -> Any:
            if self.cut:
                raise OSError("database unreachable")
            return self.db.run(name, params)

    async def scenario() -> None:
        async with pipeline(tmp_path, clock=SystemClock()) as p:
            p.create_activation()
            p.trigger(_events("f", 1))
            transport = FirstPushHangs(AiohttpTransport(Timeouts(1.0, 10.0), max_connections=8))
            results = Results()
            worker = Worker(p.ctx.db, p.ctx.vault, p.ctx.settings, clock=p.clock, transport=transport, listener=results)
            heartbeat_db = CutOff(p.ctx.db)
            worker.liveness.db = heartbeat_db  # type: ignore[assignment]
            task = asyncio.create_task(worker.run())
            try:
                async with asyncio.timeout(30):
                    await transport.hanging.wait()
                    heartbeat_db.cut = True  # no heartbeat for 2 s: the worker fences itself
                    while not worker.liveness.fenced:  # noqa: ASYNC110 - the fence is about real time
                        await asyncio.sleep(0.1)
                    heartbeat_db.cut = False
                    await results.wait_for(p.activation, 1).wait()
            finally:
                worker.stop()
                await task
            entry = p.log()[0]
            assert entry["state"] == "delivered"
            assert [a["status_code"] for a in entry["attempt_log"]] == [None, 200]
            assert entry["attempt_log"][0]["error"].startswith("aborted: this worker lost its database heartbeat")
            assert transport.pushes == 2  # LINE saw two requests; the table shows two attempts

    run(scenario())
