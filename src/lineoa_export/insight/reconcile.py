"""Reconciliation: LINE's count of pushes on a day next to the pushes we recorded as accepted.

LINE counts the pushes each channel sent on a day in UTC+9 (``GET /v2/bot/message/delivery/push
?date=yyyyMMdd``), usually from the next day on. Ours is the number of events on that channel
that ended ``delivered`` during that day (their last attempt's time, UTC+9): LINE answered 200,
or 409 for a retry key it had accepted. The verdict is one of:

- ``equal``: both counts agree;
- ``line_more``: LINE counted more: someone else pushes on this channel (another tool, the OA
  Manager's API use), or we lost a record;
- ``line_fewer``: LINE counted fewer: an acceptance we recorded that LINE did not count;
- ``not_ready``: LINE has not counted that day yet (always so for today);
- ``unavailable``: LINE does not tell (under 20 pushes that day, or a day before 2018-03-31).

Each result is stored (one row per authentication and day, the latest wins) for the metrics.

The one rule: both counts are taken for the same UTC+9 day, from :mod:`lineoa_export.line_time`;
a push at 23:59:59 JST and one at 00:00:00 JST are on different days for LINE and for us.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from .. import authentications
from ..context import Context
from ..delivery.outcomes import success_json
from ..errors import InvalidInput
from ..line_time import compact, day_bounds, line_day, parse_iso_day
from ..store.database import Database
from .line import LineUnavailable, reason, session

VERDICTS: Final = ("equal", "line_more", "line_fewer", "not_ready", "unavailable")
_SAYS: Final = {
    "equal": "LINE counted as many pushes as we recorded",
    "line_more": "LINE counted more: someone else pushes on this channel, or we lost a record",
    "line_fewer": "LINE counted fewer: we recorded an acceptance LINE did not count",
    "not_ready": "LINE has not counted this day yet (it usually has by the next day)",
    "unavailable": "LINE does not tell for this day (under 20 pushes, or before 2018-03-31)",
}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    authentication: str
    day: date
    channel_key: str
    verdict: str
    line_status: str
    line_count: int | None
    our_count: int
    checked_at: float

    @property
    def says(self) -> str:
        return _SAYS[self.verdict]

    def public(self) -> dict[str, Any]:
        return {
            "authentication": self.authentication,
            "date": self.day.isoformat(),
            "verdict": self.verdict,
            "says": self.says,
            "line_status": self.line_status,
            "line_count": self.line_count,
            "our_count": self.our_count,
            "difference": None if self.line_count is None else self.line_count - self.our_count,
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Reconciliation:
        return cls(
            row["authentication"],
            date.fromisoformat(row["day"]),
            row["channel_key"],
            row["verdict"],
            row["line_status"],
            row["line_count"],
            row["our_count"],
            row["checked_at"],
        )


def day_of(text: str | None, now: float) -> date:
    """The day asked for (``YYYY-MM-DD``, UTC+9); by default yesterday in UTC+9."""
    if text is None or text == "":
        return line_day(now) - timedelta(days=1)
    day = parse_iso_day(text)
    if day is None:
        raise InvalidInput.single("date", f"must be a date as YYYY-MM-DD (a day in UTC+9), got {text[:40]!r}")
    return day


def verdict_of(line_status: str, line_count: int | None, our_count: int) -> str:
    if line_status == "ready" and line_count is not None:
        if line_count == our_count:
            return "equal"
        return "line_more" if line_count > our_count else "line_fewer"
    return "not_ready" if line_status == "unready" else "unavailable"


def our_count(db: Database, channel_key: str, day: date) -> int:
    """Events on the channel that ended delivered during ``day`` (UTC+9)."""
    start, end = day_bounds(day)
    rows = db.run("delivered_on_channel_between", {"channel_key": channel_key, "start": start, "end": end})
    return int(rows[0]["n"])


def keep(db: Database, result: Reconciliation) -> None:
    params = {**result.public(), "day": result.day.isoformat(), "channel_key": result.channel_key}
    with db.transaction() as tx:
        tx.run("reconciliation_put", params)


def stored(db: Database, authentication: str, day: date) -> Reconciliation | None:
    """The result kept for one authentication and day, if any."""
    rows = db.run("reconciliation_get", {"authentication": authentication, "day": day.isoformat()})
    return Reconciliation.from_row(rows[0]) if rows else None


def latest(db: Database) -> list[Reconciliation]:
    """The most recent day reconciled for every authentication (for the metrics and the console)."""
    return [Reconciliation.from_row(r) for r in db.run("reconciliations_latest")]


def history(db: Database, authentication: str, limit: int = 31) -> list[Reconciliation]:
    rows = db.run("reconciliations_of", {"authentication": authentication, "limit": limit})
    return [Reconciliation.from_row(r) for r in rows]


async def reconcile(ctx: Context, name: str, day_text: str | None = None) -> Reconciliation:
    """Ask LINE for the day's count, count ours, store and return the verdict."""
    now = ctx.clock.now()
    day = day_of(day_text, now)
    auth = await asyncio.to_thread(authentications.get, ctx.db, name)
    status, line_count = await _line_count(ctx, auth, day)
    ours = await asyncio.to_thread(our_count, ctx.db, auth.channel_key, day)
    result = Reconciliation(
        name, day, auth.channel_key, verdict_of(status, line_count, ours), status, line_count, ours, now
    )
    await asyncio.to_thread(keep, ctx.db, result)
    return result


async def _line_count(ctx: Context, auth: authentications.Authentication, day: date) -> tuple[str, int | None]:
    async with session(ctx, auth) as line:
        answer = await line.client.push_count(line.token, compact(day))
    data = success_json(answer)
    status = data.get("status") if data else None
    if not isinstance(status, str):
        raise LineUnavailable(f"LINE did not give its count for {day.isoformat()}: {reason(answer)}")
    count = data.get("success") if data else None
    return status, count if isinstance(count, int) else None
