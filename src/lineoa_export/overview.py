"""The overview of an activation or of a channel: what its last hour looked like, read from the store.

A **scope** is one LINE channel (an authentication's channel key, every activation on it) or one
activation on its channel. For a scope this reads, in a handful of named queries
(``overview_*`` in store/queries.sql, each on SQLite and PostgreSQL):

* **pushes per minute** over the last hour (:data:`MINUTES` minutes, the current one last and
  partial), each push counted as delivered, retried or failed, with the trigger→push latency of
  the pushes that delivered (retry waits included, as the latency metric counts it);
* **outcomes** of the hour: events that ended delivered, failed or suppressed, the retries, and
  the events deferred now;
* **retry reasons**: LINE's status codes, ``timeout``, ``connect error``;
* the **queue** now (queued, retrying, paused, deferred) and its **lag**: how long the earliest
  due event has been due;
* the channel's **rate limit**, its **hold** (quota, credentials, a tripped breaker: see
  :mod:`.delivery.pauses`) and, when a worker runs in this process, its **lane** (in flight,
  budget, LINE's latency);
* **engagement**: LINE's unit statistics as stored by :mod:`.insight.statistics`, each unit's
  latest default period (not one asked for by hand), with their age (LINE is never asked from
  here), nulls kept as "fewer than 20";
* the latest **reconciliation** of the channel's authentication (:mod:`.insight.reconcile`).

The monthly quota comes from LINE, so it is added by the caller (:mod:`.insight.quota`).

The one rule: everything here is read at one ``now`` passed in (a FakeClock in tests), and the
minute buckets are aligned to whole minutes of that clock, so two reads in one minute agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import orjson

from . import activations, authentications
from .delivery import pauses
from .insight import quota as line_quota
from .insight import reconcile
from .line_time import parse_compact
from .store.database import Database

MINUTE: Final = 60.0
MINUTES: Final = 60  # the last hour, by minute
WAITING: Final = ("queued", "retrying", "paused", "deferred")
OUTCOMES: Final = ("delivered", "retried", "failed", "suppressed", "deferred")

ScopeKind = Literal["activation", "channel"]


@dataclass(frozen=True, slots=True)
class LaneState:
    """What a worker of this process holds for a channel now (see delivery/lanes.py)."""

    in_flight: int
    budget: int
    latency: float  # seconds: LINE's average answer time for this channel
    tripped: bool
    degraded: bool  # the shared (Redis) rate limit is unreachable: a local share is used


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    name: str  # the activation's name, or the authentication's
    auth: authentications.Authentication
    activation: activations.Activation | None
    activations: tuple[activations.Activation, ...]  # the scope's activations

    @property
    def channel_key(self) -> str:
        return self.auth.channel_key


def activation_scope(db: Database, activation: activations.Activation) -> Scope:
    auth = authentications.get(db, activation.spec.authentication)
    return Scope("activation", activation.name, auth, activation, (activation,))


def channel_scope(db: Database, auth: authentications.Authentication) -> Scope:
    on_channel = tuple(a for a in activations.list_all(db) if a.channel_key == auth.channel_key)
    return Scope("channel", auth.name, auth, None, on_channel)


@dataclass(frozen=True, slots=True)
class Minute:
    start: float
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    latency_sum: float = 0.0
    latency_max: float | None = None

    @property
    def pushes(self) -> int:
        return self.delivered + self.retried + self.failed

    @property
    def latency_avg(self) -> float | None:
        return self.latency_sum / self.delivered if self.delivered else None


@dataclass(frozen=True, slots=True)
class Engagement:
    """LINE's figures for one unit, as last stored: None is LINE's null ("fewer than 20")."""

    unit: str
    activations: tuple[str, ...]
    first_day: str  # YYYY-MM-DD, UTC+9
    last_day: str
    impressions: int | None
    clicks: int | None
    media_played: int | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class Overview:
    scope: Scope
    now: float
    minutes: tuple[Minute, ...]  # oldest first; the last is the current minute
    finished: dict[str, int]  # events that ended within the hour, by state
    reasons: tuple[tuple[str, int], ...]  # why pushes did not deliver, most frequent first
    queue: dict[str, int]  # events waiting now, by state
    first_due: float | None  # the earliest due time of a queued or retrying event
    rate_limit: float  # pushes per second per channel
    rate_sharing: str  # how processes share it: "redis", "divided" (PostgreSQL), "single" (SQLite)
    hold: pauses.ChannelHold | None
    paused_by_hand: str | None  # the activation's own pause (activation scope)
    lane: LaneState | None
    engagement: tuple[Engagement, ...]
    reconciliation: reconcile.Reconciliation | None
    quota: line_quota.Quota | None = field(default=None)

    @property
    def since(self) -> float:
        return self.minutes[0].start

    @property
    def lag(self) -> float:
        """Seconds the earliest due event has waited (0: nothing is due)."""
        return 0.0 if self.first_due is None else max(0.0, self.now - self.first_due)

    @property
    def outcomes(self) -> dict[str, int]:
        return {
            "delivered": self.finished.get("delivered", 0),
            "retried": sum(m.retried for m in self.minutes),
            "failed": self.finished.get("failed", 0),
            "suppressed": self.finished.get("suppressed", 0),
            "deferred": self.queue.get("deferred", 0),
        }

    @property
    def pushes(self) -> int:
        return sum(m.pushes for m in self.minutes)

    @property
    def latency_avg(self) -> float | None:
        delivered = sum(m.delivered for m in self.minutes)
        return sum(m.latency_sum for m in self.minutes) / delivered if delivered else None

    @property
    def latency_max(self) -> float | None:
        return max((m.latency_max for m in self.minutes if m.latency_max is not None), default=None)

    @property
    def peak_rate(self) -> float:
        """The busiest minute's pushes per second."""
        return max((m.pushes for m in self.minutes), default=0) / MINUTE

    @property
    def mismatch(self) -> bool:
        return self.reconciliation is not None and self.reconciliation.verdict in ("line_more", "line_fewer")

    def public(self) -> dict[str, Any]:
        return _public(self)


def read(
    db: Database, scope: Scope, *, now: float, rate_limit: float, rate_sharing: str, lane: LaneState | None = None
) -> Overview:
    """The scope's overview at ``now`` (everything but the quota, which LINE tells)."""
    start = (math.floor(now / MINUTE) - (MINUTES - 1)) * MINUTE
    params = {
        "channel_key": scope.channel_key,
        "activation": scope.activation.name if scope.activation else None,
        "since": start,
        "until": start + MINUTES * MINUTE,
        "now": now,
    }
    queue, first_due = _queue(db, params)
    hold = pauses.board(db).channels.get(scope.channel_key)
    return Overview(
        scope=scope,
        now=now,
        minutes=_minutes(db, params, start),
        finished={r["state"]: int(r["n"]) for r in db.run("overview_finished", params)},
        reasons=tuple((r["reason"], int(r["n"])) for r in db.run("overview_retry_reasons", params)),
        queue=queue,
        first_due=first_due,
        rate_limit=rate_limit,
        rate_sharing=rate_sharing,
        hold=hold,
        paused_by_hand=scope.activation.paused_reason if scope.activation else None,
        lane=lane,
        engagement=_engagement(db, scope),
        reconciliation=next(iter(reconcile.history(db, scope.auth.name, limit=1)), None),
    )


def _minutes(db: Database, params: dict[str, Any], start: float) -> tuple[Minute, ...]:
    rows = {int(r["minute"]): r for r in db.run("overview_pushes_per_minute", params)}
    out = []
    for i in range(MINUTES):
        r = rows.get(i)
        if r is None:
            out.append(Minute(start + i * MINUTE))
            continue
        latency_max = r["latency_max"]
        out.append(
            Minute(
                start + i * MINUTE,
                int(r["delivered"]),
                int(r["retried"]),
                int(r["failed"]),
                float(r["latency_sum"] or 0.0),
                None if latency_max is None else float(latency_max),
            )
        )
    return tuple(out)


def _queue(db: Database, params: dict[str, Any]) -> tuple[dict[str, int], float | None]:
    queue = dict.fromkeys(WAITING, 0)
    first_due: float | None = None
    for r in db.run("overview_queue", params):
        queue[r["state"]] = int(r["n"])
        due = r["first_due"]
        if r["state"] in ("queued", "retrying") and due is not None and due <= params["now"]:
            first_due = due if first_due is None else min(first_due, due)
    return queue, first_due


def _engagement(db: Database, scope: Scope) -> tuple[Engagement, ...]:
    """The stored figures of each unit the scope's activations send with: its latest default period
    (the one ``stats`` shows by default), whatever periods were asked for by hand since."""
    users: dict[str, list[str]] = {}
    for a in scope.activations:
        if a.spec.aggregation_unit:
            users.setdefault(a.spec.aggregation_unit, []).append(a.name)
    if not users:
        return ()
    only = next(iter(users)) if scope.kind == "activation" else None
    rows = db.run("overview_unit_statistics", {"channel_key": scope.channel_key, "unit": only})
    latest = {r["unit"]: r for r in rows}  # one row a unit
    return tuple(_figures(latest[u], tuple(names)) for u, names in users.items() if u in latest)


def _figures(row: dict[str, Any], users: tuple[str, ...]) -> Engagement:
    overview = orjson.loads(row["figures"]).get("overview") or {}

    def figure(name: str) -> int | None:
        value = overview.get(name)
        return value if isinstance(value, int) else None

    return Engagement(
        row["unit"],
        users,
        _iso_day(row["from_day"]),
        _iso_day(row["to_day"]),
        figure("uniqueImpression"),
        figure("uniqueClick"),
        figure("uniqueMediaPlayed"),
        float(row["fetched_at"]),
    )


def _iso_day(compact_day: str) -> str:
    day = parse_compact(compact_day)
    return day.isoformat() if day else compact_day


def _public(view: Overview) -> dict[str, Any]:
    return {
        "scope": view.scope.kind,
        "name": view.scope.name,
        "authentication": view.scope.auth.name,
        "activations": [a.name for a in view.scope.activations],
        "now": view.now,
        "since": view.since,
        "pushes_per_minute": [{**asdict(m), "latency_avg": m.latency_avg} for m in view.minutes],
        "outcomes": view.outcomes,
        "retry_reasons": dict(view.reasons),
        "queue": view.queue,
        "lag_seconds": view.lag,
        "latency_avg": view.latency_avg,
        "latency_max": view.latency_max,
        "rate_limit": view.rate_limit,
        "rate_sharing": view.rate_sharing,
        "hold": None if view.hold is None else asdict(view.hold),
        "paused_by_hand": view.paused_by_hand,
        "lane": None if view.lane is None else asdict(view.lane),
        "engagement": [asdict(e) for e in view.engagement],
        "null_means": "fewer than 20",
        "reconciliation": None if view.reconciliation is None else view.reconciliation.public(),
        "quota": None if view.quota is None else view.quota.public(),
    }
