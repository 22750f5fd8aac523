"""LINE's calendar: days and months in UTC+9, the time zone of every date LINE's statistics take.

LINE counts pushes per day, aggregation units per calendar month and statistics between two
dates, all in Japan time (UTC+9, no daylight saving). A push at 23:59:59 JST and one a second
later fall on different days: never take these days from UTC.

The one rule: a day or month LINE sees is computed here, from POSIX seconds, and nowhere else.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")
#: The first day LINE counted delivered messages (earlier dates answer ``out_of_service``).
FIRST_COUNTED_DAY = date(2018, 3, 31)


def line_day(posix_seconds: float) -> date:
    """The day (UTC+9) a moment falls on."""
    return datetime.fromtimestamp(posix_seconds, JST).date()


def line_month(posix_seconds: float) -> str:
    """The calendar month (UTC+9) of a moment, as ``YYYY-MM``: aggregation units count per month."""
    return datetime.fromtimestamp(posix_seconds, JST).strftime("%Y-%m")


def day_bounds(day: date) -> tuple[float, float]:
    """POSIX seconds of the start of ``day`` (UTC+9) and of the next day's start."""
    start = datetime(day.year, day.month, day.day, tzinfo=JST).timestamp()
    return start, start + 86_400.0


def compact(day: date) -> str:
    """``yyyyMMdd``, the form LINE's ``date``, ``from`` and ``to`` parameters take."""
    return day.strftime("%Y%m%d")


def parse_compact(text: str) -> date | None:
    """A ``yyyyMMdd`` date, or None when ``text`` is not one (eight digits naming a real day)."""
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def parse_iso_day(text: str) -> date | None:
    """A ``YYYY-MM-DD`` date (what users type), or None."""
    if len(text) != 10 or not text.isascii():
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
