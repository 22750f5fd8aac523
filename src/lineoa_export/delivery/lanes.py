"""Lanes: each LINE channel (channel key) is delivered on a lane of its own.

A lane owns what one channel's health may cost and nothing more:

* its **claims**: the worker claims each lane's due events separately, sized by what the
  lane can send soon, so a deep backlog on one channel never starves another;
* its **in-flight budget** (:class:`InFlightBudget`): by Little's law a channel sending
  ``rate`` pushes/s to a LINE that answers in ``latency`` s needs ``rate × latency`` pushes
  in flight. The budget follows the latency LINE shows this channel (an average of
  answered pushes), with margin, bounded by the channel's connection limit: a far-away
  LINE still gets the full rate, and a hanging channel (no answers) never grows past its
  starting budget;
* its **breaker** (:class:`Breaker`): pushes that get no answer at all (timeouts,
  refused connections) in a row trip it; from then on only a probe is sent
  (see ``pauses.py`` for how a trip is stored and probed);
* its **senders**: coroutines that take its claimed events, in number the budget allows.

The rule a reader must not break: nothing a lane does may wait on another lane.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from .outbox import Claimed
from .rate_limit import Limiter

#: Latency assumed before LINE has answered this channel once (seconds).
INITIAL_LATENCY = 0.05
#: In flight = rate × latency × MARGIN (+ the burst): room for latency that varies.
MARGIN = 1.5
MIN_BUDGET = 4
#: Weight of one answered push in the latency average (≈ the last 50 answers count).
LATENCY_WEIGHT = 0.02
#: Seconds of sending a lane claims ahead (plus what is in flight).
CLAIM_AHEAD = 0.1


class InFlightBudget:
    """How many pushes a channel may have in flight: ``rate × latency × MARGIN + burst``, bounded.

    ``latency`` is an exponentially weighted average of the time LINE took to answer
    this channel's pushes (pushes without an answer do not count: a hang must not buy
    more slots to hang in).
    """

    def __init__(self, rate: float, burst: int, max_connections: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_connections = max(1, max_connections)
        self.latency = INITIAL_LATENCY
        self.answers = 0
        self.limit = self._compute()

    def _compute(self) -> int:
        wanted = math.ceil(self.rate * self.latency * MARGIN) + self.burst
        return max(min(MIN_BUDGET, self.max_connections), min(wanted, self.max_connections))

    def observe(self, seconds: float) -> None:
        # A plain mean of the first answers, then the moving average: a channel whose LINE is far
        # away reaches its rate after a few dozen answers, not after hundreds.
        self.answers += 1
        self.latency += max(LATENCY_WEIGHT, 1.0 / self.answers) * (seconds - self.latency)
        self.limit = self._compute()

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self.limit = self._compute()


class Breaker:
    """Counts pushes in a row that got no answer; says when that trips the channel."""

    def __init__(self, trip_after: int) -> None:
        self.trip_after = trip_after
        self.failures = 0
        self.open = False  # tripped: nothing but a probe is sent
        self.trips = 0  # trips since it last closed (sets the probe backoff)
        self.probe_at: float | None = None

    def answered(self) -> bool:
        """LINE answered (whatever it said); True when that closes an open breaker."""
        self.failures = 0
        was_open, self.open, self.trips, self.probe_at = self.open, False, 0, None
        return was_open

    def no_answer(self) -> bool:
        """A push got no answer; True when this one trips the breaker (or re-trips a probe)."""
        self.failures += 1
        if self.open:
            return False
        return self.failures >= self.trip_after


@dataclass(eq=False)
class Lane:
    """One channel's share of a worker."""

    channel_key: str
    limiter: Limiter
    budget: InFlightBudget
    breaker: Breaker
    queue: asyncio.Queue[tuple[int, Claimed] | None] = field(default_factory=asyncio.Queue)
    in_flight: int = 0  # taken by a sender, not yet answered
    senders: int = 0
    paused: bool = False  # the channel is held (quota, credentials)
    probing: bool = False  # this worker sends the tripped channel's probe
    next_claim_at: float = 0.0  # monotonic: when an idle lane is looked at again
    #: The lane's fair share of the process's pushes in flight (see :func:`fair_share`).
    share: int = 1_000_000

    def limit(self) -> int:
        """Pushes this lane may have in flight now: its budget, within its share of the process."""
        return min(self.budget.limit, self.share)

    def busy(self) -> bool:
        return self.in_flight > 0 or self.queue.qsize() > 0

    def capacity(self) -> int:
        """Events this lane may hold at once: its in-flight allowance plus a moment of sending.

        A moment at the pace the lane can really reach: its rate, or (Little's law) what its
        allowance in flight can carry at the latency LINE shows, whichever is lower. Claiming at
        a rate the lane cannot send would only lease events to wait in its queue, and every
        claim must step over the events still leased ahead of it.
        """
        latency = self.budget.latency
        pace = min(self.budget.rate, self.limit() / latency) if latency > 0 else self.budget.rate
        return self.limit() + math.ceil(pace * CLAIM_AHEAD)

    def room(self) -> int:
        """Events this lane could take now: its capacity less what it holds."""
        if self.paused or (self.breaker.open and not self.probing):
            return 0
        return max(0, self.capacity() - self.in_flight - self.queue.qsize())

    def senders_wanted(self) -> int:
        """More senders to start: up to the budget, and no more than there is work for."""
        work = self.queue.qsize() + self.in_flight
        return max(0, min(self.limit(), work) - self.senders)

    def should_retire(self) -> bool:
        """A sender leaves when the budget (or the share) shrank below the senders running."""
        return self.senders > self.limit()


def fair_share(concurrency: int, busy_lanes: int) -> int:
    """Pushes in flight one lane may hold when ``busy_lanes`` lanes have work: an equal part of
    the process's ``concurrency`` (at least :data:`MIN_BUDGET`).

    Without it a hanging channel, whose pushes never come back, would fill the process's
    connections with its own budget and leave none to the channels that answer.
    """
    return max(MIN_BUDGET, concurrency // max(1, busy_lanes))
