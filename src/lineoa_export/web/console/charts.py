"""Charts drawn on the server: small SVG pictures the console puts inline in its pages.

Four shapes, enough for the overview: :func:`stacked_bars` (a time series of stacked counts),
:func:`lines` (a time series of values, with gaps), :func:`hbars` (a few labelled quantities)
and :func:`meter` (a part of a whole). Each has a title, axes with round ticks (:func:`ticks`),
labels, a legend with the totals, a ``<title>`` tooltip on every mark, and an empty state that
says so instead of an empty frame. Every mark carries ``data-series`` (and bars ``class="bar"``)
so tests and people can find them.

Colours: LINE green for what was delivered, the rest from Okabe and Ito's palette, which people
with any common colour-vision deficiency can tell apart; no chart relies on colour alone (the
legend and the tooltips say the numbers). No script, no chart library: the console's CSP
allows no inline style, so colours and sizes are presentation attributes (``fill``, ``stroke``,
``font-size``) and the sizing is the ``.chart`` rule of console.css.

The one rule: every text that reaches a chart (title, label, series name, tooltip) goes through
:func:`markupsafe.escape`; only a whole chart is returned as :class:`~markupsafe.Markup`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

#: One colour per outcome and state, the same in every chart.
COLOURS: Final = {
    "delivered": "#06C755",  # LINE green
    "retried": "#0072B2",  # blue
    "retrying": "#0072B2",
    "failed": "#D55E00",  # vermillion
    "suppressed": "#999999",  # grey
    "deferred": "#56B4E9",  # sky blue
    "queued": "#E69F00",  # orange
    "paused": "#CC79A7",  # reddish purple
    "average": "#0072B2",
    "slowest": "#999999",
    "reason": "#0072B2",
}
INK: Final = "#1d2327"
MUTED: Final = "#667085"
GRID: Final = "#e4e7ec"
WIDTH: Final = 640
LEFT: Final = 56  # room for the y axis' labels
RIGHT: Final = 16
TOP: Final = 40  # title and legend
BOTTOM: Final = 40  # x labels and the axis title

Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no value (a gap in a line)
    colour: str

    @property
    def total(self) -> float:
        return sum(v for v in self.values if v is not None)


def number(value: float) -> str:
    """A figure for an axis or a label: 1,200 · 2.5 · 0.05."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.1f}".rstrip("0").rstrip(".")


def seconds(value: float) -> str:
    """A duration: 12 ms · 1.5 s · 3 min · 2 h."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{number(round(value, 1))} s"
    if value < 3600:
        return f"{number(round(value / 60, 1))} min"
    return f"{number(round(value / 3600, 1))} h"


def ticks(top: float, count: int = 4) -> list[float]:
    """0, then round steps (1, 2, 2.5 or 5 × 10ⁿ) up to at least ``top``; about ``count`` steps."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    steps = max(1, math.ceil(top / step - 1e-9))
    return [round(i * step, 10) for i in range(steps + 1)]


# -- the pieces every chart has ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    """A chart's size and its plot area (the rectangle the marks are drawn in)."""

    width: int
    height: int
    top: float
    left: float = LEFT

    @property
    def right(self) -> float:
        return self.width - RIGHT

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    @property
    def middle(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2


def _svg(frame: _Frame, title: str, body: list[str], kind: str, *, caption: bool = True) -> Markup:
    text = escape(title)
    shown = f'<text x="0" y="16" font-size="14" font-weight="600" fill="{INK}">{text}</text>' if caption else ""
    return Markup(
        f'<svg class="chart {kind}" viewBox="0 0 {frame.width} {frame.height}" role="img" aria-label="{text}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{text}</title>{shown}' + "".join(body) + "</svg>"
    )


def _legend(series: Sequence[Series], fmt: Format | None) -> list[str]:
    """A coloured square and the series' name per series, with its total unless ``fmt`` is None
    (a sum of averages means nothing)."""
    out, x = [], 0.0
    for s in series:
        label = escape(s.name if fmt is None else f"{s.name} {fmt(s.total)}")
        out.append(
            f'<g class="legend" data-series="{escape(s.name)}"><rect x="{x:.1f}" y="24" width="10" height="10" '
            f'rx="2" fill="{s.colour}"/><text x="{x + 14:.1f}" y="33" font-size="12" fill="{INK}">{label}</text></g>'
        )
        x += 28 + 7 * len(str(label))
    return out


def _y_axis(frame: _Frame, top: float, fmt: Format, title: str) -> tuple[list[str], float]:
    """Grid lines and labels of a y axis from 0 to a round value ≥ ``top``; returns them and that value."""
    marks = ticks(top)
    ceiling = marks[-1]
    out = []
    for mark in marks:
        y = frame.bottom - (frame.bottom - frame.top) * mark / ceiling
        out.append(
            f'<line x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text class="tick" x="{frame.left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="{MUTED}">{escape(fmt(mark))}</text>'
        )
    middle = frame.middle[1]
    out.append(
        f'<text class="axis-title" x="12" y="{middle:.1f}" font-size="11" text-anchor="middle" fill="{MUTED}" '
        f'transform="rotate(-90 12 {middle:.1f})">{escape(title)}</text>'
    )
    return out, ceiling


def _x_axis(frame: _Frame, labels: Sequence[str], every: int, title: str) -> list[str]:
    """The baseline, every ``every``-th label (and the last) under its slot's middle, the axis title."""
    slot = (frame.right - frame.left) / max(1, len(labels))
    out = [f'<line x1="{frame.left}" x2="{frame.right}" y1="{frame.bottom}" y2="{frame.bottom}" stroke="{MUTED}"/>']
    for i, label in enumerate(labels):
        if i % every and i != len(labels) - 1:
            continue
        out.append(
            f'<text class="tick" x="{frame.left + slot * (i + 0.5):.1f}" y="{frame.bottom + 15}" font-size="11" '
            f'text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
        )
    out.append(
        f'<text class="axis-title" x="{frame.middle[0]:.1f}" y="{frame.bottom + 32}" font-size="11" '
        f'text-anchor="middle" fill="{MUTED}">{escape(title)}</text>'
    )
    return out


def _empty(frame: _Frame, message: str) -> str:
    x, y = frame.middle
    return (
        f'<text class="empty" x="{x:.1f}" y="{y:.1f}" font-size="13" text-anchor="middle" '
        f'fill="{MUTED}">{escape(message)}</text>'
    )


# -- the charts ----------------------------------------------------------------------------------


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    x_title: str,
    empty: str,
    every: int = 15,
    width: int = WIDTH,
    height: int = 240,
    fmt: Format = number,
) -> Markup:
    """One bar per label, its series stacked bottom up in the order given; zero parts are not drawn."""
    frame = _Frame(width, height, TOP + 12)
    sums = [sum((s.values[i] or 0) for s in series) for i in range(len(labels))]
    axis, ceiling = _y_axis(frame, max(sums, default=0), fmt, y_title)
    body = [*_legend(series, fmt), *axis, *_x_axis(frame, labels, every, x_title)]
    if not any(sums):
        return _svg(frame, title, [*body, _empty(frame, empty)], "stacked")
    slot = (frame.right - frame.left) / len(labels)
    scale = (frame.bottom - frame.top) / ceiling
    for i, label in enumerate(labels):
        base = frame.bottom
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = value * scale
            base -= h
            tip = escape(f"{label}: {fmt(value)} {s.name}")
            body.append(
                f'<rect class="bar" data-series="{escape(s.name)}" x="{frame.left + slot * (i + 0.1):.1f}" '
                f'y="{base:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{s.colour}">'
                f"<title>{tip}</title></rect>"
            )
    return _svg(frame, title, body, "stacked")


def lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    x_title: str,
    empty: str,
    every: int = 15,
    width: int = WIDTH,
    height: int = 240,
    fmt: Format = number,
) -> Markup:
    """One line per series; a None value breaks the line, and every value has a dot with a tooltip."""
    frame = _Frame(width, height, TOP + 12)
    values = [v for s in series for v in s.values if v is not None]
    axis, ceiling = _y_axis(frame, max(values, default=0), fmt, y_title)
    body = [*axis, *_x_axis(frame, labels, every, x_title)]
    if not values:
        return _svg(frame, title, [*body, _empty(frame, empty)], "lines")
    body[:0] = _legend(series, None)
    slot = (frame.right - frame.left) / len(labels)
    scale = (frame.bottom - frame.top) / ceiling
    for s in series:
        points = [
            (frame.left + slot * (i + 0.5), frame.bottom - v * scale, labels[i], v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        body.extend(_polylines(s, points, slot))
        body.extend(
            f'<circle class="point" data-series="{escape(s.name)}" cx="{x:.1f}" cy="{y:.1f}" r="2.5" '
            f'fill="{s.colour}"><title>{escape(f"{label}: {s.name} {fmt(v)}")}</title></circle>'
            for x, y, label, v in points
        )
    return _svg(frame, title, body, "lines")


def _polylines(s: Series, points: list[tuple[float, float, str, float]], slot: float) -> list[str]:
    """Runs of points next to each other are joined; a missing value leaves a gap."""
    runs: list[list[tuple[float, float]]] = []
    last_x = None
    for x, y, _, _ in points:
        if last_x is None or x - last_x > slot * 1.5:
            runs.append([])
        runs[-1].append((x, y))
        last_x = x
    return [
        f'<polyline data-series="{escape(s.name)}" fill="none" stroke="{s.colour}" stroke-width="2" '
        f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}"/>'
        for run in runs
        if len(run) > 1
    ]


def hbars(
    title: str, items: Sequence[tuple[str, float, str]], *, x_title: str, empty: str, fmt: Format = number
) -> Markup:
    """One horizontal bar per ``(label, value, colour)``, the value written at its end; no items: the
    ``empty`` sentence alone."""
    row = 26
    frame = _Frame(WIDTH, int(TOP - 8 + row * len(items) + BOTTOM), TOP - 8, left=LEFT + 64)  # labels are words
    if not items:
        alone = _Frame(WIDTH, 100, TOP)
        return _svg(alone, title, [_empty(alone, empty)], "hbars")
    marks = ticks(max(v for _, v, _ in items))
    scale = (frame.right - 60 - frame.left) / marks[-1]
    body = [f'<line x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" y2="{frame.bottom}" stroke="{MUTED}"/>']
    body.extend(
        f'<text class="tick" x="{frame.left + mark * scale:.1f}" y="{frame.bottom + 15}" font-size="11" '
        f'text-anchor="middle" fill="{MUTED}">{escape(fmt(mark))}</text>'
        for mark in marks
    )
    body.append(
        f'<text class="axis-title" x="{frame.middle[0]:.1f}" y="{frame.bottom + 32}" font-size="11" '
        f'text-anchor="middle" fill="{MUTED}">{escape(x_title)}</text>'
    )
    for i, (label, value, colour) in enumerate(items):
        y = frame.top + row * i + 4
        length = max(value * scale, 1.5 if value else 0)
        body.append(
            f'<text class="label" x="{frame.left - 8}" y="{y + 13}" font-size="12" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>"
            f'<rect class="bar" data-series="{escape(label)}" x="{frame.left}" y="{y}" width="{length:.1f}" '
            f'height="18" rx="2" fill="{colour}"><title>{escape(f"{label}: {fmt(value)}")}</title></rect>'
            f'<text class="value" x="{frame.left + length + 6:.1f}" y="{y + 13}" font-size="12" fill="{INK}">'
            f"{escape(fmt(value))}</text>"
        )
    return _svg(frame, title, body, "hbars")


def meter(title: str, used: float, whole: float, *, says: str, warn_at: float = 0.9, caption: bool = True) -> Markup:
    """A bar of ``whole`` filled to ``used`` (LINE green; vermillion from ``warn_at`` of it), with a scale;
    ``caption=False`` when the page already titles it (the title stays for screen readers)."""
    frame = _Frame(WIDTH, 96 if caption else 72, 28 if caption else 4, left=8)
    share = 0.0 if whole <= 0 else min(1.0, max(0.0, used / whole))
    colour = COLOURS["failed"] if share >= warn_at else COLOURS["delivered"]
    span, y = frame.right - frame.left, frame.top
    body = [
        f'<rect class="track" x="{frame.left}" y="{y}" width="{span}" height="22" rx="4" fill="{GRID}"/>',
        f'<rect class="bar" data-series="used" x="{frame.left}" y="{y}" width="{span * share:.1f}" height="22" '
        f'rx="4" fill="{colour}"><title>{escape(says)}</title></rect>',
        f'<text class="value" x="{frame.left}" y="{y + 42}" font-size="12" fill="{INK}">{escape(says)}</text>',
    ]
    for part in (0.0, 0.5, 1.0):
        anchor = "start" if part == 0 else "end" if part == 1 else "middle"
        body.append(
            f'<text class="tick" x="{frame.left + span * part:.1f}" y="{y + 60}" font-size="11" '
            f'text-anchor="{anchor}" fill="{MUTED}">{escape(number(round(whole * part)))}</text>'
        )
    return _svg(frame, title, body, "meter", caption=caption)
