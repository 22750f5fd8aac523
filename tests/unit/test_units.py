"""delivery/units.py without LINE: the month a push belongs to (UTC+9), and the body sent for a
decided unit (as stored, or without its unit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from lineoa_export.delivery.units import UnitBudget, without_unit
from lineoa_export.line_time import JST

BODY = orjson.dumps(
    {"to": "U" + "a" * 32, "messages": [{"type": "text", "text": "hi"}], "customAggregationUnits": ["u"]}
)


def jst(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JST).timestamp()


async def _unused(*args: Any) -> Any:
    raise AssertionError("no database in this test")


def budget() -> UnitBudget:
    return UnitBudget(None, _unused, lambda: 0.0)  # type: ignore[arg-type]


def test_the_month_of_a_push_turns_at_midnight_japan_time() -> None:
    b = budget()
    assert b._month(jst("2027-01-31 23:59:59")) == "2027-01"
    assert b._month(jst("2027-02-01 00:00:00")) == "2027-02"
    assert b._month(jst("2027-01-01 00:00:00")) == "2027-01"
    assert b._month(jst("2026-12-31 23:59:59")) == "2026-12"
    assert b._month(jst("2027-12-31 15:00:00")) == "2027-12"


def test_a_decided_unit_gives_the_body_as_stored_or_without_the_unit() -> None:
    b = budget()
    at = jst("2027-01-15 12:00:00")
    assert b.known_body("ch", "u", BODY, at) is None  # not decided yet: LINE must be asked
    b._known[("ch", "2027-01", "u")] = True
    assert b.known_body("ch", "u", BODY, at) is BODY
    b._known[("ch", "2027-01", "u")] = False
    sent = b.known_body("ch", "u", BODY, at)
    assert sent == without_unit(BODY)
    assert "customAggregationUnits" not in orjson.loads(sent or b"{}")
    assert b.withheld == 1
    assert b.known_body("ch", "u", BODY, jst("2027-02-01 00:00:00")) is None  # a new month
