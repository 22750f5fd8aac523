"""``lineoa-export stats`` and ``lineoa-export reconcile``: what LINE says happened.

Both ask LINE through the operations layer and print its figures for people (a figure LINE
gives as null is "fewer than 20", never 0), or as JSON with ``--format json``.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

if TYPE_CHECKING:
    from ..insight.statistics import Stats

Format = Literal["table", "json"]
FormatOpt = Annotated[str, typer.Option("--format", help="table (for people) or json.")]

_OVERVIEW = (
    ("uniqueImpression", "unique impressions"),
    ("uniqueClick", "unique clicks"),
    ("uniqueMediaPlayed", "unique media played"),
    ("uniqueMediaPlayed100Percent", "unique media played to the end"),
)
_MESSAGE_COLUMNS = (
    ("impression", "impressions"),
    ("uniqueImpression", "unique impr."),
    ("mediaPlayed", "media played"),
    ("mediaPlayed25Percent", "25 %"),
    ("mediaPlayed50Percent", "50 %"),
    ("mediaPlayed75Percent", "75 %"),
    ("mediaPlayed100Percent", "100 %"),
    ("uniqueMediaPlayed", "unique played"),
)
_CLICK_COLUMNS = (("click", "clicks"), ("uniqueClick", "unique clicks"), ("uniqueClickOfRequest", "unique (message)"))


def _format(value: str) -> Format:
    from ..errors import InvalidInput

    if value not in ("table", "json"):
        raise InvalidInput.single("format", "must be table or json")
    return "table" if value == "table" else "json"


def stats_command(
    activation: Annotated[str, typer.Argument(help="The activation whose aggregation unit to read.")],
    first: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC+9).")] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC+9), at most 30 after --from.")
    ] = None,
    fmt: FormatOpt = "table",
) -> None:
    """LINE's statistics for an activation: unique impressions, clicks, media played, per message and URL.

    LINE is asked when the stored figures are older than 5 minutes and the channel has one of its
    60 requests an hour left; else the stored figures are shown with their age.
    """
    from .main import guarded, operations, out

    chosen = guarded(lambda: _format(fmt))
    ops = operations()
    result = guarded(lambda: asyncio.run(ops.activation_stats(activation, first, last)))
    if chosen == "json":
        out.print_json(json.dumps(result.public()))
        return
    show_stats(result)


def _age(seconds: float) -> str:
    if seconds < 60:
        return "just now" if seconds < 1 else f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def show_stats(result: Stats) -> None:
    from rich.table import Table

    from ..insight.statistics import shown
    from .main import out, show_kv

    period = f"{result.period.first.isoformat()} to {result.period.last.isoformat()} (UTC+9)"
    source = "never fetched"
    if result.age_seconds is not None:
        source = ("fetched from LINE " if result.asked_line else "stored, fetched ") + _age(result.age_seconds)
    rows: list[tuple[str, Any]] = [("activation", result.activation), ("aggregation unit", result.unit)]
    rows += [("period", period), ("figures", source)]
    if result.note:
        rows.append(("note", result.note))
    figures = result.figures or {}
    overview = figures.get("overview") or {}
    rows += [(label, shown(overview.get(key))) for key, label in _OVERVIEW] if figures else []
    show_kv(rows)
    if figures.get("messages"):
        table = Table("bubble", *(label for _, label in _MESSAGE_COLUMNS), title="per message")
        for m in figures["messages"]:
            table.add_row(str(m.get("seq")), *(shown(m.get(key)) for key, _ in _MESSAGE_COLUMNS))
        out.print(table)
    if figures.get("clicks"):
        table = Table("bubble", "url", *(label for _, label in _CLICK_COLUMNS), title="per URL")
        for c in figures["clicks"]:
            table.add_row(str(c.get("seq")), str(c.get("url")), *(shown(c.get(key)) for key, _ in _CLICK_COLUMNS))
        out.print(table)


def reconcile_command(
    authentication: Annotated[str, typer.Argument(help="The authentication (LINE channel) to reconcile.")],
    day: Annotated[str | None, typer.Option("--date", help="A day in UTC+9, YYYY-MM-DD (default: yesterday).")] = None,
    fmt: FormatOpt = "table",
) -> None:
    """LINE's count of a day's pushes on this channel next to the pushes we recorded as accepted.

    Says equal, LINE counted more (someone else pushes on this channel, or we lost a record),
    LINE counted fewer (an acceptance we recorded that LINE did not count), or not ready yet.
    """
    from .main import guarded, operations, out, show_kv

    chosen = guarded(lambda: _format(fmt))
    ops = operations()
    result = guarded(lambda: asyncio.run(ops.reconcile(authentication, day)))
    if chosen == "json":
        out.print_json(json.dumps(result.public()))
        return
    line = "not given" if result.line_count is None else f"{result.line_count:,}"
    show_kv(
        [
            ("authentication", result.authentication),
            ("day", f"{result.day.isoformat()} (UTC+9)"),
            ("LINE counted", f"{line} ({result.line_status})"),
            ("we recorded", f"{result.our_count:,} accepted"),
            ("verdict", f"{result.verdict}: {result.says}"),
        ]
    )
