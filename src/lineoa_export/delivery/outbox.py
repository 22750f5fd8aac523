"""The outbox: events on disk with their rendered body and retry key, claimed under a lease.

An event is written here, in one transaction with its exact request body and its
``X-Line-Retry-Key``, before anyone is told it was accepted. Workers claim due events in
batches under a lease and write outcomes back in batches: storage is touched once per
batch, never once per push.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..store.database import Database
from . import audience_gate
from .retry_policy import KEY_LIFETIME_SECONDS, RetryPolicy
from .states import EventState


# Not frozen: one is made for every accepted event, and frozen fields cost ≈3× to set. Never changed once made.
@dataclass(slots=True)
class NewEvent:
    """A trigger event, rendered (or failed to render), ready to be stored."""

    activation: str
    event_id: str
    channel_key: str
    recipient: str | None
    body: bytes | None
    retry_key: str
    error: str | None = None  # set when rendering failed: stored as failed at once
    aggregation_unit: str | None = None  # the unit the body carries (see units.py)
    time_zone: str | None = None  # the recipient's own zone, from the event (see audience_gate.py)

    def params(self, now: float) -> dict[str, Any]:
        failed = self.error is not None
        return {
            "activation": self.activation,
            "event_id": self.event_id,
            "channel_key": self.channel_key,
            "recipient": self.recipient,
            "body": self.body,
            "retry_key": self.retry_key,
            "state": EventState.FAILED if failed else EventState.QUEUED,
            "accepted_at": now,
            "next_attempt_at": None if failed else now,
            "finished_at": now if failed else None,
            "error": self.error,
            "aggregation_unit": self.aggregation_unit,
            "time_zone": self.time_zone,
        }


def enqueue(db: Database, events: Sequence[NewEvent], *, now: float) -> list[str | None]:
    """Store ``events`` durably in one transaction.

    Returns, per event, its stored state (``queued``, ``paused`` or ``failed``), or None
    when the activation already had an event with that ``event_id`` (a duplicate).
    """
    states: list[str | None] = []
    with db.transaction() as tx:
        for event in events:
            rows = tx.run("event_insert", event.params(now))
            states.append(rows[0]["state"] if rows else None)
    return states


# Not frozen: one is made for every push, and frozen fields cost ≈3× to set. Never changed once made.
@dataclass(slots=True)
class Claimed:
    """An event a worker holds the lease on."""

    id: int
    activation: str
    authentication: str
    channel_key: str
    body: bytes
    retry_key: str
    attempts: int
    retries: int
    first_attempt_at: float | None
    accepted_at: float
    policy: RetryPolicy
    leased_until: float = float("inf")
    aggregation_unit: str | None = None  # the body's customAggregationUnits[0], if any


def claim(
    db: Database,
    *,
    worker: str,
    now: float,
    lease_seconds: float,
    wants: Sequence[tuple[str, int]],
    alive_since: float,
    on_held: Callable[[str, EventState], None] | None = None,
) -> list[Claimed]:
    """Lease due events to ``worker`` until ``now + lease_seconds``: up to ``limit`` of each channel.

    ``wants`` holds ``(channel_key, limit)`` per lane with room, so every channel with work due
    gets its share in the same transaction. An event leased by a worker whose heartbeat is older
    than ``alive_since`` is taken over (see liveness.py). ``on_held`` hears of every event the
    audience gate suppressed or deferred instead, once the claim is committed.
    """
    until = now + lease_seconds
    holds: list[tuple[str, EventState]] = []
    params = {"now": now, "until": until, "worker": worker, "alive_since": alive_since}
    with db.transaction() as tx:
        rows = [r for key, limit in wants for r in tx.run("claim_due", {**params, "channel_key": key, "limit": limit})]
        if not rows:
            return []
        audience_gate.find_blocked(tx, db.dialect, rows)
        route_rows = tx.run("activation_routes")
        routes = {
            r["name"]: (
                r["authentication"],
                RetryPolicy(r["max_retries"], r["initial_retry_delay"], r["retry_delay_multiple"]),
            )
            for r in route_rows
        }
        # Blocked recipients, quiet hours, frequency caps: settled here, never handed to a sender.
        audiences = {r["name"]: audience_gate.audience_of(r) for r in route_rows}
        rows = audience_gate.screen(tx, db.dialect, rows, audiences, now, holds)
    if on_held is not None:
        for activation, state in holds:
            on_held(activation, state)
    return [_claimed(r, routes[r["activation"]], until) for r in rows if r["activation"] in routes]


def _claimed(r: dict[str, Any], route: tuple[str, RetryPolicy], until: float) -> Claimed:
    # An event whose activation was deleted meanwhile went with it (the caller skips it).
    return Claimed(
        id=r["id"],
        activation=r["activation"],
        authentication=route[0],
        channel_key=r["channel_key"],
        body=bytes(r["body"]),
        retry_key=r["retry_key"],
        attempts=r["attempts"],
        retries=r["retries"],
        first_attempt_at=r["first_attempt_at"],
        accepted_at=r["accepted_at"],
        policy=route[1],
        leased_until=until,
        aggregation_unit=r["aggregation_unit"],
    )


# Not frozen: one is made for every push, and frozen fields cost ≈3× to set. Never changed once made.
@dataclass(slots=True)
class Result:
    """What happened to one claimed event: the attempt made (if any) and its new state."""

    event_id: int
    state: EventState
    attempt: int  # attempt number recorded (the event's total attempts)
    retries: int
    started_at: float
    duration_ms: float | None
    status_code: int | None
    error: str | None
    line_request_id: str | None
    accepted_request_id: str | None
    sent_message_ids: str | None  # JSON array text
    next_attempt_at: float | None
    finished_at: float | None
    attempted: bool = True  # False when the event was settled without sending

    def params(self, worker: str) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "worker": worker,
            "state": self.state,  # a StrEnum is a str: no `.value` lookup on the hot path
            "attempt": self.attempt,
            "retries": self.retries,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "status_code": self.status_code,
            "error": self.error,
            "line_request_id": self.line_request_id,
            "accepted_request_id": self.accepted_request_id,
            "sent_message_ids": self.sent_message_ids,
            "next_attempt_at": self.next_attempt_at,
            "finished_at": self.finished_at,
        }


def record(db: Database, results: Sequence[Result], *, worker: str) -> None:
    """Write a batch of results: new event states and the attempt history, one transaction."""
    attempted = [r.params(worker) for r in results if r.attempted]
    settled = [r.params(worker) for r in results if not r.attempted]
    with db.transaction() as tx:
        # Attempts first: both statements check the lease, and the outcome releases it.
        tx.run_many("record_attempt", attempted)
        tx.run_many("record_outcome", attempted)
        if settled:
            tx.run_many("record_settled", settled)


def release(db: Database, event_ids: Sequence[int] | None, *, worker: str) -> None:
    """Give leases back unsent (shutdown; None: every lease ``worker`` holds): claimable at once, keys intact."""
    with db.transaction() as tx:
        if event_ids is None:
            tx.run("release_leases_of", {"worker": worker})
        else:
            tx.run_many("release_lease", ({"id": i, "worker": worker} for i in event_ids))


@dataclass(frozen=True, slots=True)
class Pending:
    count: int
    next_due: float | None


def pending(db: Database, *, now: float) -> Pending:
    row = db.run("pending_summary", {"now": now})[0]
    return Pending(row["pending"], row["next_due"])


@dataclass(frozen=True, slots=True)
class Replay:
    replayed: list[str]
    not_replayable: list[str]  # unknown, not failed, never rendered, or retry key older than 24 h


#: Event ids one replay request may name (a request naming more is refused).
MAX_REPLAY_IDS = 10_000
#: Events replayed per transaction: the write lock is given back between batches, so triggers
#: arriving meanwhile wait for one batch at most, not for the whole replay.
REPLAY_BATCH = 500


def replay_failed(db: Database, activation: str, event_ids: Sequence[str] | None, *, now: float) -> Replay:
    """Queue failed events again with a fresh retry budget and the same retry key.

    Only while the key is under 24 hours old: after that LINE has forgotten it, and a
    resend could deliver twice. Done :data:`REPLAY_BATCH` events per transaction.
    """
    params = {"name": activation, "now": now, "key_window_start": now - KEY_LIFETIME_SECONDS}
    replayed: list[str] = []
    if event_ids is None:
        after_id = 0
        while True:  # in row order, each batch after the last: ends even if events fail again meanwhile
            with db.transaction() as tx:
                rows = tx.run("replay_failed_batch", {**params, "after_id": after_id, "limit": REPLAY_BATCH})
            replayed += [r["event_id"] for r in sorted(rows, key=lambda r: r["id"])]
            if len(rows) < REPLAY_BATCH:
                break
            after_id = max(r["id"] for r in rows)
    else:
        for start in range(0, len(event_ids), REPLAY_BATCH):
            with db.transaction() as tx:
                for event_id in event_ids[start : start + REPLAY_BATCH]:
                    replayed += [r["event_id"] for r in tx.run("replay_failed", {**params, "event_id": event_id})]
    done = set(replayed)
    return Replay(replayed, [e for e in (event_ids or []) if e not in done])
