"""Frequency cap and quiet hours: parsing errors and the decisions at their exact edges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lineoa_export.audience import (
    AudienceSettingError,
    FrequencyCap,
    frequency_cap_decision,
    parse_frequency_cap,
    parse_quiet_hours,
    parse_time_zone,
    quiet_hours_decision,
    recipient_zone,
)

TOKYO = parse_time_zone("Asia/Tokyo")
NEW_YORK = parse_time_zone("America/New_York")


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "limit", "seconds"),
    [("1/24h", 1, 86400), ("3/7d", 3, 7 * 86400), ("10/30m", 10, 1800)],
)
def test_caps_parse(text: str, limit: int, seconds: int) -> None:
    assert parse_frequency_cap(text) == FrequencyCap(limit, seconds)


@pytest.mark.parametrize("text", ["0/24h", "1/0h", "1/24", "24h", "1/24w", "-1/2d", "1/2d extra"])
def test_bad_caps_name_the_field(text: str) -> None:
    with pytest.raises(AudienceSettingError, match=f'^frequency_cap: "{text}" is not N/PERIOD'):
        parse_frequency_cap(text)


def test_bad_quiet_hours_message() -> None:
    with pytest.raises(AudienceSettingError) as caught:
        parse_quiet_hours("25:00-08:00")
    assert str(caught.value) == 'quiet_hours: "25:00-08:00" is not HH:MM-HH:MM'


def test_empty_quiet_window_refused() -> None:
    with pytest.raises(AudienceSettingError, match="same time"):
        parse_quiet_hours("08:00-08:00")


@pytest.mark.parametrize("name", ["Asia/Tokio", "", "../etc/passwd", "/usr/share/zoneinfo/UTC"])
def test_unknown_zone_message(name: str) -> None:
    with pytest.raises(AudienceSettingError) as caught:
        parse_time_zone(name)
    assert str(caught.value) == f'time_zone: unknown zone "{name}"'


def test_recipient_zone_falls_back_to_activation_zone() -> None:
    assert recipient_zone("America/New_York", TOKYO) is NEW_YORK
    assert recipient_zone("Mars/Olympus", TOKYO) is TOKYO
    assert recipient_zone(None, TOKYO) is TOKYO


NIGHT = parse_quiet_hours("22:00-08:00")


def test_outside_quiet_hours_sends_now() -> None:
    # 07:59:59 UTC = 16:59:59 Tokyo.
    assert quiet_hours_decision(utc(2026, 5, 1, 7, 59, 59), NIGHT, TOKYO).action == "send"


def test_quiet_starts_at_its_first_minute_and_ends_at_its_end() -> None:
    start = utc(2026, 5, 1, 13, 0)  # 22:00 Tokyo
    assert quiet_hours_decision(start - 1, NIGHT, TOKYO).action == "send"
    decision = quiet_hours_decision(start, NIGHT, TOKYO)
    assert decision.action == "defer"
    assert decision.until == utc(2026, 5, 1, 23, 0)  # 08:00 Tokyo next day
    end = utc(2026, 5, 1, 23, 0)
    assert quiet_hours_decision(end - 1, NIGHT, TOKYO).until == end
    assert quiet_hours_decision(end, NIGHT, TOKYO).action == "send"


def test_after_midnight_defers_to_the_same_morning() -> None:
    three_am = utc(2026, 5, 1, 18, 0)  # 03:00 Tokyo on May 2
    assert quiet_hours_decision(three_am, NIGHT, TOKYO).until == utc(2026, 5, 1, 23, 0)


def test_window_inside_one_day() -> None:
    lunch = parse_quiet_hours("12:00-13:30")
    decision = quiet_hours_decision(utc(2026, 5, 1, 3, 15), lunch, TOKYO)  # 12:15 Tokyo
    assert decision.until == utc(2026, 5, 1, 4, 30)
    assert quiet_hours_decision(utc(2026, 5, 1, 4, 30), lunch, TOKYO).action == "send"


def test_dst_night_ends_at_local_eight() -> None:
    # New York springs forward on 2026-03-08: 08:00 is 12:00 UTC that morning, 13:00 UTC the day before.
    assert quiet_hours_decision(utc(2026, 3, 7, 4, 0), NIGHT, NEW_YORK).until == utc(2026, 3, 7, 13)
    assert quiet_hours_decision(utc(2026, 3, 8, 4, 0), NIGHT, NEW_YORK).until == utc(2026, 3, 8, 12)


def test_same_instant_differs_by_recipient_zone() -> None:
    instant = utc(2026, 5, 1, 14, 0)  # 23:00 Tokyo, 10:00 New York
    assert quiet_hours_decision(instant, NIGHT, TOKYO).action == "defer"
    assert quiet_hours_decision(instant, NIGHT, NEW_YORK).action == "send"


DAY = 86400
CAP = parse_frequency_cap("2/24h")


def test_under_the_cap_sends() -> None:
    assert frequency_cap_decision(1000.0 * DAY, [1000.0 * DAY - 10], CAP).action == "send"


def test_cap_reached_suppresses_with_reason() -> None:
    now = 1000.0 * DAY
    decision = frequency_cap_decision(now, [now - 100, now - 50], CAP)
    assert (decision.action, decision.reason) == ("suppress", "frequency cap 2/24h reached")


def test_push_exactly_one_period_ago_no_longer_counts() -> None:
    now = 1000.0 * DAY
    assert frequency_cap_decision(now, [now - DAY, now - 50], CAP).action == "send"
    assert frequency_cap_decision(now, [now - DAY + 1, now - 50], CAP).action == "suppress"


def test_defer_until_the_oldest_counted_push_falls_out() -> None:
    now = 1000.0 * DAY
    pushes = [now - 3 * DAY, now - 5000, now - 100]
    decision = frequency_cap_decision(now, pushes, CAP, over_cap="defer")
    assert decision.action == "defer"
    assert decision.until == now - 5000 + DAY
    assert frequency_cap_decision(decision.until, pushes, CAP).action == "send"
