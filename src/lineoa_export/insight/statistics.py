"""LINE's statistics for an activation's aggregation unit: unique impressions, clicks, media
played, per message and per URL (``GET /v2/bot/insight/message/event/aggregation``).

LINE allows :data:`REQUESTS_PER_HOUR` of these requests an hour per channel, and keeps
changing a unit's figures for 14 days after a send. So every answer is stored with the time
it was fetched, and LINE is asked only when the stored figures are older than
:data:`FRESH_FOR` seconds *and* the channel has a request left in the last hour (counted in
the ``insight_requests`` table, shared by every process on the database). Otherwise the stored
figures are shown with their age, and why LINE was not asked. The background refresh of
``serve`` (background.py) goes through here too, with a smaller share of the hour.

A figure LINE gives as ``null`` is one under 20 (or from fewer than 20 users): it stays None
here and is shown as "fewer than 20", never as 0.

The one rule: a request is counted *before* it is sent, whatever LINE answers, because LINE
counts it too; the check and the count are one step (:func:`take_request`), so two processes
never both spend the 60th.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import orjson

from .. import activations, authentications
from ..context import Context
from ..delivery.outcomes import success_json
from ..errors import InvalidInput
from ..line_time import compact, line_day, parse_iso_day
from ..store.database import Database
from .line import LineUnavailable, reason, session

REQUESTS_PER_HOUR: Final = 60
FRESH_FOR: Final = 300.0  # seconds: newer stored figures are shown without asking LINE
KEEP_FOR: Final = 86_400.0  # seconds: older figures of a period no view shows by default are pruned
MAX_PERIOD_DAYS: Final = 30  # LINE: `to` at most 30 days after `from`
FEWER_THAN_20: Final = "fewer than 20"


@dataclass(frozen=True, slots=True)
class Period:
    """Days in UTC+9, both included."""

    first: date
    last: date


@dataclass(frozen=True, slots=True)
class Stats:
    """LINE's figures for one unit and period, and where they come from."""

    activation: str
    unit: str
    period: Period
    figures: dict[str, Any] | None  # LINE's answer (nulls kept); None: never fetched
    fetched_at: float | None
    asked_line: bool
    note: str | None  # why LINE was not asked, or what went wrong when it was
    now: float
    failed: bool = False  # LINE was asked and gave no figures (the note says why)

    @property
    def age_seconds(self) -> float | None:
        return None if self.fetched_at is None else max(0.0, self.now - self.fetched_at)

    def public(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "aggregation_unit": self.unit,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "fetched_at": self.fetched_at,
            "age_seconds": self.age_seconds,
            "source": "line" if self.asked_line else ("stored" if self.figures is not None else "none"),
            "note": self.note,
            "null_means": FEWER_THAN_20,
            "figures": self.figures,
        }


def period_of(first_text: str | None, last_text: str | None, *, created_at: float, now: float) -> Period:
    """The period asked for (``YYYY-MM-DD``, UTC+9). By default: up to today, from the activation's
    first day or 30 days back, whichever is later. Bad input names the field."""
    last = _day(last_text, "to") if last_text else line_day(now)
    if first_text:
        first = _day(first_text, "from")
    else:
        first = max(line_day(created_at), last - timedelta(days=MAX_PERIOD_DAYS))
        first = min(first, last)
    if last < first:
        raise InvalidInput.single("to", f"must not be before from ({first.isoformat()})")
    if last > first + timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidInput.single("to", f"must be at most {MAX_PERIOD_DAYS} days after from ({first.isoformat()})")
    return Period(first, last)


def _day(text: str, field: str) -> date:
    day = parse_iso_day(text)
    if day is None:
        raise InvalidInput.single(field, f"must be a date as YYYY-MM-DD (a day in UTC+9), got {text[:40]!r}")
    return day


# -- the store -------------------------------------------------------------------------------


def stored(db: Database, channel_key: str, unit: str, period: Period) -> tuple[dict[str, Any], float] | None:
    rows = db.run("unit_statistics_get", _key(channel_key, unit, period))
    if not rows:
        return None
    return orjson.loads(rows[0]["figures"]), rows[0]["fetched_at"]


def keep(
    db: Database,
    channel_key: str,
    unit: str,
    period: Period,
    figures: dict[str, Any],
    now: float,
    *,
    default_period: bool,
) -> None:
    """Store LINE's figures; ``default_period``: the period is the one :func:`period_of` gives by default
    at ``now`` (the only figures the overview shows)."""
    with db.transaction() as tx:
        tx.run("unit_statistics_put", {**_key(channel_key, unit, period), "figures": orjson.dumps(figures).decode(),
                                       "fetched_at": now, "default_period": default_period})  # fmt: skip


def forget_unshown(db: Database, *, now: float) -> int:
    """Delete the figures no view needs any more: those older than :data:`KEEP_FOR` that are not
    their unit's latest default period (the overview's); how many went. The default period's end
    moves every day, so without this a unit kept a row a day. A period asked for by hand stays a
    day: ``stats`` shows it (with its age) when the channel's hourly budget is spent."""
    with db.transaction() as tx:
        return tx.run_changed("unit_statistics_prune", {"before": now - KEEP_FOR})


def _key(channel_key: str, unit: str, period: Period) -> dict[str, Any]:
    return {"channel_key": channel_key, "unit": unit, "from_day": compact(period.first), "to_day": compact(period.last)}


def take_request(db: Database, channel_key: str, now: float, limit: int = REQUESTS_PER_HOUR) -> float | None:
    """Count one statistics request for the channel, if the last hour has had fewer than ``limit``:
    None when taken, else when the next one may go (POSIX seconds). ``serve``'s background refresh
    passes a lower limit, so an operator's ``stats`` still finds requests left."""
    hour_ago = now - 3600.0
    with db.transaction() as tx:
        if db.dialect == "postgres":  # check and count as one step; SQLite's writers go one at a time
            tx.run("insight_requests_lock", {"channel_key": channel_key})
        tx.run("insight_requests_prune", {"channel_key": channel_key, "before": hour_ago})
        rows = tx.run("insight_requests_since", {"channel_key": channel_key, "since": hour_ago})
        if rows[0]["n"] >= limit:
            return float(rows[0]["oldest"]) + 3600.0
        tx.run("insight_request_add", {"channel_key": channel_key, "now": now})
    return None


# -- the verb --------------------------------------------------------------------------------


async def statistics(
    ctx: Context,
    name: str,
    first: str | None = None,
    last: str | None = None,
    *,
    budget: int = REQUESTS_PER_HOUR,
    fresh_for: float = FRESH_FOR,
) -> Stats:
    """LINE's statistics for activation ``name``: fresh ones when allowed, else the stored ones.
    LINE is asked when the stored figures are ``fresh_for`` seconds old and fewer than ``budget``
    requests went to the channel in the last hour (the background refresh asks for less)."""
    activation = await asyncio.to_thread(activations.get, ctx.db, name)
    unit = activation.spec.aggregation_unit
    if unit is None:
        raise InvalidInput.single(
            "aggregation_unit",
            f"activation {name!r} sends without an aggregation unit: LINE keeps no statistics for it",
        )
    now = ctx.clock.now()
    period = period_of(first, last, created_at=activation.created_at, now=now)
    key = activation.channel_key
    kept = await asyncio.to_thread(stored, ctx.db, key, unit, period)
    view = Stats(name, unit, period, kept[0] if kept else None, kept[1] if kept else None, False, None, now)
    if kept is not None and now - kept[1] < fresh_for:
        return view
    next_at = await asyncio.to_thread(take_request, ctx.db, key, now, budget)
    if next_at is not None:
        wait = max(1, round((next_at - now) / 60))
        note = f"LINE's {REQUESTS_PER_HOUR} statistics requests an hour on this channel are used: next in {wait} min"
        return _with_note(view, note)
    auth = await asyncio.to_thread(authentications.get, ctx.db, activation.spec.authentication)
    try:
        figures = await _ask_line(ctx, auth, unit, period)
    except LineUnavailable as exc:
        return _with_note(view, f"LINE was asked and did not give figures: {exc}", failed=True)
    by_default = period == period_of(None, None, created_at=activation.created_at, now=now)
    await asyncio.to_thread(keep, ctx.db, key, unit, period, figures, now, default_period=by_default)
    return Stats(name, unit, period, figures, now, True, None, now)


async def _ask_line(ctx: Context, auth: authentications.Authentication, unit: str, period: Period) -> dict[str, Any]:
    async with session(ctx, auth) as line:
        answer = await line.client.unit_statistics(line.token, unit, compact(period.first), compact(period.last))
    figures = success_json(answer)
    if figures is None or not isinstance(figures.get("overview"), dict):
        raise LineUnavailable(reason(answer))
    return figures


def _with_note(view: Stats, note: str, *, failed: bool = False) -> Stats:
    return Stats(view.activation, view.unit, view.period, view.figures, view.fetched_at, False, note, view.now, failed)


def shown(value: Any) -> str:
    """A figure for people: LINE's null is "fewer than 20", never 0."""
    return FEWER_THAN_20 if value is None else f"{value:,}" if isinstance(value, int) else str(value)
