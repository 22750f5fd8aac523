"""The delivery worker: claim → lane → rate limit → push → outcome → decision → record.

It wires the steps together and stores what they return; it decides nothing itself
(``outcomes`` reads LINE's answers, ``retry_policy`` decides what follows, ``pauses`` says
what is held, ``lanes`` how much each channel may have in flight).

One asyncio loop per process::

    claimer ──► lane A queue ──► A's senders ─┐
       │   └──► lane B queue ──► B's senders ─┼──► recorder (batched writes)
       │                                      │
    housekeeping (≈1 s): holds, channels, credentials, live workers
    liveness: heartbeat + fence          quota checker: quota-paused channels

Each channel is a lane (see lanes.py): claims are made per lane with room, so one channel's
backlog or sickness never takes another's turn. The process as a whole never has more than
``concurrency`` pushes in flight. Storage runs on a database thread (inline for SQLite in a
worker process), each round trip carrying a batch. Retries are rows with a due time, never a
sleep in a sender. Memory stays flat however deep the outbox is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import orjson

from .. import authentications
from ..clock import Clock, SystemClock
from ..errors import LineoaExportError
from ..settings import Settings
from ..store.database import Database
from ..vault import Vault
from . import audience_gate, outbox, pauses
from .channel import LineChannel
from .lanes import Breaker, InFlightBudget, Lane, fair_share
from .line_client import AiohttpTransport, LineClient, Timeouts, Transport
from .liveness import DEAD_AFTER, Liveness
from .outbox import Claimed, Result
from .outcomes import Outcome, OutcomeKind
from .rate_limit import RateLimits
from .retry_policy import KEY_EXPIRED_ERROR, Decision, Verdict, decide, key_expired
from .states import EventState
from .units import UnitBudget

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

FAST_POLL = 0.005  # seconds between polls while events keep arriving
CLAIM_RETRY_SECONDS = 1.0  # after a failed claim
HOUSEKEEPING_EVERY = 1.0  # seconds between reads of holds, channels and credentials

_STATE_OF = {
    Verdict.DELIVERED: EventState.DELIVERED,
    Verdict.RETRY: EventState.RETRYING,
    Verdict.PAUSE: EventState.PAUSED,
    Verdict.FAIL: EventState.FAILED,
}


@dataclass
class WorkerStats:
    """What a worker did: outcomes by kind, results by final state, attempts made."""

    outcomes: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    attempts: int = 0

    def add(self, result: Result, outcome: Outcome | None) -> None:
        self.states[result.state] += 1  # StrEnum keys compare and print as their values
        if outcome is not None:
            self.outcomes[outcome.kind] += 1
            self.attempts += 1


Listener = Callable[[Claimed, Result, Outcome | None], None]


ABORTED_BY_FENCE = "aborted: this worker lost its database heartbeat and stopped its pushes (sent again)"


class Fenced(Exception):
    """This worker lost its heartbeat: it must not send (see liveness.py)."""


class Worker:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        settings: Settings,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        listener: Listener | None = None,
        inline_sqlite: bool = True,
    ) -> None:
        self.db = db
        self.vault = vault
        self.settings = settings
        self.clock = clock or SystemClock()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._transport = transport or AiohttpTransport(
            Timeouts(settings.connect_timeout, settings.timeout), max_connections=settings.concurrency
        )
        self._listener = listener
        #: Told (activation, state) of every event the audience gate suppressed or deferred (metrics).
        self.on_held: Callable[[str, EventState], None] | None = None
        self._limits = RateLimits(
            settings.rate_limit, settings.rate_burst, settings.redis_url, shared_store=db.dialect == "postgres"
        )
        self.liveness = Liveness(db, self.id, self.clock.now)
        self.liveness.on_fence(self._abandon_all)
        self._lanes: dict[str, Lane] = {}
        self._channel_keys: list[str] = []
        self._board = pauses.Board()
        # key → claim generation when a hold was first seen: events claimed up to then are held
        # without sending; events claimed later cannot be held (claims skip paused events).
        self._holds: dict[str, int] = {}
        self._generation = 0
        self._channels: dict[str, LineChannel] = {}
        self._auth_versions: dict[str, bytes] = {}
        self._channel_lookups: dict[str, asyncio.Future[LineChannel]] = {}
        self.units = UnitBudget(db, self._db, self.clock.now)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lineoa-db")
        self._inline_db = db.dialect == "sqlite" and inline_sqlite
        self._gate = asyncio.Semaphore(settings.concurrency)  # the process's pushes in flight
        self._senders: set[asyncio.Task[None]] = set()
        self._results: list[Result] = []
        self._aborted: list[Result] = []  # pushes the fence cut off, recorded once the heartbeat is back
        self._results_ready = asyncio.Event()
        self._held = 0  # claimed and not yet recorded
        self._settled = asyncio.Event()  # set whenever held work drops
        self._last_claimed = float("-inf")
        self._claimed_last_round = 0
        self._claim_failing = False  # the last claim failed (the database is away)
        self._next_housekeeping = 0.0
        self._warned_unshared = False
        self._wake = asyncio.Event()
        self._stopping = False

    # -- outside controls (call them on the worker's loop; web/handle.py makes them thread-safe) --

    def wake(self) -> None:
        """New events were stored: look now instead of at the next poll."""
        self._wake.set()
        for lane in self._lanes.values():
            lane.next_claim_at = 0.0

    def stop(self) -> None:
        """Drain: stop claiming, finish what is in flight, give back what was not started."""
        self._stopping = True
        self._wake.set()
        self._settled.set()

    def hold_activation(self, name: str) -> None:
        """The activation was paused: do not send its events this worker already claimed."""
        self._holds["activation:" + name] = self._generation

    @property
    def in_flight(self) -> int:
        return self._held

    def lanes(self) -> dict[str, Lane]:
        """The lanes of this worker by channel key (for metrics and status)."""
        return dict(self._lanes)

    def rate_limit_degraded(self) -> list[str]:
        return self._limits.degraded()

    # -- run ---------------------------------------------------------------------------------

    async def run(self, *, until_idle: bool = False) -> WorkerStats:
        await self._db(self.liveness.register)
        beat = asyncio.create_task(self.liveness.run(self._beat_call))
        recorder = asyncio.create_task(self._record_loop())
        checker = None if until_idle else asyncio.create_task(self._quota_loop())
        try:
            await self._claim_loop(until_idle)
        finally:
            self._stopping = True
            await self._drain()
            # The recorder is told to finish, never cancelled: a cancelled write could drop a
            # batch of outcomes LINE has already accepted.
            self._results_ready.set()
            await asyncio.gather(recorder, return_exceptions=True)
            for task in (checker, beat):
                if task:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            await self._flush()
            with contextlib.suppress(Exception):
                await self._db(self.liveness.forget)
            await self._transport.close()
            await self._limits.close()
            self._executor.shutdown(wait=True)
        return self.stats

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._inline_db:
            # SQLite answers in microseconds: calling it here costs less than handing the GIL
            # to a database thread and back for every row (the convoy effect).
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def _beat_call(self, fn: Callable[[], None]) -> None:
        """Heartbeats on a thread of their own when the store is remote: a slow claim must not delay them."""
        if self._inline_db:
            fn()
            return
        await asyncio.to_thread(fn)

    # -- claimer -----------------------------------------------------------------------------

    async def _claim_loop(self, until_idle: bool) -> None:
        while not self._stopping:
            if time.monotonic() >= self._next_housekeeping:
                await self._housekeeping()
            if self.liveness.fenced:
                await self._wait_unfenced()
                continue
            if len(self._results) >= 4 * self.settings.batch_size:
                await self._wait_settled()
                continue
            try:
                full = await self._claim_round()
            except Exception as exc:
                # The database is away (locked, restarting): keep the worker alive and ask again.
                # One traceback per outage, then one line a try: a log a reader can still follow.
                log.warning(
                    "claiming events failed (%s: %s); trying again in %g s",
                    type(exc).__name__,
                    exc,
                    CLAIM_RETRY_SECONDS,
                    exc_info=not self._claim_failing,
                )
                self._claim_failing = True
                await asyncio.sleep(CLAIM_RETRY_SECONDS)
                continue
            if self._claim_failing:
                log.warning("claiming events works again")
                self._claim_failing = False
            if full:
                continue  # more may be due right now
            if until_idle:
                if not await self._idle_wait():
                    return
            else:
                await self._poll_wait()

    async def _claim_round(self) -> bool:
        """One claim for every lane with room; True when some lane got all it asked for."""
        now = self.clock.now()
        mono = time.monotonic()
        wants: list[tuple[str, int]] = []
        self._share_out()
        for key in self._channel_keys:
            lane = self._lane(key)
            if lane.breaker.open and not lane.probing:
                await self._maybe_probe(lane, now)
            room = lane.room()
            wanted = 1 if lane.probing else min(room, self.settings.batch_size)
            threshold = 1 if lane.probing else max(1, min(self.settings.batch_size, lane.capacity()) // 2)
            if room >= threshold and mono >= lane.next_claim_at:
                wants.append((key, wanted))
        if not wants:
            self._claimed_last_round = 0
            return False
        batch = await self._db(
            outbox.claim,
            self.db,
            worker=self.id,
            now=now,
            lease_seconds=self.settings.lease_seconds,
            wants=wants,
            alive_since=now - DEAD_AFTER,
            on_held=self.on_held,
        )
        self._generation += 1
        self._claimed_last_round = len(batch)
        got = Counter(c.channel_key for c in batch)
        for claimed in batch:
            self._lane(claimed.channel_key).queue.put_nowait((self._generation, claimed))
        self._held += len(batch)
        if batch:
            self._last_claimed = mono
            self._share_out()  # before senders start: the lanes that just got work count too
        full = False
        for key, wanted in wants:
            lane = self._lanes[key]
            self._start_senders(lane)
            if got[key] >= wanted:
                full = full or not lane.probing
            else:
                lane.next_claim_at = mono + self._poll_interval()  # caught up: look again at the next poll
        return full

    async def _maybe_probe(self, lane: Lane, now: float) -> None:
        """A tripped lane whose probe time came: try to be the one worker that sends the probe."""
        probe_at = lane.breaker.probe_at
        if probe_at is None or probe_at > now:
            return
        lane.probing = await self._db(
            pauses.take_probe, self.db, lane.channel_key, now=now, probe_seconds=self.settings.timeout + 5
        )
        if not lane.probing:
            lane.breaker.probe_at = now + self.settings.timeout + 5  # another worker probes; look later

    def _poll_interval(self) -> float:
        busy = time.monotonic() - self._last_claimed < 1.0
        return min(FAST_POLL, self.settings.poll_interval) if busy else self.settings.poll_interval

    async def _idle_wait(self) -> bool:
        """For ``--until-idle``: wait for what is due next; False once nothing is left to do."""
        if self._held:
            await self._wait_settled()
            return True
        await self._flush()
        now = self.clock.now()
        pending = await self._db(outbox.pending, self.db, now=now)
        if pending.count == 0:
            return False
        for lane in self._lanes.values():
            lane.next_claim_at = 0.0
        wake_at = pending.next_due
        if (wake_at is None or wake_at <= now) and not self._claimed_last_round:
            # Due, yet no lane would claim it: its channel is tripped. Wait for the probe.
            probes = [lane.breaker.probe_at for lane in self._lanes.values() if lane.breaker.probe_at is not None]
            wake_at = min(probes, default=now + 1.0)
        if wake_at is not None and wake_at > now:
            # Look again at least every second: what is due next may be another worker's lease,
            # and that worker may finish (and free it) long before the lease would run out.
            await self.clock.sleep(min(wake_at - now, 1.0))
        self._next_housekeeping = 0.0  # the clock moved: holds and probes may have changed
        return True

    async def _poll_wait(self) -> None:
        """Wait for a wake-up, the next poll, or the moment a lane has room again.

        While events keep arriving (the last one claimed under a second ago) the outbox is
        polled every few milliseconds, so a trigger from another process leaves within
        that; once traffic stops, polls slow to ``poll_interval``.
        """
        self._wake.clear()
        self._settled.clear()
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._settled.wait())]
        try:
            await asyncio.wait(waits, timeout=self._poll_interval(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _wait_settled(self) -> None:
        self._settled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), HOUSEKEEPING_EVERY)

    async def _wait_unfenced(self) -> None:
        """Fenced: wait for the heartbeat to come back, then give up every lease still held."""
        while self.liveness.fenced and not self._stopping:  # noqa: ASYNC110 - the heartbeat task sets no event
            await asyncio.sleep(0.2)
        # The pushes the fence aborted may have reached LINE: each is an attempt of its event (its
        # lease still ours unless another worker took the event over, then the write is skipped).
        self._results.extend(self._aborted)
        self._held += len(self._aborted)
        self._aborted = []
        with contextlib.suppress(Exception):
            await self._flush()
            await self._db(outbox.release, self.db, None, worker=self.id)
            log.warning("heartbeat is back: this worker sends again")

    # -- lanes -------------------------------------------------------------------------------

    def _lane(self, channel_key: str) -> Lane:
        lane = self._lanes.get(channel_key)
        if lane is None:
            s = self.settings
            lane = self._lanes[channel_key] = Lane(
                channel_key,
                self._limits.for_channel(channel_key),
                InFlightBudget(self._limits.local_rate, s.rate_burst, s.channel_connections),
                Breaker(pauses.TRIP_AFTER),
            )
            self._apply_board(lane)
        return lane

    def _share_out(self) -> None:
        """Give every lane its fair share of the process's pushes in flight (lanes.fair_share)."""
        lanes = [self._lane(key) for key in self._channel_keys]
        share = fair_share(self.settings.concurrency, sum(1 for lane in lanes if lane.busy()))
        for lane in lanes:
            lane.share = share

    def _start_senders(self, lane: Lane) -> None:
        for _ in range(lane.senders_wanted()):
            lane.senders += 1
            task = asyncio.create_task(self._send_loop(lane))
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    def _abandon_all(self) -> None:
        """Fenced: stop every push now. Leases stay until the others see this worker as dead
        (or until the heartbeat is back, when they are given back)."""
        for task in list(self._senders):
            task.cancel()
        for lane in self._lanes.values():
            while not lane.queue.empty():
                lane.queue.get_nowait()
        self._held = len(self._results)
        self._settled.set()

    # -- senders -----------------------------------------------------------------------------

    async def _send_loop(self, lane: Lane) -> None:
        try:
            while True:
                item = await lane.queue.get()
                if item is None:
                    return
                generation, claimed = item
                lane.in_flight += 1
                try:
                    result, outcome = await self._deliver(lane, claimed, generation)
                except Fenced:
                    continue  # the event stays leased; see _abandon_all
                except Exception:  # a bug must not lose the event: its lease runs out, it is retried
                    log.exception("delivery of event %s failed unexpectedly", claimed.id)
                    self._held -= 1
                    self._settled.set()
                    continue
                finally:
                    lane.in_flight -= 1
                self._keep(claimed, result, outcome)
                if lane.should_retire():
                    return
        finally:
            lane.senders -= 1

    def _keep(self, claimed: Claimed, result: Result, outcome: Outcome | None) -> None:
        self.stats.add(result, outcome)
        self._results.append(result)  # first: whatever a listener does, the outcome is kept
        self._settled.set()  # a lane has room again
        if self._listener is not None:
            try:
                self._listener(claimed, result, outcome)
            except Exception:
                log.exception("a result listener failed")
        self._results_ready.set()

    def _is_held(self, c: Claimed, generation: int) -> bool:
        if not self._holds:
            return False  # the usual case: nothing is paused (no keys to build per push)
        for key in ("channel:" + c.channel_key, "activation:" + c.activation):
            if generation <= self._holds.get(key, -1):
                return True
        return False

    async def _deliver(self, lane: Lane, c: Claimed, generation: int) -> tuple[Result, Outcome | None]:
        now = self.clock.now()
        if key_expired(c.first_attempt_at, now):
            return self._settle(c, EventState.FAILED, error=KEY_EXPIRED_ERROR, now=now), None
        held = self._held_back(lane, c, generation, now)
        if held is None and not lane.limiter.try_acquire():
            await lane.limiter.acquire()
            # The wait may have seen the channel trip or pause: look again before sending.
            held = self._held_back(lane, c, generation, self.clock.now())
        if held is not None:
            return held, None
        probe, lane.probing = lane.probing, False
        started = self.clock.now()
        if started > c.leased_until - 2 * self.settings.timeout:
            # Too long in line: the lease could run out mid-request and another worker send the
            # same key at the same time. Give the event back, untouched, to be claimed afresh.
            return self._settle(
                c, EventState.RETRYING if c.retries else EventState.QUEUED, error=None, now=started
            ), None
        outcome, duration = await self._push_gated(lane, c, started)
        breaker = lane.breaker
        if outcome.status_code is not None and not breaker.open and not breaker.failures:
            lane.budget.observe(duration)  # the usual case, without a coroutine: see _after_answer
            probe_at = None
        else:
            probe_at = await self._after_answer(lane, outcome, duration, probe)
        decision = decide(
            outcome,
            c.policy,
            retries_used=c.retries,
            first_attempt_at=c.first_attempt_at or started,
            now=self.clock.now(),
            breaker_probe_at=probe_at,
        )
        if outcome.kind is OutcomeKind.RATE_LIMITED:
            lane.limiter.slow_down()
        if decision.verdict is Verdict.PAUSE and not lane.paused:
            await self._pause_channel(lane, c, outcome)
        return self._result(c, outcome, decision, started, duration * 1000), outcome

    def _held_back(self, lane: Lane, c: Claimed, generation: int, now: float) -> Result | None:
        """The event must not be sent now (paused, or its channel tripped): its settled result."""
        if lane.paused or self._is_held(c, generation):
            return self._settle(c, EventState.PAUSED, error=None, now=now)
        if lane.breaker.open and not lane.probing:
            # Said in the activation table: why this event waits, and until when.
            error = f"waiting: channel tripped (LINE did not answer), next probe at {_utc(lane.breaker.probe_at)}"
            return self._settle(c, EventState.RETRYING, error=error, now=now, due=lane.breaker.probe_at)
        return None

    async def _push_gated(self, lane: Lane, c: Claimed, started: float) -> tuple[Outcome, float]:
        async with self._gate:
            if self.liveness.fenced:
                raise Fenced
            t0 = time.perf_counter()
            try:
                outcome = await self._push(c, c.first_attempt_at or started)
            except asyncio.CancelledError:
                if self.liveness.fenced:
                    self._aborted.append(self._aborted_attempt(c, started))
                raise
            return outcome, time.perf_counter() - t0

    def _aborted_attempt(self, c: Claimed, started: float) -> Result:
        """A push the fence cut off: an attempt without an answer, due again at once, no retry spent."""
        return Result(
            event_id=c.id,
            state=EventState.RETRYING,
            attempt=c.attempts + 1,
            retries=c.retries,
            started_at=started,
            duration_ms=None,
            status_code=None,
            error=ABORTED_BY_FENCE,
            line_request_id=None,
            accepted_request_id=None,
            sent_message_ids=None,
            next_attempt_at=started,
            finished_at=None,
        )

    async def _after_answer(self, lane: Lane, outcome: Outcome, duration: float, probe: bool) -> float | None:
        """Feed the lane's budget and breaker; the probe time while the channel is tripped, else None."""
        breaker = lane.breaker
        if outcome.status_code is not None:
            lane.budget.observe(duration)
            if breaker.answered():
                log.info("channel %s answers again: breaker closed", lane.channel_key)
                await self._db(pauses.close_breaker, self.db, lane.channel_key)
                self._wake.set()
            return None
        if breaker.no_answer() or (probe and breaker.open):
            breaker.open = True
            breaker.trips += 1
            reason = pauses.breaker_reason(outcome, breaker.failures)
            log.warning("channel %s tripped (trip %d): %s", lane.channel_key, breaker.trips, reason)
            breaker.probe_at = await self._db(
                pauses.trip, self.db, lane.channel_key, reason=reason, trips=breaker.trips, now=self.clock.now()
            )
        return breaker.probe_at if breaker.open else None

    async def _push(self, c: Claimed, first_attempt_at: float, *, resent: bool = False) -> Outcome:
        try:
            channel = self._channels.get(c.authentication) or await self._channel(c.authentication)
        except LineoaExportError as exc:
            # Stored credentials that cannot be used (the key changed, the authentication was
            # deleted): a credentials problem of the channel, so it pauses rather than loops.
            return Outcome(OutcomeKind.UNAUTHORIZED, error=f"stored credentials unusable: {exc}")
        body = c.body
        if c.aggregation_unit is not None:
            # The month of the first attempt decides, so a retry sends the same bytes (units.py).
            unit = c.aggregation_unit
            known = self.units.known_body(c.channel_key, unit, body, first_attempt_at)
            body = known or await self.units.body_for(channel, c.channel_key, unit, body, first_attempt_at)
        outcome = await channel.push(body, c.retry_key)
        unauthorized = outcome.kind is OutcomeKind.UNAUTHORIZED
        if unauthorized and not resent and await self._credentials_changed(c.authentication, channel):
            # Rotated (or re-created) since this worker loaded them: resend with the new ones rather
            # than pause the channel. A 401 does not use the retry key up, so this stays duplicate-free.
            return await self._push(c, first_attempt_at, resent=True)
        return outcome

    async def _credentials_changed(self, auth_name: str, used: LineChannel) -> bool:
        """True (and the cached channel dropped) when the stored authentication differs from ``used``'s."""
        if self._channels.get(auth_name) is not used:
            return True  # another sender saw the change first and dropped them
        loaded = self._auth_versions.get(auth_name)
        _, _, versions = await self._db(_read_state, self.db)
        if versions.get(auth_name) == loaded:
            return False
        self._auth_versions = versions
        self._channels.pop(auth_name, None)
        return auth_name in versions

    def _result(self, c: Claimed, outcome: Outcome, decision: Decision, started: float, duration_ms: float) -> Result:
        final = decision.verdict in (Verdict.DELIVERED, Verdict.FAIL)
        error = None if decision.verdict is Verdict.DELIVERED else (decision.error or outcome.error)
        return Result(
            event_id=c.id,
            state=_STATE_OF[decision.verdict],
            attempt=c.attempts + 1,
            retries=decision.retries,
            started_at=started,
            duration_ms=round(duration_ms, 3),
            status_code=outcome.status_code,
            error=error,
            line_request_id=outcome.request_id,
            accepted_request_id=outcome.accepted_request_id,
            sent_message_ids=orjson.dumps(outcome.sent_message_ids).decode() if outcome.sent_message_ids else None,
            next_attempt_at=decision.next_attempt_at,
            finished_at=started if final else None,
        )

    def _settle(
        self, c: Claimed, state: EventState, *, error: str | None, now: float, due: float | None = None
    ) -> Result:
        """An event decided without sending (expired key, held, given back, waiting for a probe)."""
        return Result(
            event_id=c.id,
            state=state,
            attempt=c.attempts,
            retries=c.retries,
            started_at=now,
            duration_ms=None,
            status_code=None,
            error=error,
            line_request_id=None,
            accepted_request_id=None,
            sent_message_ids=None,
            next_attempt_at=None if state.is_final else (due if due is not None else now),
            finished_at=now if state.is_final else None,
            attempted=False,
        )

    # -- channels and their credentials --------------------------------------------------------

    async def _channel(self, auth_name: str) -> LineChannel:
        channel = self._channels.get(auth_name)
        if channel is not None:
            return channel
        # One lookup per authentication, however many senders ask at once.
        lookup = self._channel_lookups.get(auth_name)
        if lookup is None:
            lookup = self._channel_lookups[auth_name] = asyncio.ensure_future(self._load_channel(auth_name))
        try:
            channel = await asyncio.shield(lookup)
        finally:
            if self._channel_lookups.get(auth_name) is lookup and lookup.done():
                self._channel_lookups.pop(auth_name, None)  # a later event looks again if it failed
        self._channels[auth_name] = channel
        return channel

    async def _load_channel(self, auth_name: str) -> LineChannel:
        auth = await self._db(authentications.get, self.db, auth_name)
        creds = await self._db(authentications.load_credentials, self.db, self.vault, auth)
        client = LineClient(self._transport, auth.api_url)
        return LineChannel(auth, client, authentications.TokenSource(client, creds, self.clock))

    async def _pause_channel(self, lane: Lane, c: Claimed, outcome: Outcome) -> None:
        lane.paused = True
        self._holds["channel:" + lane.channel_key] = self._generation
        kind, reason = pauses.reason_for(outcome)
        log.warning("pausing channel %s: %s", lane.channel_key, reason)
        await self._db(pauses.pause_channel, self.db, lane.channel_key, kind=kind, reason=reason, now=self.clock.now())
        if kind is pauses.PauseKind.CREDENTIALS:
            self._channels.pop(c.authentication, None)  # re-read them when resumed

    # -- housekeeping --------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """About once a second: holds, channels, changed credentials and the live workers."""
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY
        try:
            board, keys, versions = await self._db(_read_state, self.db)
            await self._db(audience_gate.release_due, self.db, now=self.clock.now())
        except Exception:
            log.exception("reading holds and channels failed; keeping the last known ones")
            return
        self._channel_keys = keys
        self._board = board
        for lane in self._lanes.values():
            self._apply_board(lane)
        self._apply_activation_holds(board)
        self._forget_changed_credentials(versions)
        self._limits.rescale(self.liveness.alive_workers)
        for lane in self._lanes.values():
            lane.budget.set_rate(self._limits.local_rate)
        self._warn_if_unshared()

    def _apply_board(self, lane: Lane) -> None:
        key = "channel:" + lane.channel_key
        hold = self._board.channels.get(lane.channel_key)
        tripped = self._board.tripped(lane.channel_key)
        held = hold is not None and tripped is None
        if held and key not in self._holds:
            self._holds[key] = self._generation
        elif not held and lane.paused:
            self._holds.pop(key, None)
        lane.paused = held
        if tripped is not None and not lane.breaker.open:
            lane.breaker.open, lane.breaker.trips, lane.breaker.probe_at = True, tripped.trips, tripped.probe_at
        elif tripped is not None and not lane.probing:
            lane.breaker.probe_at = tripped.probe_at
        elif tripped is None and lane.breaker.open and not lane.probing:
            lane.breaker.answered()  # closed elsewhere (another worker's probe, or by hand)

    def _apply_activation_holds(self, board: pauses.Board) -> None:
        for name in board.activations:
            self._holds.setdefault("activation:" + name, self._generation)
        for key in [k for k in self._holds if k.startswith("activation:")]:
            if key.removeprefix("activation:") not in board.activations:
                del self._holds[key]

    def _forget_changed_credentials(self, versions: dict[str, bytes]) -> None:
        """An authentication rotated, re-created or deleted: its next push reloads it (within a second)."""
        for name, version in self._auth_versions.items():
            if versions.get(name) != version and name in self._channels:
                log.info("authentication %s changed: reloading its credentials", name)
                self._channels.pop(name, None)
        self._auth_versions = versions

    def _warn_if_unshared(self) -> None:
        alive = self.liveness.alive_workers
        if alive > 1 and self.db.dialect == "postgres" and not self.settings.redis_url and not self._warned_unshared:
            self._warned_unshared = True
            log.warning(
                "%d workers share this database but not LINEOA_EXPORT_REDIS_URL: each paces every channel at "
                "%.0f/s (the limit divided by the live workers) so that together they stay within it; set "
                "LINEOA_EXPORT_REDIS_URL to share one bucket and use the whole limit",
                alive,
                self._limits.local_rate,
            )

    # -- recorder ----------------------------------------------------------------------------

    async def _record_loop(self) -> None:
        while True:
            await self._results_ready.wait()
            if len(self._results) < self.settings.batch_size and not self._stopping:
                # A moment's grace gathers the results finishing together into one write.
                await asyncio.sleep(0.005)
            await self._flush()
            if self._stopping and not self._senders_busy() and not self._results:
                return

    def _senders_busy(self) -> bool:
        return any(lane.in_flight for lane in self._lanes.values())

    async def _flush(self) -> None:
        self._results_ready.clear()
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            await self._db(outbox.record, self.db, batch, worker=self.id)
        except Exception:
            # The events stay leased: when the lease runs out they are sent again with the
            # same retry key, and LINE answers 409 for any it had accepted.
            log.exception("could not record %d outcomes", len(batch))
        self._held -= len(batch)
        self._settled.set()

    # -- shutdown ----------------------------------------------------------------------------

    async def _drain(self) -> None:
        unsent: list[int] = []
        for lane in self._lanes.values():
            while not lane.queue.empty():
                item = lane.queue.get_nowait()
                if item is not None:
                    unsent.append(item[1].id)
        if unsent:
            with contextlib.suppress(Exception):
                await self._db(outbox.release, self.db, unsent, worker=self.id)
            self._held -= len(unsent)
        for lane in self._lanes.values():
            for _ in range(lane.senders):
                lane.queue.put_nowait(None)
        await asyncio.gather(*list(self._senders), return_exceptions=True)

    # -- quota -------------------------------------------------------------------------------

    async def _quota_loop(self) -> None:
        while True:
            await self.clock.sleep(self.settings.quota_check_interval)
            try:
                await self.check_quotas()
            except Exception:
                log.exception("quota check failed")

    async def check_quotas(self) -> list[str]:
        """Resume every quota-paused channel whose quota has room again; returns their keys."""
        resumed = []
        for row in await self._db(pauses.channels_paused_for, self.db, pauses.PauseKind.QUOTA):
            channel = await self._channel(row["authentication"])
            if await channel.quota_has_room():
                await self._db(pauses.resume_channel, self.db, row["channel_key"], now=self.clock.now())
                self._holds.pop("channel:" + row["channel_key"], None)
                lane = self._lanes.get(row["channel_key"])
                if lane is not None:
                    lane.paused = False
                resumed.append(row["channel_key"])
                log.info("channel %s resumed: monthly quota has room again", row["channel_key"])
        if resumed:
            self.wake()
        return resumed


def _read_state(db: Database) -> tuple[pauses.Board, list[str], dict[str, bytes]]:
    """Holds, channel keys with an authentication, and a fingerprint of each authentication."""
    board = pauses.board(db)
    keys = [r["channel_key"] for r in db.run("channel_keys")]
    versions = {
        r["name"]: hashlib.sha256(
            repr((r["channel_key"], r["api_url"], r["created_at"])).encode() + bytes(r["credentials"])
        ).digest()
        for r in db.run("auth_versions")
    }
    return board, keys, versions


def _utc(ts: float | None) -> str:
    return "?" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(stats: WorkerStats) -> dict[str, Any]:
    return {
        "attempts": stats.attempts,
        "outcomes": {str(k): v for k, v in stats.outcomes.items()},
        "states": {str(k): v for k, v in stats.states.items()},
    }
