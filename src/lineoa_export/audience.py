"""Audience care rules for one activation: frequency cap and quiet hours.

Owns parsing of ``N/PERIOD`` caps, ``HH:MM-HH:MM`` quiet windows and IANA zone names, and
the pure decisions made from them. Its one rule: decisions are pure functions of times
(POSIX seconds) and settings, so the worker can replay them and tests need no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_ZONE = "Asia/Tokyo"

_UNITS = {"m": 60, "h": 3600, "d": 86400}
_CAP = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,4})([mhd])")
_WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


class AudienceSettingError(ValueError):
    """A cap, quiet window or zone that cannot be used; the message names the field."""


@dataclass(frozen=True)
class FrequencyCap:
    limit: int
    period_seconds: int
    text: str = field(default="", compare=False)  # as the user wrote it, for reasons


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time


@dataclass(frozen=True)
class Decision:
    """``send`` / ``suppress`` / ``defer``; ``until`` is set for ``defer``."""

    action: str
    until: float | None = None
    reason: str = ""


SEND = Decision("send")


def parse_frequency_cap(text: str) -> FrequencyCap:
    match = _CAP.fullmatch(text.strip())
    if match is None:
        raise AudienceSettingError(f'frequency_cap: "{text}" is not N/PERIOD (e.g. 1/24h, 3/7d, 10/30m)')
    count, amount, unit = match.groups()
    return FrequencyCap(int(count), int(amount) * _UNITS[unit], f"{count}/{amount}{unit}")


def parse_quiet_hours(text: str) -> QuietHours:
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise AudienceSettingError(f'quiet_hours: "{text}" is not HH:MM-HH:MM')
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if (h1, m1) == (h2, m2):
        raise AudienceSettingError(f'quiet_hours: "{text}" starts and ends at the same time')
    return QuietHours(time(h1, m1), time(h2, m2))


def parse_time_zone(name: str, field: str = "time_zone") -> ZoneInfo:
    # ZoneInfo also accepts relative file paths; only plain IANA names are settings.
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise AudienceSettingError(f'{field}: unknown zone "{name}"')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AudienceSettingError(f'{field}: unknown zone "{name}"') from None


def recipient_zone(attribute_value: object, fallback: ZoneInfo) -> ZoneInfo:
    """The recipient's own zone when the event carries a usable one, else the activation's."""
    if isinstance(attribute_value, str):
        try:
            return parse_time_zone(attribute_value)
        except AudienceSettingError:
            pass
    return fallback


def quiet_hours_decision(now: float, window: QuietHours, zone: ZoneInfo) -> Decision:
    """Send now, or defer until the window's end (as a wall time in ``zone``)."""
    local = datetime.fromtimestamp(now, zone)
    clock = local.time().replace(tzinfo=None)
    start, end = window.start, window.end
    wraps = start > end
    inside = (clock >= start or clock < end) if wraps else (start <= clock < end)
    if not inside:
        return SEND
    end_day = local.date()
    if wraps and clock >= start:
        end_day += timedelta(days=1)
    until = _wall_time(end_day, end, zone)
    return Decision("defer", until, f"quiet hours {_hhmm(start)}-{_hhmm(end)} {zone.key}")


def _wall_time(day: date, at: time, zone: ZoneInfo) -> float:
    # A wall time skipped by a DST jump is read with the pre-jump offset (fold=0), which
    # lands after the gap: quiet hours end late, never early.
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=zone).astimezone(UTC)
    return aware.timestamp()


def frequency_cap_decision(
    now: float, recent_pushes: list[float], cap: FrequencyCap, over_cap: str = "suppress"
) -> Decision:
    """At most ``cap.limit`` pushes in any rolling period ending now (pushes at now-period fall out)."""
    window_start = now - cap.period_seconds
    inside = sorted(t for t in recent_pushes if window_start < t <= now)
    if len(inside) < cap.limit:
        return SEND
    reason = f"frequency cap {cap.text or _period(cap)} reached"
    if over_cap != "defer":
        return Decision("suppress", None, reason)
    # The window allows one more once the oldest push counted against the limit falls out.
    oldest_blocking = inside[len(inside) - cap.limit]
    return Decision("defer", oldest_blocking + cap.period_seconds, reason)


def _hhmm(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def _period(cap: FrequencyCap) -> str:
    return f"{cap.limit}/{cap.period_seconds}s"
