"""The console's SVG charts (web/console/charts.py): round ticks, bars at the right heights, labels,
empty states, and every text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from lineoa_export.web.console import charts
from lineoa_export.web.console.charts import Series

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    """The chart as XML: it must be well formed (a browser would otherwise show nothing)."""
    return ET.fromstring(str(markup))


def bars(svg: ET.Element, series: str | None = None) -> list[ET.Element]:
    return [
        r
        for r in svg.iter(f"{SVG}rect")
        if r.get("class") == "bar" and (series is None or r.get("data-series") == series)
    ]


def texts(svg: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == cls]


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (0, [0, 1]),
        (1, [0, 0.25, 0.5, 0.75, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 2.5, 5, 7.5, 10]),
        (95, [0, 25, 50, 75, 100]),
        (1234, [0, 500, 1000, 1500]),
        (0.037, [0, 0.01, 0.02, 0.03, 0.04]),
    ],
)
def test_ticks_are_round_and_reach_the_top(top: float, expected: list[float]) -> None:
    assert charts.ticks(top) == expected


def test_numbers_and_durations_read_as_people_write_them() -> None:
    assert [charts.number(v) for v in (0, 2.5, 1500, 0.05, 12.25)] == ["0", "2.5", "1,500", "0.05", "12.2"]
    assert [charts.seconds(v) for v in (0.012, 1.5, 90, 7200)] == ["12 ms", "1.5 s", "1.5 min", "2 h"]


def test_stacked_bars_scale_to_the_tallest_stack_and_skip_empty_parts() -> None:
    labels = ["12:00", "12:01", "12:02", "12:03"]
    svg = parse(
        charts.stacked_bars(
            "Pushes per minute",
            labels,
            [Series("delivered", [4, 0, 2, 0], "#06C755"), Series("failed", [4, 0, 0, 1], "#D55E00")],
            y_title="pushes",
            x_title="minute (UTC)",
            empty="No pushes",
            every=2,
        )
    )
    assert len(bars(svg, "delivered")) == 2 and len(bars(svg, "failed")) == 2
    assert texts(svg, "tick")[:5] == ["0", "2", "4", "6", "8"]  # y ticks: the tallest stack is 8
    assert texts(svg, "tick")[5:] == ["12:00", "12:02", "12:03"]  # every 2nd label, and the last
    assert texts(svg, "axis-title") == ["pushes", "minute (UTC)"]
    first_delivered, first_failed = bars(svg, "delivered")[0], bars(svg, "failed")[0]
    # the stack of 8 fills the plot: both halves are as high, the failed part sits on the delivered one
    assert float(first_delivered.get("height", 0)) == pytest.approx(float(first_failed.get("height", 0)))
    assert float(first_failed.get("y", 0)) + float(first_failed.get("height", 0)) == pytest.approx(
        float(first_delivered.get("y", 0)), abs=0.11
    )
    tips = [t.text for t in svg.iter(f"{SVG}title")]
    assert "12:00: 4 delivered" in tips and "12:03: 1 failed" in tips
    legend = [t.text for g in svg.iter(f"{SVG}g") if g.get("class") == "legend" for t in g.iter(f"{SVG}text")]
    assert legend == ["delivered 6", "failed 5"]
    assert svg.get("role") == "img" and svg.get("aria-label") == "Pushes per minute"


def test_an_empty_chart_says_so_and_keeps_its_axes() -> None:
    svg = parse(
        charts.stacked_bars(
            "Pushes", ["a", "b"], [Series("delivered", [0, 0], "#06C755")], y_title="y", x_title="x", empty="Nothing"
        )
    )
    assert bars(svg) == [] and texts(svg, "empty") == ["Nothing"]
    assert texts(svg, "tick")[:2] == ["0", "1"]
    line = parse(
        charts.lines(
            "Latency",
            ["a", "b"],
            [Series("average", [None, None], "#0072B2")],
            y_title="s",
            x_title="x",
            empty="No delivered push",
        )
    )
    assert texts(line, "empty") == ["No delivered push"] and list(line.iter(f"{SVG}polyline")) == []
    h = parse(charts.hbars("Reasons", [], x_title="pushes", empty="No retry"))
    assert texts(h, "empty") == ["No retry"] and bars(h) == []


def test_lines_break_at_missing_values_and_mark_every_value() -> None:
    svg = parse(
        charts.lines(
            "Latency",
            ["a", "b", "c", "d", "e"],
            [Series("average", [0.01, 0.02, None, 0.03, 0.04], "#0072B2")],
            y_title="seconds",
            x_title="minute",
            empty="none",
            fmt=charts.seconds,
        )
    )
    polylines = list(svg.iter(f"{SVG}polyline"))
    assert [len((p.get("points") or "").split()) for p in polylines] == [2, 2]  # a–b, then d–e
    assert len([c for c in svg.iter(f"{SVG}circle") if c.get("class") == "point"]) == 4
    assert texts(svg, "tick")[:5] == ["0 ms", "10 ms", "20 ms", "30 ms", "40 ms"]
    legend = [t.text for g in svg.iter(f"{SVG}g") if g.get("class") == "legend" for t in g.iter(f"{SVG}text")]
    assert legend == ["average"]  # no total: a sum of averages means nothing


def test_hbars_are_as_long_as_their_values_and_write_them() -> None:
    svg = parse(
        charts.hbars("Reasons", [("429", 30, "#0072B2"), ("timeout", 15, "#0072B2")], x_title="pushes", empty="-")
    )
    long, short = bars(svg)
    assert float(long.get("width", 0)) == pytest.approx(2 * float(short.get("width", 0)))
    assert texts(svg, "label") == ["429", "timeout"] and texts(svg, "value") == ["30", "15"]


def test_meter_fills_its_share_and_turns_vermillion_near_the_end() -> None:
    calm = parse(charts.meter("Quota", 250, 1000, says="250 used of 1,000"))
    full = parse(charts.meter("Quota", 950, 1000, says="950 used of 1,000"))
    track = next(r for r in calm.iter(f"{SVG}rect") if r.get("class") == "track")
    [used] = bars(calm)
    assert float(used.get("width", 0)) == pytest.approx(float(track.get("width", 0)) / 4, abs=0.1)
    assert used.get("fill") == charts.COLOURS["delivered"] and bars(full)[0].get("fill") == charts.COLOURS["failed"]
    assert texts(calm, "tick") == ["0", "500", "1,000"]
    assert bars(parse(charts.meter("Quota", 5, 0, says="no limit")))[0].get("width") == "0.0"


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script> & "quotes"'
    outputs = [
        charts.stacked_bars(evil, [evil], [Series(evil, [1], "#06C755")], y_title=evil, x_title=evil, empty=evil),
        charts.lines(evil, [evil], [Series(evil, [1.0], "#0072B2")], y_title=evil, x_title=evil, empty=evil),
        charts.hbars(evil, [(evil, 1, "#0072B2")], x_title=evil, empty=evil),
        charts.meter(evil, 1, 2, says=evil),
    ]
    for markup in outputs:
        assert "<script>" not in str(markup) and not re.search(r'="[^"]*"quotes', str(markup))
        svg = parse(markup)  # still well-formed XML
        assert any(evil == t.text for t in svg.iter(f"{SVG}title"))  # the text survives, as text
