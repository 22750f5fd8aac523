"""Every reason an event waits that is not its own retry: one module, one vocabulary.

A **channel** (one LINE channel key, every activation on it) is held for one of:

* ``quota``: LINE said the monthly message limit is reached (429 "monthly limit");
  a running worker checks the quota every few minutes and resumes the channel by itself;
* ``credentials``: LINE refused the channel's credentials (401 after one re-mint) or the
  channel may not push (403); resumed by hand once the credentials are fixed;
* ``breaker``: LINE kept not answering (timeouts, refused connections): the circuit breaker
  is *tripped*. Its events wait in state ``retrying`` with the next probe as their due time;
  one probe at a time tests the channel again, with backoff, and the first answer closes it.

An **activation** is held ``by_hand`` (``activation pause``) until it is resumed.

Quota and credential pauses and hand pauses move events to state ``paused``; a tripped
breaker does not (its events are due again at the probe time, as any retry is), and
waiting for it never spends an event's retries. The one rule here: the worker never decides
a hold itself, it asks the :class:`Board` and records a hold through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ..store.database import Database, Row
from .outcomes import Outcome, OutcomeKind


class PauseKind(StrEnum):
    QUOTA = "quota"
    CREDENTIALS = "credentials"
    BREAKER = "breaker"
    BY_HAND = "by_hand"


#: What a pause is called for each outcome that causes one.
REASON_OF_OUTCOME = {
    OutcomeKind.MONTHLY_LIMIT: (PauseKind.QUOTA, "LINE monthly message limit reached"),
    OutcomeKind.UNAUTHORIZED: (PauseKind.CREDENTIALS, "LINE refused the channel credentials (401)"),
    OutcomeKind.FORBIDDEN: (PauseKind.CREDENTIALS, "LINE does not allow this channel to push (403)"),
}

#: Consecutive pushes without an answer that trip a channel's breaker.
TRIP_AFTER = 5
#: Seconds before the n-th probe of a tripped channel: 5, 10, 20, … at most 5 minutes.
PROBE_BACKOFF_FIRST = 5.0
PROBE_BACKOFF_MAX = 300.0


def probe_delay(trips: int) -> float:
    """Seconds from a trip to its probe: ``min(5 × 2^(trips − 1), 300)`` for trip number ``trips`` ≥ 1."""
    return min(PROBE_BACKOFF_FIRST * 2.0 ** max(0, trips - 1), PROBE_BACKOFF_MAX)


def reason_for(outcome: Outcome) -> tuple[PauseKind, str]:
    kind, text = REASON_OF_OUTCOME[outcome.kind]
    if outcome.status_code is None and outcome.error:
        # Decided here, not by LINE (credentials that cannot be opened, an api_url no longer
        # allowed): nothing was sent, so "LINE refused (401)" would send the operator astray.
        return kind, outcome.error
    return kind, f"{text}: {outcome.error}" if outcome.error else text


def breaker_reason(outcome: Outcome, failures: int) -> str:
    return f"circuit breaker: LINE did not answer {failures} pushes in a row ({outcome.error})"


# -- what holds what, as one worker sees it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelHold:
    kind: PauseKind
    reason: str
    since: float
    probe_at: float | None = None  # breaker only
    trips: int = 0


@dataclass(slots=True)
class Board:
    """A snapshot of the holds in the database (refreshed by the worker about once a second)."""

    channels: dict[str, ChannelHold] = field(default_factory=dict)
    activations: set[str] = field(default_factory=set)

    def holds(self, channel_key: str, activation: str) -> bool:
        """True when the event must wait in state ``paused`` (not for a breaker: see ``tripped``)."""
        hold = self.channels.get(channel_key)
        return activation in self.activations or (hold is not None and hold.kind is not PauseKind.BREAKER)

    def tripped(self, channel_key: str) -> ChannelHold | None:
        hold = self.channels.get(channel_key)
        return hold if hold is not None and hold.kind is PauseKind.BREAKER else None


def board(db: Database) -> Board:
    channels = {
        r["channel_key"]: ChannelHold(
            PauseKind(r["kind"]), r["reason"], r["since"], r.get("probe_at"), r.get("trips") or 0
        )
        for r in db.run("channel_pauses_all")
    }
    return Board(channels, {r["name"] for r in db.run("activations_paused")})


# -- channel pauses ------------------------------------------------------------------------------


def pause_channel(db: Database, channel_key: str, *, kind: PauseKind, reason: str, now: float) -> None:
    """Hold a channel (quota or credentials): its unfinished events move to ``paused``."""
    with db.transaction() as tx:
        tx.run("channel_pause", {"channel_key": channel_key, "reason": reason, "kind": kind, "now": now})
        tx.run("channel_hold_events", {"channel_key": channel_key})


def resume_channel(db: Database, channel_key: str, *, now: float) -> None:
    """Lift a channel's hold; a tripped breaker is probed at once instead of being forgotten."""
    with db.transaction() as tx:
        tx.run("channel_unpause", {"channel_key": channel_key})
        tx.run("channel_release_events", {"channel_key": channel_key, "now": now})


def channels_paused_for(db: Database, kind: PauseKind) -> list[Row]:
    return db.run("channel_pauses_by_kind", {"kind": kind})


# -- the circuit breaker -------------------------------------------------------------------------


def trip(db: Database, channel_key: str, *, reason: str, trips: int, now: float) -> float:
    """Trip (or re-trip after a failed probe) a channel's breaker; returns the probe time.

    The channel's due events are moved to the probe time in the same transaction, so the
    activation table shows when they will be tried again.
    """
    probe_at = now + probe_delay(trips)
    with db.transaction() as tx:
        tx.run(
            "breaker_trip",
            {"channel_key": channel_key, "reason": reason, "now": now, "probe_at": probe_at, "trips": trips},
        )
        tx.run("breaker_hold_events", {"channel_key": channel_key, "probe_at": probe_at})
    return probe_at


def take_probe(db: Database, channel_key: str, *, now: float, probe_seconds: float) -> bool:
    """Claim the right to send the one probe of a tripped channel (one worker wins)."""
    rows = db.run("breaker_take_probe", {"channel_key": channel_key, "now": now, "until": now + probe_seconds})
    return bool(rows)


def close_breaker(db: Database, channel_key: str) -> bool:
    """LINE answered: the breaker closes (events held for it are already due). True if it was open."""
    return bool(db.run("breaker_close", {"channel_key": channel_key}))


# -- activation pauses (by hand) -----------------------------------------------------------------


def pause_activation(db: Database, name: str, reason: str, *, now: float) -> bool:
    """Hold an activation's events in ``paused``; False when there is no such activation."""
    with db.transaction() as tx:
        if not tx.run("activation_set_paused", {"name": name, "reason": reason, "now": now}):
            return False
        tx.run("activation_hold_events", {"name": name})
    return True


def resume_activation(db: Database, name: str, channel_key: str, *, channel_held: bool, now: float) -> None:
    """Release an activation, and its channel too when LINE had paused the channel."""
    with db.transaction() as tx:
        tx.run("activation_set_paused", {"name": name, "reason": None, "now": now})
        if channel_held:
            tx.run("channel_unpause", {"channel_key": channel_key})
            tx.run("channel_release_events", {"channel_key": channel_key, "now": now})
        tx.run("activation_release_events", {"name": name, "now": now})
