"""The console's overview pages (role ``read``): one per activation, one per LINE channel, and an index.

``/console/overview`` lists what has an overview; ``/console/overview/activations/{name}`` and
``/console/overview/channels/{authentication}`` show the last hour in cards and charts drawn on
the server (:mod:`.charts`), from :meth:`Operations.activation_overview` and
:meth:`Operations.channel_overview`. Each page has a ``…/live`` twin that answers only its
figures, which ``static/live.js`` fetches every few seconds while the page is visible; without
JavaScript the page is simply as fresh as its last load.

The one rule: LINE is asked (the monthly quota, at most once a minute per channel) only by a
request whose session the ``Reader`` dependency has accepted, which FastAPI resolves before the
route runs; everything else on these pages comes from the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from ...activation_table import iso
from ...insight.statistics import shown
from ...overview import WAITING, Overview
from . import charts
from .charts import COLOURS, Series
from .guards import C, Reader, q
from .pages import PREFIX, ConsoleRoute

WIDE = 1240  # the charts across the page (the others are half as wide)
REFRESH_MS = 5000  # the overview's figures: heavier than a table page, and minutes are its grain

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)


@router.get("/overview")
def overview_index(request: Request, console: C, session: Reader) -> Response:
    """Every activation and every channel, each a link to its overview."""
    return console.render(
        request,
        "overview_index.html",
        session,
        section="overview",
        activations=console.ops.list_activations(),
        auths=console.ops.list_authentications(),
    )


@router.get("/overview/activations/{name}")
async def activation_overview(request: Request, name: str, console: C, session: Reader) -> Response:
    view = await console.ops.activation_overview(name)
    return console.render(request, "overview.html", session, section="overview", **_values(view))


@router.get("/overview/activations/{name}/live")
async def activation_overview_live(request: Request, name: str, console: C, _: Reader) -> Response:
    view = await console.ops.activation_overview(name)
    return console.fragment(request, "overview_live.html", **_values(view))


@router.get("/overview/channels/{name}")
async def channel_overview(request: Request, name: str, console: C, session: Reader) -> Response:
    view = await console.ops.channel_overview(name)
    return console.render(request, "overview.html", session, section="overview", **_values(view))


@router.get("/overview/channels/{name}/live")
async def channel_overview_live(request: Request, name: str, console: C, _: Reader) -> Response:
    view = await console.ops.channel_overview(name)
    return console.fragment(request, "overview_live.html", **_values(view))


# -- what the templates show ---------------------------------------------------------------------


def _values(view: Overview) -> dict[str, Any]:
    kind = "activations" if view.scope.kind == "activation" else "channels"
    return {
        "v": view,
        "scope_path": f"/overview/{kind}/{q(view.scope.name)}",
        "refresh_ms": REFRESH_MS,
        "charts": _charts(view),
        "cards": _cards(view),
        "iso": iso,
        "ago": lambda t: _ago(view.now - t),
        "seconds": charts.seconds,
        "shown": shown,
    }


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _ago(age: float) -> str:
    return "just now" if age < 1 else f"{charts.seconds(age)} ago"


def _charts(view: Overview) -> dict[str, Markup]:
    labels = [_hhmm(m.start) for m in view.minutes]
    per_minute = [
        Series(name, [getattr(m, name) for m in view.minutes], COLOURS[name])
        for name in ("delivered", "retried", "failed")
    ]
    latency = [
        Series("average", [m.latency_avg for m in view.minutes], COLOURS["average"]),
        Series("slowest", [m.latency_max for m in view.minutes], COLOURS["slowest"]),
    ]
    outcomes = [(k, n, COLOURS[k]) for k, n in view.outcomes.items()]
    queue = [(state, view.queue[state], COLOURS[state]) for state in WAITING]
    out = {
        "pushes": charts.stacked_bars(
            "Pushes per minute, last hour", labels, per_minute, width=WIDE,
            y_title="pushes", x_title="minute (UTC)", empty="No pushes in the last hour",
        ),
        "outcomes": charts.hbars(
            "Outcomes, last hour", outcomes if any(n for _, n, _ in outcomes) else [],
            x_title="events (retried: pushes; deferred: waiting now)", empty="Nothing happened in the last hour",
        ),
        "reasons": charts.hbars(
            "Why pushes were retried or failed, last hour", [(r, n, COLOURS["reason"]) for r, n in view.reasons],
            x_title="pushes", empty="No retry and no failed push in the last hour",
        ),
        "queue": charts.hbars(
            "Waiting now", queue if any(n for _, n, _ in queue) else [],
            x_title="events", empty="Nothing waiting: the queue is empty",
        ),
        "latency": charts.lines(
            "Trigger → push latency of delivered pushes", labels, latency,
            y_title="seconds", x_title="minute (UTC)", empty="No delivered push in the last hour", fmt=charts.seconds,
        ),
    }  # fmt: skip
    out.update(_meters(view))
    return out


def _meters(view: Overview) -> dict[str, Markup]:
    out = {
        "rate": charts.meter(
            "Busiest minute against the rate limit",
            view.peak_rate,
            view.rate_limit,
            says=f"{charts.number(round(view.peak_rate, 2))} pushes/s of {charts.number(view.rate_limit)}/s",
        )
    }
    quota = view.quota
    if quota is not None and quota.limited and quota.limit is not None and quota.used is not None:
        out["quota"] = charts.meter(
            "Monthly quota",
            quota.used,
            quota.limit,
            says=f"{quota.used:,} used of {quota.limit:,} · {quota.left or 0:,} left this month",
            caption=False,  # the panel's heading says it
        )
    return out


def _cards(view: Overview) -> list[dict[str, Any]]:
    """The big figures at the top: label, value, a line under it, and a tone (ok, bad, muted)."""
    outcomes = view.outcomes
    waiting = sum(view.queue.values())
    cards = [
        _card("Delivered", outcomes["delivered"], f"{view.pushes:,} pushes in the last hour", "ok"),
        _card("Failed", outcomes["failed"], "last hour", "bad" if outcomes["failed"] else ""),
        _card("Retried", outcomes["retried"], "pushes, last hour", ""),
        _card("Suppressed", outcomes["suppressed"], "not sent on purpose, last hour", ""),
        _card("Waiting", waiting, f"lag {charts.seconds(view.lag)}" if view.lag else "nothing overdue", ""),
        _card(
            "Latency",
            charts.seconds(view.latency_avg) if view.latency_avg is not None else "—",
            f"slowest {charts.seconds(view.latency_max)}" if view.latency_max is not None else "trigger → push",
            "",
        ),
        _quota_card(view),
        _reconciliation_card(view),
    ]
    return cards


def _card(label: str, value: int | str, note: str, tone: str) -> dict[str, Any]:
    shown = f"{value:,}" if isinstance(value, int) else value
    # a word (a verdict, "no limit") is set smaller than a figure, so that it fits its card
    return {"label": label, "value": shown, "note": note, "tone": tone, "word": len(shown) > 7}


def _quota_card(view: Overview) -> dict[str, Any]:
    quota = view.quota
    if quota is None:
        return _card("Quota left", "…", "asking LINE", "muted")
    if quota.note is not None:
        return _card("Quota left", "unknown", quota.note, "muted")
    if not quota.limited:
        return _card("Quota left", "no limit", f"{quota.used or 0:,} used this month", "")
    left = quota.left or 0
    low = quota.limit is not None and left < quota.limit * 0.1
    return _card("Quota left", left, f"of {quota.limit or 0:,} this month", "bad" if low else "ok")


def _reconciliation_card(view: Overview) -> dict[str, Any]:
    r = view.reconciliation
    if r is None:
        return _card("Reconciliation", "none yet", "LINE's count of a day's pushes", "muted")
    value = {"line_more": "LINE: more", "line_fewer": "LINE: fewer", "not_ready": "not ready",
             "unavailable": "not told"}.get(r.verdict, r.verdict)  # fmt: skip
    return _card("Reconciliation", value, r.day.isoformat() + " (UTC+9)", "bad" if view.mismatch else "")
