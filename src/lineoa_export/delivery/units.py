"""LINE's 1,000 aggregation units a month per channel: whether a push may carry its unit.

A trigger renders the activation's unit into every body (``customAggregationUnits``). LINE
counts at most 1,000 distinct units per channel per calendar month (UTC+9) and silently drops
the rest: the push is sent, its statistics are lost. So before a unit's first push on a channel
in a month, the worker asks LINE how many units the month has used
(``/v2/bot/message/aggregation/info``; when the month is full, whether ours is already among
them, ``/aggregation/list``) and stores the decision in ``aggregation_units``. A refused unit is
taken out of the body before sending, and the activation says so instead of losing it silently.
The stored body keeps the unit; the activation table shows the bytes sent (:func:`sent_body`).

The one rule: a decision, once stored, never changes, and it is looked up by the month of the
event's *first* attempt. A retry therefore sends byte for byte what the first attempt sent
(LINE-FACTS: same retry key, same body). Decisions of a channel and month are taken one at a
time in the store (:func:`decide`), counting the units we granted that LINE may not count yet:
two workers deciding two new units at 999 admit one.

On the push path this costs one dictionary lookup per push carrying a unit; LINE and the
database are asked once per unit, channel and month.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import orjson

from ..authentications import TokenUnavailable
from ..line_time import day_bounds, line_month
from ..store.database import Database
from .channel import LineChannel
from .outcomes import success_json

log = logging.getLogger(__name__)

MONTHLY_UNITS: Final = 1000
#: Pages of ``/aggregation/list`` read at most when the month is full (100 names a page).
MAX_LIST_PAGES: Final = 12

DbCall = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class UnitDecision:
    """May ``unit`` be used on a channel in ``month``, and why."""

    channel_key: str
    month: str
    unit: str
    granted: bool
    units_used: int | None
    note: str
    checked_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> UnitDecision:
        return cls(
            row["channel_key"],
            row["month"],
            row["unit"],
            bool(row["granted"]),
            row["units_used"],
            row["note"],
            row["checked_at"],
        )


def stored(db: Database, channel_key: str, month: str, unit: str) -> UnitDecision | None:
    rows = db.run("aggregation_unit_get", {"channel_key": channel_key, "month": month, "unit": unit})
    return UnitDecision.from_row(rows[0]) if rows else None


@dataclass(frozen=True, slots=True)
class Listing:
    """This month's unit names as LINE listed them (``complete``: every page was read)."""

    names: frozenset[str]
    complete: bool


def judge(unit: str, used: int | None, ours: frozenset[str], listing: Listing | None) -> tuple[bool, str] | None:
    """Whether ``unit`` may be used, and why; None when only LINE's list of the month's units can tell.

    ``used`` is LINE's count (None: LINE did not say), ``ours`` the units already granted on the
    channel this month. A unit we granted may not be in LINE's count yet (its first push has not
    reached LINE), so it counts on top, unless LINE's list names it.
    """
    if used is None:  # sent with the unit, unless our own grants alone fill the month
        if len(ours) < MONTHLY_UNITS:
            return True, "LINE did not say how many units this month used: sent with the unit"
        return False, f"{len(ours)} units used this month by this channel's activations: pushes go without the unit"
    if listing is None:
        if used + len(ours) < MONTHLY_UNITS:
            return True, f"{used} of LINE's {MONTHLY_UNITS:,} units a month used before this one"
        return None
    if unit in listing.names:
        return True, f"already among this month's {used} units"
    counted = max(used, len(listing.names))
    on_the_way = len(ours - listing.names)
    if counted + on_the_way < MONTHLY_UNITS:
        return True, f"{counted} of LINE's {MONTHLY_UNITS:,} units a month used and {on_the_way} of ours on the way"
    return False, f"LINE's {MONTHLY_UNITS:,} units this month are used up: pushes go without the unit"


def decide(
    db: Database, key: tuple[str, str, str], used: int | None, listing: Listing | None, now: float
) -> UnitDecision | None:
    """Decide and store, atomically, whether the unit of ``key`` (channel, month, unit) may be used:
    one decision at a time per channel and month, so two workers at 999 admit one unit, not two.
    A decision already stored is returned as it is; None: LINE's list is needed (see :func:`judge`)."""
    channel_key, month, unit = key
    params = {"channel_key": channel_key, "month": month, "unit": unit}
    with db.transaction() as tx:
        if db.dialect == "postgres":  # SQLite's write transactions are one at a time already
            tx.run("aggregation_units_lock", params)
        rows = tx.run("aggregation_unit_get", params)
        if rows:
            return UnitDecision.from_row(rows[0])
        ours = frozenset(r["unit"] for r in tx.run("aggregation_units_granted", params))
        verdict = judge(unit, used, ours, listing)
        if verdict is None:
            return None
        decision = UnitDecision(channel_key, month, unit, verdict[0], used, verdict[1], now)
        tx.run("aggregation_unit_insert", {**params, "granted": int(decision.granted), "units_used": used,
                                           "note": decision.note, "checked_at": now})  # fmt: skip
    return decision


@dataclass(frozen=True, slots=True)
class UnitStatus:
    """What an activation's unit does this month, for ``activation show``, the API and the console."""

    unit: str | None
    month: str
    decision: UnitDecision | None

    @property
    def state(self) -> str:
        """``none`` (no unit), ``unused`` (no push this month yet), ``in_use``, or ``withheld``."""
        if self.unit is None:
            return "none"
        if self.decision is None:
            return "unused"
        return "in_use" if self.decision.granted else "withheld"

    def describe(self) -> str:
        if self.unit is None:
            return "none: pushes carry no aggregation unit"
        if self.decision is None:
            return f"{self.unit} (no push yet in {self.month}, UTC+9)"
        if self.decision.granted:
            return f"{self.unit} (in use in {self.month}: {self.decision.note})"
        return f"{self.unit} WITHHELD in {self.month}: {self.decision.note}"

    def public(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "month": self.month,
            "state": self.state,
            "note": self.decision.note if self.decision else None,
            "checked_at": self.decision.checked_at if self.decision else None,
        }


def status(db: Database, channel_key: str, unit: str | None, now: float) -> UnitStatus:
    """The unit's state on its channel in the month of ``now`` (UTC+9)."""
    month = line_month(now)
    return UnitStatus(unit, month, stored(db, channel_key, month, unit) if unit else None)


def without_unit(body: bytes) -> bytes:
    """``body`` with its ``customAggregationUnits`` taken out (only for a refused unit)."""
    data = orjson.loads(body)
    data.pop("customAggregationUnits", None)
    return orjson.dumps(data)


def sent_body(db: Database, channel_key: str, unit: str, body: bytes, first_attempt_at: float) -> bytes:
    """The bytes a push of the stored ``body`` went with, for the activation table: the worker sends
    exactly these (:meth:`UnitBudget.known_body`, from the same stored decision of the same month)."""
    decision = stored(db, channel_key, line_month(first_attempt_at), unit)
    return body if decision is None or decision.granted else without_unit(body)


async def line_count(channel: LineChannel) -> tuple[str | None, int | None]:
    """A token and LINE's count of this month's units (None for what LINE did not give)."""
    try:
        token = await channel.tokens.token()
    except TokenUnavailable:
        return None, None
    info = success_json(await channel.client.aggregation_info(token))
    used = info.get("numOfCustomAggregationUnits") if info else None
    return token, used if isinstance(used, int) else None


async def read_listing(channel: LineChannel, token: str) -> Listing:
    """This month's unit names, up to :data:`MAX_LIST_PAGES` pages."""
    names: set[str] = set()
    start: str | None = None
    for _ in range(MAX_LIST_PAGES):
        page = success_json(await channel.client.aggregation_list(token, start))
        if page is None:
            return Listing(frozenset(names), complete=False)
        listed = page.get("customAggregationUnits")
        if isinstance(listed, list):
            names.update(n for n in listed if isinstance(n, str))
        start = page.get("next")
        if not isinstance(start, str):
            return Listing(frozenset(names), complete=True)
    return Listing(frozenset(names), complete=False)


class UnitBudget:
    """The decisions a worker knows, and the one lookup per unit and month it makes."""

    def __init__(self, db: Database, db_call: DbCall, now: Callable[[], float]) -> None:
        self._db = db
        self._db_call = db_call
        self._now = now
        self._known: dict[tuple[str, str, str], bool] = {}
        self._lookups: dict[tuple[str, str, str], asyncio.Future[bool]] = {}
        #: Pushes this worker sent without their unit (a refused month).
        self.withheld = 0
        self._month_span: tuple[float, float, str] = (0.0, 0.0, "")

    def known_body(self, channel_key: str, unit: str, body: bytes, at: float) -> bytes | None:
        """The hot path: the body to send at ``at`` (the event's first attempt) when this unit's month
        is already decided (the body as stored, or without its unit); None when it is not."""
        granted = self._known.get((channel_key, self._month(at), unit))
        if granted is None:
            return None
        if granted:
            return body
        self.withheld += 1
        return without_unit(body)

    async def body_for(self, channel: LineChannel, channel_key: str, unit: str, body: bytes, at: float) -> bytes:
        """As :meth:`known_body`, deciding the month first (LINE and the database asked once)."""
        known = self.known_body(channel_key, unit, body, at)
        if known is not None:
            return known
        await self._decide(channel, (channel_key, self._month(at), unit))
        decided = self.known_body(channel_key, unit, body, at)
        assert decided is not None
        return decided

    def _month(self, at: float) -> str:
        """``line_month(at)``, computed once a month rather than once a push."""
        start, end, month = self._month_span
        if start <= at < end:
            return month
        month = line_month(at)
        first = date(int(month[:4]), int(month[5:]), 1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        self._month_span = (day_bounds(first)[0], day_bounds(following)[0], month)
        return month

    async def _decide(self, channel: LineChannel, key: tuple[str, str, str]) -> bool:
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = self._lookups[key] = asyncio.ensure_future(self._look_up(channel, key))
        try:
            granted = await asyncio.shield(lookup)
        finally:
            if self._lookups.get(key) is lookup and lookup.done():
                self._lookups.pop(key, None)
        self._known[key] = granted
        return granted

    async def _look_up(self, channel: LineChannel, key: tuple[str, str, str]) -> bool:
        channel_key, month, unit = key
        decision: UnitDecision | None = await self._db_call(stored, self._db, channel_key, month, unit)
        if decision is None:
            token, used = await line_count(channel)
            decision = await self._db_call(decide, self._db, key, used, None, self._now())
            if decision is None and token is not None:  # near the month's end: LINE's list tells
                listing = await read_listing(channel, token)
                decision = await self._db_call(decide, self._db, key, used, listing, self._now())
            assert decision is not None  # decide() always decides with a listing or without a count
            if not decision.granted:
                log.warning(
                    "channel %s: pushes of unit %s go without it in %s: %s", channel_key, unit, month, decision.note
                )
        return decision.granted
