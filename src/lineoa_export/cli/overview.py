"""``lineoa-export overview``: the console's overview of an activation or a channel, in the terminal.

The same figures as the console's overview page and ``GET /v1/…/overview`` (one read model,
:mod:`lineoa_export.overview`, through the operations layer): the last hour's pushes per minute
as a sparkline, outcomes, why pushes were retried or failed, what waits now and how late, the
channel's rate, hold and quota, engagement as stored ("fewer than 20" for LINE's nulls) and the
latest reconciliation. ``--format json`` prints the API's JSON.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .insight import FormatOpt, _age, _format

if TYPE_CHECKING:
    from ..overview import Overview

_BLOCKS = " ▁▂▃▄▅▆▇█"


def overview_command(
    name: Annotated[str, typer.Argument(help="The activation (or, with --channel, the authentication).")],
    channel: Annotated[
        bool, typer.Option("--channel", help="NAME is an authentication: every activation on its LINE channel.")
    ] = False,
    fmt: FormatOpt = "table",
) -> None:
    """The last hour of an activation (or a channel): pushes per minute, outcomes, retry reasons, the
    queue and its lag, the channel's rate, hold and quota, engagement and the latest reconciliation."""
    from .main import guarded, operations, out

    chosen = guarded(lambda: _format(fmt))
    ops = operations()
    read = ops.channel_overview if channel else ops.activation_overview
    view = guarded(lambda: asyncio.run(read(name)))
    if chosen == "json":
        out.print_json(json.dumps(view.public()))
        return
    show_overview(view)


def sparkline(values: list[int]) -> str:
    """One character a value, its height relative to the largest (a blank for 0)."""
    top = max(values, default=0)
    if top == 0:
        return _BLOCKS[0] * len(values)
    return "".join(_BLOCKS[0 if v == 0 else max(1, round(v / top * (len(_BLOCKS) - 1)))] for v in values)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M UTC")


def _channel_state(view: Overview) -> str:
    hold = view.hold
    if hold is not None:
        probe = f", next probe {_when(hold.probe_at)}" if hold.probe_at else ""
        word = "tripped" if hold.kind == "breaker" else "paused"
        return f"{word} ({hold.kind}) since {_when(hold.since)}: {hold.reason}{probe}"
    if view.paused_by_hand:
        return f"activation paused by hand: {view.paused_by_hand}"
    return "delivering"


def _quota(view: Overview) -> str:
    quota = view.quota
    if quota is None:
        return "not asked yet"
    if not quota.known:
        return f"unknown: {quota.note}"
    if not quota.limited:
        return f"{quota.used or 0:,} used, no monthly limit"
    return f"{quota.used or 0:,} used of {quota.limit or 0:,}, {quota.left or 0:,} left this month"


def _reconciliation(view: Overview) -> str:
    r = view.reconciliation
    if r is None:
        return "none yet"
    mark = "MISMATCH: " if view.mismatch else ""
    return f"{mark}{r.day.isoformat()} (UTC+9): {r.verdict}: {r.says}"


def _summary(view: Overview) -> list[tuple[str, Any]]:
    o = view.outcomes
    waiting = ", ".join(f"{n:,} {state}" for state, n in view.queue.items() if n) or "nothing"
    latency = "—" if view.latency_avg is None else f"{view.latency_avg * 1000:,.0f} ms average"
    minutes = [m.pushes for m in view.minutes]
    return [
        (view.scope.kind, view.scope.name),
        ("channel of", view.scope.auth.name),
        ("last hour", f"since {_when(view.since)}: {view.pushes:,} pushes, busiest minute {max(minutes, default=0):,}"),
        ("pushes per minute", sparkline(minutes)),
        ("outcomes", ", ".join(f"{n:,} {k}" for k, n in o.items())),
        ("waiting now", f"{waiting}; the earliest due has waited {view.lag:,.1f} s"),
        ("trigger → push", latency),
        ("rate limit", f"{view.rate_limit:,.0f} pushes/s per channel ({view.rate_sharing})"),
        ("channel", _channel_state(view)),
        ("monthly quota", _quota(view)),
        ("reconciliation", _reconciliation(view)),
    ]


def show_overview(view: Overview) -> None:
    from rich.table import Table

    from ..insight.statistics import shown
    from .main import out, show_kv

    show_kv(_summary(view))
    if view.reasons:
        reasons = Table("retried or failed because", "pushes (last hour)")
        for reason, n in view.reasons:
            reasons.add_row(reason, f"{n:,}")
        out.print(reasons)
    if view.engagement:
        table = Table("unit", "days (UTC+9)", "unique impressions", "unique clicks", "media played", "figures from")
        for e in view.engagement:
            figures = (shown(e.impressions), shown(e.clicks), shown(e.media_played))
            table.add_row(e.unit, f"{e.first_day} – {e.last_day}", *figures, _age(view.now - e.fetched_at))
        out.print(table)
