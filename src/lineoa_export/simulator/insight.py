"""What LINE tells afterwards, derived from what the simulator accepted (LINE-FACTS, "Engagement
and counts"): units used this month, their names, per-unit statistics and pushes per day.

Nobody opens a simulated chat, so engagement is drawn: each accepted push is opened, clicked
and played with the probabilities of :class:`~lineoa_export.simulator.options.EngagementConfig`,
by a hash of its request id, so the same pushes always give the same figures. As LINE does,
every figure under :data:`PRIVACY_THRESHOLD` is ``null`` (never 0), days are UTC+9 days, and
today's push count is ``unready``.

The one rule: these functions only read the record; nothing here runs on the push path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import orjson

from lineoa_export.line_time import FIRST_COUNTED_DAY, compact, day_bounds, line_day, parse_compact
from lineoa_export.simulator.options import EngagementConfig
from lineoa_export.simulator.record import AcceptedPush, Record

PRIVACY_THRESHOLD: Final = 20
#: LINE's distinct units per channel per calendar month; past it, units are dropped silently.
MONTHLY_UNITS: Final = 1000
MAX_PERIOD_DAYS: Final = 30
LIST_LIMIT_MAX: Final = 100
_MEDIA_TYPES: Final = frozenset({"video", "audio"})
_MEDIA_STEPS: Final = (("25Percent", 0.25), ("50Percent", 0.5), ("75Percent", 0.75), ("100Percent", 0.9))


class BadQuery(Exception):
    """A query parameter LINE would refuse (400); ``parameter`` names it."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


def shown(value: int) -> int | None:
    """A figure as LINE shows it: ``None`` under the privacy threshold."""
    return value if value >= PRIVACY_THRESHOLD else None


def _draw(request_id: str, what: str) -> float:
    """A stable number in [0, 1) for one push and one kind of engagement."""
    digest = hashlib.blake2b(f"{what}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# -- units used this month ---------------------------------------------------------------------


def unit_names(record: Record, channel_id: str, month: str, prior: int) -> list[str]:
    """This month's unit names on a channel: ``prior`` ones used before the simulator started, then ours."""
    earlier = [f"prior_unit_{i:04d}" for i in range(prior)]
    return earlier + list(record.units_in_month(channel_id, month))


def unit_page(names: list[str], limit_text: str | None, start_text: str | None) -> dict[str, Any]:
    """One page of ``GET /v2/bot/message/aggregation/list`` (``next`` only when more remain)."""
    limit = LIST_LIMIT_MAX
    if limit_text is not None:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= LIST_LIMIT_MAX:
            raise BadQuery("limit", f"must be a number from 1 to {LIST_LIMIT_MAX}")
        limit = int(limit_text)
    start = 0
    if start_text is not None:
        if not start_text.isdigit() or int(start_text) > len(names):
            raise BadQuery("start", "is not a continuation token this endpoint gave")
        start = int(start_text)
    page: dict[str, Any] = {"customAggregationUnits": names[start : start + limit]}
    if start + limit < len(names):
        page["next"] = str(start + limit)
    return page


# -- pushes per day ----------------------------------------------------------------------------


def push_count(record: Record, channel_id: str, date_text: str | None, now: float) -> dict[str, Any]:
    """``GET /v2/bot/message/delivery/push?date=yyyyMMdd``: pushes accepted that UTC+9 day."""
    day = parse_compact(date_text or "")
    if day is None:
        raise BadQuery("date", "must be a date as yyyyMMdd (UTC+9)")
    if day < FIRST_COUNTED_DAY:
        return {"status": "out_of_service"}
    if day >= line_day(now):
        return {"status": "unready"}  # LINE counts a day once it is over
    start, end = day_bounds(day)
    count = sum(1 for p in record.accepted if p.channel_id == channel_id and start <= p.wall < end)
    if count < PRIVACY_THRESHOLD:
        return {"status": "unavailable_for_privacy"}
    return {"status": "ready", "success": count}


# -- statistics per unit -----------------------------------------------------------------------


def statistics_period(unit: str | None, from_text: str | None, to_text: str | None) -> tuple[str, date, date]:
    """The checked parameters of the statistics endpoint, or :class:`BadQuery` naming the first bad one."""
    if unit is None or not 1 <= len(unit) <= 30 or not all(c.isascii() and (c.isalnum() or c == "_") for c in unit):
        raise BadQuery("customAggregationUnit", "must be 1 to 30 letters, digits or underscores")
    first = parse_compact(from_text or "")
    if first is None:
        raise BadQuery("from", "must be a date as yyyyMMdd (UTC+9)")
    last = parse_compact(to_text or "")
    if last is None:
        raise BadQuery("to", "must be a date as yyyyMMdd (UTC+9)")
    if last < first:
        raise BadQuery("to", "must not be before from")
    if last > first + timedelta(days=MAX_PERIOD_DAYS):
        raise BadQuery("to", f"must be at most {MAX_PERIOD_DAYS} days after from ({compact(first)})")
    return unit, first, last


@dataclass
class _Bubble:
    """Engagement tallies of one message position (``seq``) across the unit's pushes."""

    impressions: int = 0
    viewers: set[str] = field(default_factory=set)
    media: bool = False
    played: dict[str, int] = field(default_factory=dict)
    players: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class _Tally:
    viewers: set[str] = field(default_factory=set)
    clickers: set[str] = field(default_factory=set)
    players: set[str] = field(default_factory=set)
    finishers: set[str] = field(default_factory=set)
    bubbles: dict[int, _Bubble] = field(default_factory=dict)
    #: (seq, url) → clicks, and the users who clicked it there.
    clicks: dict[tuple[int, str], list[Any]] = field(default_factory=dict)
    #: url → users who clicked it in any bubble.
    url_clickers: dict[str, set[str]] = field(default_factory=dict)


def statistics(
    record: Record, channel_id: str, unit: str, first: date, last: date, engagement: EngagementConfig
) -> dict[str, Any]:
    """``GET /v2/bot/insight/message/event/aggregation``, from the pushes that carried ``unit``."""
    start, _ = day_bounds(first)
    _, end = day_bounds(last)
    tally = _Tally()
    for push in record.accepted:
        if push.channel_id == channel_id and push.aggregation_unit == unit and start <= push.wall < end:
            _count_push(tally, push, engagement)
    return {
        "overview": {
            "uniqueImpression": shown(len(tally.viewers)),
            "uniqueClick": shown(len(tally.clickers)),
            "uniqueMediaPlayed": shown(len(tally.players)),
            "uniqueMediaPlayed100Percent": shown(len(tally.finishers)),
        },
        "messages": [_bubble_json(seq, tally.bubbles[seq]) for seq in sorted(tally.bubbles)],
        "clicks": [
            {
                "seq": seq,
                "url": url,
                "click": shown(count),
                "uniqueClick": shown(len(users)),
                "uniqueClickOfRequest": shown(len(tally.url_clickers[url])),
            }
            for (seq, url), (count, users) in sorted(tally.clicks.items())
        ],
    }


def _count_push(tally: _Tally, push: AcceptedPush, engagement: EngagementConfig) -> None:
    rid, user = push.request_id, push.to
    if _draw(rid, "open") >= engagement.open_rate:
        return
    tally.viewers.add(user)
    messages = orjson.loads(push.body).get("messages", [])
    for seq, message in enumerate(messages, start=1):
        bubble = tally.bubbles.setdefault(seq, _Bubble())
        bubble.impressions += 1
        bubble.viewers.add(user)
        if message.get("type") in _MEDIA_TYPES:
            bubble.media = True
            if _draw(f"{rid}:{seq}", "play") < engagement.media_play_rate:
                _count_play(tally, bubble, user, _draw(f"{rid}:{seq}", "watched"))
        for url in _urls(message):
            if _draw(f"{rid}:{seq}:{url}", "click") < engagement.click_rate:
                entry = tally.clicks.setdefault((seq, url), [0, set()])
                entry[0] += 1
                entry[1].add(user)
                tally.url_clickers.setdefault(url, set()).add(user)
                tally.clickers.add(user)


def _count_play(tally: _Tally, bubble: _Bubble, user: str, watched: float) -> None:
    tally.players.add(user)
    steps = [("", 0.0), *_MEDIA_STEPS]
    for suffix, share in steps:
        if watched >= share:
            bubble.played[suffix] = bubble.played.get(suffix, 0) + 1
            bubble.players.setdefault(suffix, set()).add(user)
    if watched >= _MEDIA_STEPS[-1][1]:
        tally.finishers.add(user)


def _bubble_json(seq: int, bubble: _Bubble) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": seq, "impression": shown(bubble.impressions)}
    for suffix in ("", *(s for s, _ in _MEDIA_STEPS)):
        out[f"mediaPlayed{suffix}"] = shown(bubble.played.get(suffix, 0)) if bubble.media else None
    out["uniqueImpression"] = shown(len(bubble.viewers))
    for suffix in ("", *(s for s, _ in _MEDIA_STEPS)):
        players = bubble.players.get(suffix, set())
        out[f"uniqueMediaPlayed{suffix}"] = shown(len(players)) if bubble.media else None
    return out


def _urls(value: Any) -> Iterator[str]:
    """The URLs a message links to (``uri`` actions, imagemap links), each once, in order."""
    seen: set[str] = set()
    for url in _walk_urls(value):
        if url not in seen:
            seen.add(url)
            yield url


def _walk_urls(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get("type") == "uri":
            for key in ("uri", "linkUri"):
                if isinstance(value.get(key), str):
                    yield value[key]
        for item in value.values():
            yield from _walk_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_urls(item)
