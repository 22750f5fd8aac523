"""A channel's monthly message quota as LINE tells it: the limit (``GET /v2/bot/message/quota``)
and what this month used (``GET /v2/bot/message/quota/consumption``), for the console's overview.

LINE is asked through the channel's own credentials, at most once every :data:`ASK_EVERY`
seconds per channel in this process; in between, and while a question is on its way, the last
answer is shown with the time it was asked. An answer that did not come (LINE refused, the
credentials cannot be opened) is kept just as long, with the reason, so a page that refreshes
itself never turns into a stream of requests to LINE.

The one rule: a question is reserved (its time noted) *before* it is sent, under the lock, so
two requests at once ask LINE once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from .. import authentications
from ..context import Context
from ..delivery.outcomes import success_json
from ..errors import LineoaExportError
from .line import reason, session

ASK_EVERY: Final = 60.0  # seconds between two questions to LINE about one channel's quota


@dataclass(frozen=True, slots=True)
class Quota:
    """LINE's answer: ``limit`` None with ``limited`` False is "no monthly limit"."""

    limited: bool
    limit: int | None
    used: int | None
    asked_at: float
    note: str | None = None  # why LINE's figures are missing

    @property
    def left(self) -> int | None:
        if not self.limited or self.limit is None or self.used is None:
            return None
        return max(0, self.limit - self.used)

    @property
    def known(self) -> bool:
        return self.note is None

    def public(self) -> dict[str, Any]:
        return {
            "limited": self.limited,
            "limit": self.limit,
            "used": self.used,
            "left": self.left,
            "asked_at": self.asked_at,
            "note": self.note,
        }


class Quotas:
    """The last answer per channel, and when LINE was last asked (this process only)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._known: dict[str, Quota] = {}
        self._asked: dict[str, float] = {}

    async def of(self, auth: authentications.Authentication) -> Quota | None:
        """The channel's quota: asked now when the last question is a minute old, else the last
        answer (None while the first question is still on its way)."""
        key = auth.channel_key
        now = self._ctx.clock.now()
        with self._lock:
            asked = self._asked.get(key)
            if asked is not None and now - asked < ASK_EVERY:
                return self._known.get(key)
            self._asked[key] = now
        quota = await _ask(self._ctx, auth, now)
        with self._lock:
            self._known[key] = quota
        return quota


async def _ask(ctx: Context, auth: authentications.Authentication, now: float) -> Quota:
    try:
        async with session(ctx, auth) as line:
            limit_answer = await line.client.quota(line.token)
            limit = success_json(limit_answer)
            if limit is None:
                return Quota(False, None, None, now, f"LINE did not tell the quota: {reason(limit_answer)}")
            used_answer = await line.client.quota_consumption(line.token)
    except LineoaExportError as exc:
        return Quota(False, None, None, now, f"LINE could not be asked: {exc}")
    used = success_json(used_answer)
    total = used.get("totalUsage") if used else None
    limited = limit.get("type") == "limited"
    value = limit.get("value")
    return Quota(
        limited,
        value if limited and isinstance(value, int) else None,
        total if isinstance(total, int) else None,
        now,
        None if isinstance(total, int) else f"LINE did not tell this month's use: {reason(used_answer)}",
    )
