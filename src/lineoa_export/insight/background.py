"""What a delivering process does about LINE by itself (issue 10): it keeps recent units'
statistics fresh and reconciles every channel once a day.

It runs beside the delivery worker: in ``serve``, and in ``worker`` unless ``--until-idle``;
never in ``serve --no-worker``, so an API-only node never calls LINE on its own.

- **Statistics.** An activation with a unit whose newest event came in during the last
  :data:`RECENT_DAYS` (LINE keeps changing a unit's figures for 14 days after a push; one day
  more for a push deferred or retried) has the figures ``stats`` shows by default fetched again
  once they are :data:`REFRESH_AFTER` old, the stalest first. A channel gets at most one
  background request every :data:`SPACING` seconds, at a phase of its own so that channels do not
  ask together, and only while its last hour holds fewer than :data:`BACKGROUND_PER_HOUR` requests
  (the count in the database that ``stats`` uses): an operator's ``stats`` always finds some of
  LINE's 60 left. A channel whose request fails rests for :data:`REST_AFTER_FAILURE`.
- **Reconciliation.** From 10:00 in Japan (UTC+9), once LINE has usually counted the day before,
  every authentication's yesterday is reconciled once; a ``not_ready`` answer, or no answer, is
  tried again at the next of :data:`RECONCILE_HOURS`. Results are kept (``reconcile.keep``),
  which is where the metrics read them; a mismatch is logged as a warning. A process remembers
  the tries it has claimed or found claimed, so the passes between two tries write nothing.

Every failure is one log line, never a traceback, and one channel's failure never stops the
others. Once an hour it also prunes the store: its own claims after a few days, the
webhook event ids kept for deduplication after 30 days (``followers.forget_old_event_ids``), and
the unit statistics no view shows any more (``statistics.forget_unshown``: a unit's earlier
default periods and, after a day, the periods asked for by hand).

The one rule: work that two processes could both start is first claimed with a unique row in
``background_claims``, and only the process whose row went in does it. So several processes on
one database reconcile a day once and share each channel's background requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from .. import authentications, followers
from ..context import Context
from ..line_time import JST, line_day
from ..store.database import Database
from . import reconcile, statistics

log = logging.getLogger(__name__)

#: Seconds between two passes.
TICK: Final = 30.0
#: Background requests a channel may make in an hour: 2/3 of LINE's 60, the rest is for people.
BACKGROUND_PER_HOUR: Final = statistics.REQUESTS_PER_HOUR * 2 // 3
#: Seconds between two background requests of one channel (the hour's share, evenly spread).
SPACING: Final = 3600.0 / BACKGROUND_PER_HOUR
#: Stored figures younger than this are left alone.
REFRESH_AFTER: Final = statistics.FRESH_FOR
RECENT_DAYS: Final = 15
#: After a failed request, a channel's background requests wait this long (seconds).
REST_AFTER_FAILURE: Final = 3600.0
#: Hours of the day (UTC+9) at which yesterday is reconciled: the first, then retries.
RECONCILE_HOURS: Final = (10, 13, 16, 19, 22)
#: Claims older than this are deleted (seconds).
CLAIMS_KEPT: Final = 3 * 86_400.0
PRUNE_EVERY: Final = 3600.0

_MISMATCH: Final = ("line_more", "line_fewer")


def claim(db: Database, what: str, by: str, now: float) -> bool:
    """Whether this process got ``what`` (a unique row); False when another process has it."""
    with db.transaction() as tx:
        return bool(tx.run("background_claim", {"claim": what, "claimed_by": by, "now": now}))


def phase(channel_key: str) -> float:
    """A channel's own offset within :data:`SPACING`, the same in every process."""
    digest = hashlib.blake2b(channel_key.encode(), digest_size=4).digest()
    return float(int.from_bytes(digest, "big") % int(SPACING))


def slot(channel_key: str, now: float) -> int:
    """The channel's current slot: one background request at most per slot."""
    return int((now + phase(channel_key)) // SPACING)


def reconcile_try(now: float) -> int | None:
    """Which of today's tries (UTC+9) it is time for: the index in :data:`RECONCILE_HOURS`, or None
    before the first."""
    hour = datetime.fromtimestamp(now, JST).hour
    passed = [i for i, h in enumerate(RECONCILE_HOURS) if h <= hour]
    return passed[-1] if passed else None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Pass:
    """What one pass did (for tests and logs)."""

    refreshed: list[str] = field(default_factory=list)  # activations whose figures LINE gave
    reconciled: list[reconcile.Reconciliation] = field(default_factory=list)
    webhook_ids_forgotten: int = 0  # webhook event ids older than dedup needs, deleted
    statistics_forgotten: int = 0  # stored figures no view shows any more, deleted


class Background:
    """The background work of one process; :meth:`run` until cancelled, :meth:`run_once` in tests."""

    def __init__(self, ctx: Context, *, name: str | None = None) -> None:
        self.ctx = ctx
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._seen_slots: dict[str, int] = {}
        # The reconciliation tries (authentication, day, try) this process has claimed or found
        # claimed: a pass that meets one again has nothing to do and writes nothing (on SQLite a
        # claim takes the one write lock, once per authentication and pass, for hours of not_ready).
        self._tried: set[tuple[str, date, int]] = set()
        self._resting_until: dict[str, float] = {}
        self._next_prune = 0.0

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the database away, say: one line, and the next pass tries again
                log.warning("background insight pass failed: %s", one_line(exc))
            await self.ctx.clock.sleep(TICK)

    async def run_once(self) -> Pass:
        now = self.ctx.clock.now()
        done = Pass(await self.refresh_statistics(now), await self.reconcile_yesterday(now))
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            await self._prune(done, now)
        return done

    async def _prune(self, done: Pass, now: float) -> None:
        db = self.ctx.db
        await asyncio.to_thread(db.run, "background_claims_prune", {"before": now - CLAIMS_KEPT})
        done.webhook_ids_forgotten = await asyncio.to_thread(followers.forget_old_event_ids, db, now=now)
        done.statistics_forgotten = await asyncio.to_thread(statistics.forget_unshown, db, now=now)

    # -- statistics ------------------------------------------------------------------------------

    async def refresh_statistics(self, now: float) -> list[str]:
        """At most one request per channel whose slot has come: its stalest recent unit."""
        since = now - RECENT_DAYS * 86_400.0
        rows = await asyncio.to_thread(self.ctx.db.run, "units_recently_used", {"since": since})
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_channel.setdefault(row["channel_key"], []).append(row)
        refreshed = []
        for channel_key, units in by_channel.items():
            current = slot(channel_key, now)
            if self._seen_slots.get(channel_key) == current or self._resting_until.get(channel_key, 0.0) > now:
                continue
            self._seen_slots[channel_key] = current
            try:
                name = await self._refresh_channel(channel_key, units, current, now)
            except Exception as exc:  # one channel's trouble never stops the others
                self._rest(channel_key, now, f"statistics of channel {channel_key} not refreshed: {one_line(exc)}")
                continue
            if name is not None:
                refreshed.append(name)
        return refreshed

    async def _refresh_channel(
        self, channel_key: str, units: Sequence[dict[str, Any]], at: int, now: float
    ) -> str | None:
        stalest = await asyncio.to_thread(_stalest, self.ctx.db, units, now)
        if stalest is None:
            return None
        if not await asyncio.to_thread(claim, self.ctx.db, f"stats:{channel_key}:{at}", self.name, now):
            return None  # another process has this slot of the channel
        result = await statistics.statistics(self.ctx, stalest, budget=BACKGROUND_PER_HOUR, fresh_for=REFRESH_AFTER)
        if result.failed:
            self._rest(channel_key, now, f"statistics of {result.activation} not refreshed: {result.note}")
        return result.activation if result.asked_line else None

    def _rest(self, channel_key: str, now: float, message: str) -> None:
        self._resting_until[channel_key] = now + REST_AFTER_FAILURE
        log.warning("%s (its channel's background requests rest for %d min)", message, REST_AFTER_FAILURE // 60)

    # -- reconciliation --------------------------------------------------------------------------

    async def reconcile_yesterday(self, now: float) -> list[reconcile.Reconciliation]:
        """Yesterday (UTC+9) for every authentication not reconciled yet, once per try of the day."""
        tried = reconcile_try(now)
        if tried is None:
            return []
        day = line_day(now) - timedelta(days=1)
        self._tried = {t for t in self._tried if t[1] == day}
        results = []
        for auth in await asyncio.to_thread(authentications.list_all, self.ctx.db):
            try:
                result = await self._reconcile(auth.name, day, tried, now)
            except Exception as exc:  # LINE down, the token refused: the next try of the day asks again
                log.warning("reconciliation of %s on %s (UTC+9) failed: %s", auth.name, day, one_line(exc))
                continue
            if result is not None:
                results.append(result)
        return results

    async def _reconcile(self, name: str, day: date, tried: int, now: float) -> reconcile.Reconciliation | None:
        if (name, day, tried) in self._tried:
            return None  # this try was ours, or another process's: the next one is at a later hour
        kept = await asyncio.to_thread(reconcile.stored, self.ctx.db, name, day)
        if kept is not None and kept.verdict != "not_ready":
            return None  # done, by us or by hand
        got = await asyncio.to_thread(claim, self.ctx.db, f"reconcile:{name}:{day}:{tried}", self.name, now)
        self._tried.add((name, day, tried))
        if not got:
            return None
        result = await reconcile.reconcile(self.ctx, name, day.isoformat())
        if result.verdict in _MISMATCH:
            log.warning(
                "reconciliation of %s on %s (UTC+9): %s: LINE counted %s pushes, we recorded %d as accepted",
                name, day, result.says, result.line_count, result.our_count,
            )  # fmt: skip
        elif result.verdict == "not_ready" and tried + 1 < len(RECONCILE_HOURS):
            log.info("reconciliation of %s on %s: LINE has not counted it yet; again at %d:00 JST",
                     name, day, RECONCILE_HOURS[tried + 1])  # fmt: skip
        return result


def _stalest(db: Database, units: Sequence[dict[str, Any]], now: float) -> str | None:
    """The activation whose default figures are oldest (never fetched first), if any is due."""
    best: tuple[float, str] | None = None
    for row in units:
        period = statistics.period_of(None, None, created_at=row["created_at"], now=now)
        kept = statistics.stored(db, row["channel_key"], row["unit"], period)
        fetched_at = kept[1] if kept is not None else float("-inf")
        if now - fetched_at >= REFRESH_AFTER and (best is None or fetched_at < best[0]):
            best = (fetched_at, row["activation"])
    return best[1] if best is not None else None
