"""The audience gate: what is checked about the recipient just before an event is sent.

Claimed events pass it inside the claim's transaction, so what it decides is stored before any
sender sees the event. Three checks, in this order:

1. **Blocked.** The channel's webhooks said last that the recipient unfollowed (see
   :mod:`lineoa_export.followers`): ``suppressed``, "blocked the account at T". Checked for every
   event, retries included: LINE would answer 200 and nobody would read it.
2. **Quiet hours** (an activation's ``quiet_hours`` in its ``time_zone``, or in the recipient's own
   zone when ``time_zone_attribute`` brought one): ``deferred`` until they end, or ``suppressed``
   with ``in_quiet_hours = drop``.
3. **Frequency cap** (``frequency_cap`` N/PERIOD): at most N events of the activation counted for
   one recipient in any rolling PERIOD; over it ``suppressed``, or ``deferred`` until the window
   allows one more with ``over_cap = defer``. An event is counted (``counted_at``) when it passes.

Quiet hours and the cap apply to an event's first send only (no attempt made, never counted): a
retry under way is never held back, so its 24-hour retry key cannot run out while it waits.
Deferred events keep their body, retry key and retry budget; :func:`release_due` puts them back in
line once due, where the channel's rate limit spaces them out. The one rule: the gate decides from
stored facts only (follow state, counted events, the clock), so any worker decides the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..audience import (
    Decision,
    FrequencyCap,
    QuietHours,
    frequency_cap_decision,
    parse_frequency_cap,
    parse_quiet_hours,
    parse_time_zone,
    quiet_hours_decision,
    recipient_zone,
)
from ..store.database import Database, Tx
from .states import EventState

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Audience:
    """An activation's cap and quiet hours, parsed (None where it has none)."""

    cap: FrequencyCap | None
    over_cap: str
    quiet: QuietHours | None
    zone: ZoneInfo
    zone_from_event: bool
    drop_in_quiet_hours: bool


def audience_of(row: Row) -> Audience | None:
    """From an ``activation_routes`` row; None when the activation has neither cap nor quiet hours."""
    if not row.get("frequency_cap") and not row.get("quiet_hours"):
        return None
    return _parsed(
        row.get("frequency_cap"),
        row.get("over_cap") or "suppress",
        row.get("quiet_hours"),
        row.get("time_zone") or "Asia/Tokyo",
        bool(row.get("time_zone_attribute")),
        row.get("in_quiet_hours") == "drop",
    )


@lru_cache(maxsize=1024)
def _parsed(cap: str | None, over: str, quiet: str | None, zone: str, from_event: bool, drop: bool) -> Audience:
    # Stored settings were checked when saved; parsing them again per claim would be waste.
    return Audience(
        parse_frequency_cap(cap) if cap else None,
        over,
        parse_quiet_hours(quiet) if quiet else None,
        parse_time_zone(zone),
        from_event,
        drop,
    )


@dataclass(frozen=True, slots=True)
class Held:
    """An event the gate keeps from sending now: its new state, when it may go, and why."""

    state: EventState
    due: float | None
    reason: str


def screen(
    tx: Tx,
    dialect: str,
    rows: list[Row],
    audiences: dict[str, Audience | None],
    now: float,
    holds: list[tuple[str, EventState]] | None = None,
) -> list[Row]:
    """The claimed rows that may be sent now; the others are settled here (lease released) and,
    when ``holds`` is given, added to it as (activation, new state) for the metrics."""
    passed = []
    for row in rows:
        held = _check(tx, dialect, row, audiences.get(row["activation"]), now)
        if held is None:
            passed.append(row)
            continue
        if holds is not None:
            holds.append((row["activation"], held.state))
        final = held.state is EventState.SUPPRESSED
        tx.run(
            "gate_hold",
            {
                "id": row["id"],
                "state": held.state,
                "next_attempt_at": None if final else held.due,
                "finished_at": now if final else None,
                "error": held.reason,
            },
        )
    return passed


def find_blocked(tx: Tx, dialect: str, rows: list[Row]) -> None:
    """Set ``blocked_at_ms`` on the claimed rows whose recipient blocked the account, before
    :func:`screen` (claim_due says per row whether its channel has any blocked follower; most have
    none, and cost nothing here)."""
    by_channel: dict[str, list[Row]] = {}
    for row in rows:
        if row.get("channel_blocked") and row.get("recipient"):
            by_channel.setdefault(row["channel_key"], []).append(row)
    for channel_key, some in by_channel.items():
        recipients = [row["recipient"] for row in some]
        user_ids = recipients if dialect == "postgres" else orjson.dumps(recipients).decode()  # an array / JSON
        found = tx.run(f"followers_blocked_among_{dialect}", {"channel_key": channel_key, "user_ids": user_ids})
        blocked = {f["user_id"]: f["changed_at_ms"] for f in found}
        for row in some:
            row["blocked_at_ms"] = blocked.get(row["recipient"])


def _check(tx: Tx, dialect: str, row: Row, audience: Audience | None, now: float) -> Held | None:
    blocked_at_ms = row.get("blocked_at_ms")
    if blocked_at_ms is not None:
        return Held(EventState.SUPPRESSED, None, f"blocked the account at {_iso(blocked_at_ms / 1000)}")
    if audience is None or row["attempts"] or row.get("counted_at") is not None:
        return None
    if audience.quiet is not None:
        zone = recipient_zone(row.get("time_zone"), audience.zone) if audience.zone_from_event else audience.zone
        held = _held(quiet_hours_decision(now, audience.quiet, zone), drop=audience.drop_in_quiet_hours)
        if held is not None:
            return held
    if audience.cap is None:
        return None
    if dialect == "postgres":
        # Two workers may claim two events for one recipient at once: one counts at a time.
        tx.run("cap_lock", {"activation": row["activation"], "recipient": row.get("recipient") or ""})
    window = {
        "activation": row["activation"],
        "recipient": row.get("recipient"),
        "since": now - audience.cap.period_seconds,
    }
    counted = [r["counted_at"] for r in tx.run("cap_counted", window)]
    held = _held(frequency_cap_decision(now, counted, audience.cap, audience.over_cap), drop=False)
    if held is None:
        tx.run("cap_count", {"id": row["id"], "now": now})
    return held


def _held(decision: Decision, *, drop: bool) -> Held | None:
    if decision.action == "send":
        return None
    if decision.action == "defer" and not drop:
        return Held(
            EventState.DEFERRED, decision.until, f"deferred until {_iso(decision.until or 0)}: {decision.reason}"
        )
    return Held(EventState.SUPPRESSED, None, decision.reason)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_due(db: Database, *, now: float) -> int:
    """Deferred events whose time has come go back in line (``paused`` if their channel or activation is)."""
    return len(db.run("deferred_release", {"now": now}))
