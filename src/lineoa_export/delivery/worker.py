"""The delivery worker: claim → rate limit → push → outcome → decision → record.

It wires the steps together and stores what they return; it decides nothing itself
(``outcomes`` reads LINE's answers, ``retry_policy`` decides what follows).

One asyncio loop per process::

    claimer ──► queue (bounded) ──► N senders ──► recorder (batched writes)
                                                     │
    quota checker (every few minutes) ◄── paused channels

Storage runs on one dedicated thread, so a batch write overlaps with network I/O, and
each round trip carries a batch (claims of up to ``batch_size``, outcomes of up to as
many as finished since the last write). Retries are rows with a due time, never a sleep
in a sender. Bounded everywhere: memory stays flat however deep the outbox is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import orjson

from .. import authentications
from ..clock import Clock, SystemClock
from ..errors import LineoaExportError
from ..settings import Settings
from ..store.database import Database
from ..vault import Vault
from . import outbox
from .channel import LineChannel
from .line_client import AiohttpTransport, LineClient, Timeouts, Transport
from .outbox import Claimed, Result
from .outcomes import Outcome, OutcomeKind
from .rate_limit import HEADROOM, RateLimits
from .retry_policy import KEY_EXPIRED_ERROR, Decision, Verdict, decide, key_expired
from .states import EventState

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

FAST_POLL = 0.005  # seconds between polls while events keep arriving
CLAIM_RETRY_SECONDS = 1.0  # after a failed claim

_STATE_OF = {
    Verdict.DELIVERED: EventState.DELIVERED,
    Verdict.RETRY: EventState.RETRYING,
    Verdict.PAUSE: EventState.PAUSED,
    Verdict.FAIL: EventState.FAILED,
}
_PAUSE_REASON = {
    OutcomeKind.MONTHLY_LIMIT: "LINE monthly message limit reached",
    OutcomeKind.UNAUTHORIZED: "LINE refused the channel credentials (401)",
    OutcomeKind.FORBIDDEN: "LINE does not allow this channel to push (403)",
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
        self._limits = RateLimits(settings.rate_limit, settings.rate_burst, settings.redis_url)
        self._channels: dict[str, LineChannel] = {}
        # channel → claim generation at the moment it was paused: events claimed up to then
        # are held back without sending; events claimed later were released by a resume.
        self._paused: dict[str, int] = {}
        self._held_activations: dict[str, int] = {}  # the same, for activations paused by hand
        self._generation = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lineoa-db")
        self._inline_db = db.dialect == "sqlite" and inline_sqlite
        self._queue: asyncio.Queue[tuple[int, Claimed] | None] = asyncio.Queue()
        self._results: list[Result] = []
        self._results_ready = asyncio.Event()
        self._in_flight = 0  # claimed and not yet recorded
        self._sending = 0  # claimed and not yet answered: what claims are sized by
        self._settled = asyncio.Event()  # set whenever in-flight work drops
        self._channel_lookups: dict[str, asyncio.Future[LineChannel]] = {}
        self._last_claimed = float("-inf")
        # Never claim more than a quarter of a lease's worth of sending at the channel's rate:
        # an event must leave well before its lease runs out (see _deliver).
        self._claim_cap = max(1, int(settings.rate_limit * HEADROOM * settings.lease_seconds / 4))
        self._wake = asyncio.Event()
        self._stopping = False

    # -- outside controls --------------------------------------------------------------------

    def wake(self) -> None:
        """New events were stored: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Drain: stop claiming, finish what is in flight, give back what was not started."""
        self._stopping = True
        self._wake.set()
        self._settled.set()

    def hold_activation(self, name: str) -> None:
        """The activation was paused: do not send its events this worker already claimed.

        (A pause stored by another process reaches this worker only through what it claims
        next; events it already holds are then still sent.)
        """
        self._held_activations[name] = self._generation

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # -- run ---------------------------------------------------------------------------------

    async def run(self, *, until_idle: bool = False) -> WorkerStats:
        senders = [asyncio.create_task(self._send_loop()) for _ in range(self.settings.concurrency)]
        recorder = asyncio.create_task(self._record_loop())
        checker = None if until_idle else asyncio.create_task(self._quota_loop())
        try:
            await self._claim_loop(until_idle)
        finally:
            self._stopping = True
            await self._drain(senders)
            # The recorder is told to finish, never cancelled: a cancelled write could drop a
            # batch of outcomes LINE has already accepted.
            self._results_ready.set()
            await asyncio.gather(recorder, return_exceptions=True)
            if checker:
                checker.cancel()
                await asyncio.gather(checker, return_exceptions=True)
            await self._flush()
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

    # -- claimer -----------------------------------------------------------------------------

    async def _claim_loop(self, until_idle: bool) -> None:
        capacity = self.settings.concurrency + self.settings.batch_size
        while not self._stopping:
            room = capacity - self._sending
            if room < self.settings.batch_size // 2 + 1 or len(self._results) >= 4 * self.settings.batch_size:
                await self._wait_settled()
                continue
            limit = min(room, self.settings.batch_size, self._claim_cap)
            try:
                batch = await self._db(
                    outbox.claim,
                    self.db,
                    worker=self.id,
                    now=self.clock.now(),
                    lease_seconds=self.settings.lease_seconds,
                    limit=limit,
                )
            except Exception:
                # The database is away (locked, restarting): keep the worker alive and ask again.
                log.exception("claiming events failed; trying again in %g s", CLAIM_RETRY_SECONDS)
                await self.clock.sleep(CLAIM_RETRY_SECONDS)
                continue
            if batch:
                self._last_claimed = time.monotonic()
            self._in_flight += len(batch)
            self._sending += len(batch)
            self._generation += 1
            for claimed in batch:
                self._queue.put_nowait((self._generation, claimed))
            if len(batch) == limit:
                continue  # more may be due right now
            if until_idle:
                if not await self._idle_wait():
                    return
            elif not batch:
                await self._poll_wait()

    async def _idle_wait(self) -> bool:
        """For ``--until-idle``: wait for what is due next; False once nothing is left to do."""
        if self._in_flight:
            await self._wait_settled()
            return True
        await self._flush()
        now = self.clock.now()
        pending = await self._db(outbox.pending, self.db, now=now)
        if pending.count == 0:
            return False
        if pending.next_due is not None and pending.next_due > now:
            # Look again at least every second: what is due next may be another worker's lease,
            # and that worker may finish (and free it) long before the lease would run out.
            await self.clock.sleep(min(pending.next_due - now, 1.0))
        return True

    async def _poll_wait(self) -> None:
        """Wait for a wake-up or the next poll.

        While events keep arriving (the last one claimed under a second ago) the outbox is
        polled every few milliseconds, so a trigger from another process leaves within
        that; once traffic stops, polls slow to ``poll_interval``.
        """
        self._wake.clear()
        busy = time.monotonic() - self._last_claimed < 1.0
        interval = min(FAST_POLL, self.settings.poll_interval) if busy else self.settings.poll_interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), interval)

    async def _wait_settled(self) -> None:
        self._settled.clear()
        await self._settled.wait()

    # -- senders -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            generation, claimed = item
            try:
                result, outcome = await self._deliver(claimed, generation)
            except Exception:  # a bug must not lose the event: its lease runs out, it is retried
                log.exception("delivery of event %s failed unexpectedly", claimed.id)
                self._in_flight -= 1
                self._sending -= 1
                self._settled.set()
                continue
            self._sending -= 1
            if self._sending < self.settings.concurrency:
                self._settled.set()  # room to claim more
            self.stats.add(result, outcome)
            self._results.append(result)  # first: whatever a listener does, the outcome is kept
            if self._listener is not None:
                try:
                    self._listener(claimed, result, outcome)
                except Exception:
                    log.exception("a result listener failed")
            self._results_ready.set()

    def _held(self, channel_key: str, generation: int, activation: str | None = None) -> bool:
        if activation is not None and generation <= self._held_activations.get(activation, -1):
            return True
        return generation <= self._paused.get(channel_key, -1)

    async def _deliver(self, c: Claimed, generation: int) -> tuple[Result, Outcome | None]:
        now = self.clock.now()
        if key_expired(c.first_attempt_at, now):
            return self._settle(c, EventState.FAILED, error=KEY_EXPIRED_ERROR, now=now), None
        if self._held(c.channel_key, generation, c.activation):
            return self._settle(c, EventState.PAUSED, error=None, now=now), None
        limiter = self._limits.for_channel(c.channel_key)
        if not limiter.try_acquire():
            await limiter.acquire()
        started = self.clock.now()
        if started > c.leased_until - 2 * self.settings.timeout:
            # Too long in line: the lease could run out mid-request and another worker send the
            # same key at the same time. Give the event back, untouched, to be claimed afresh.
            return self._settle(
                c, EventState.RETRYING if c.retries else EventState.QUEUED, error=None, now=started
            ), None
        t0 = time.perf_counter()
        outcome = await self._push(c)
        duration_ms = (time.perf_counter() - t0) * 1000
        decision = decide(
            outcome,
            c.policy,
            retries_used=c.retries,
            first_attempt_at=c.first_attempt_at or started,
            now=self.clock.now(),
        )
        if outcome.kind is OutcomeKind.RATE_LIMITED:
            limiter.slow_down()
        if decision.verdict is Verdict.PAUSE and not self._held(c.channel_key, generation):
            await self._pause_channel(c.channel_key, outcome, decision)
            if decision.pause_kind == "credentials":
                self._channels.pop(c.authentication, None)  # re-read them when resumed
        return self._result(c, outcome, decision, started, duration_ms), outcome

    async def _push(self, c: Claimed) -> Outcome:
        try:
            channel = self._channels.get(c.authentication) or await self._channel(c.authentication)
        except LineoaExportError as exc:
            # Stored credentials that cannot be used (the key changed, the authentication was
            # deleted): a credentials problem of the channel, so it pauses rather than loops.
            return Outcome(OutcomeKind.UNAUTHORIZED, error=f"stored credentials unusable: {exc}")
        return await channel.push(c.body, c.retry_key)

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

    def _settle(self, c: Claimed, state: EventState, *, error: str | None, now: float) -> Result:
        """An event decided without sending (expired key, channel paused meanwhile, given back)."""
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
            next_attempt_at=None if state.is_final else now,
            finished_at=now if state.is_final else None,
            attempted=False,
        )

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
        except Exception:
            self._channel_lookups.pop(auth_name, None)  # let a later event try again
            raise
        self._channels[auth_name] = channel
        return channel

    async def _load_channel(self, auth_name: str) -> LineChannel:
        auth = await self._db(authentications.get, self.db, auth_name)
        creds = await self._db(authentications.load_credentials, self.db, self.vault, auth)
        client = LineClient(self._transport, auth.api_url)
        return LineChannel(auth, client, authentications.TokenSource(client, creds, self.clock))

    async def _pause_channel(self, channel_key: str, outcome: Outcome, decision: Decision) -> None:
        self._paused[channel_key] = self._generation
        reason = f"{_PAUSE_REASON[outcome.kind]}: {outcome.error}" if outcome.error else _PAUSE_REASON[outcome.kind]
        log.warning("pausing channel %s: %s", channel_key, reason)
        await self._db(
            outbox.pause_channel,
            self.db,
            channel_key,
            reason=reason,
            kind=decision.pause_kind or "credentials",
            now=self.clock.now(),
        )

    # -- recorder ----------------------------------------------------------------------------

    async def _record_loop(self) -> None:
        while True:
            await self._results_ready.wait()
            if len(self._results) < self.settings.batch_size and not self._stopping:
                # A moment's grace gathers the results finishing together into one write.
                await asyncio.sleep(0.005)
            await self._flush()
            if self._stopping and self._sending == 0 and not self._results:
                return

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
        self._in_flight -= len(batch)
        self._settled.set()

    # -- shutdown ----------------------------------------------------------------------------

    async def _drain(self, senders: list[asyncio.Task[None]]) -> None:
        unsent: list[int] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                unsent.append(item[1].id)
        if unsent:
            await self._db(outbox.release, self.db, unsent, worker=self.id)
            self._in_flight -= len(unsent)
            self._sending -= len(unsent)
        for _ in senders:
            self._queue.put_nowait(None)
        await asyncio.gather(*senders, return_exceptions=True)

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
        for row in await self._db(outbox.paused_channels, self.db, "quota"):
            channel = await self._channel(row["authentication"])
            if await channel.quota_has_room():
                await self._db(outbox.resume_channel, self.db, row["channel_key"], now=self.clock.now())
                self._paused.pop(row["channel_key"], None)
                resumed.append(row["channel_key"])
                log.info("channel %s resumed: monthly quota has room again", row["channel_key"])
        if resumed:
            self.wake()
        return resumed


def describe(stats: WorkerStats) -> dict[str, Any]:
    return {
        "attempts": stats.attempts,
        "outcomes": {str(k): v for k, v in stats.outcomes.items()},
        "states": {str(k): v for k, v in stats.states.items()},
    }
