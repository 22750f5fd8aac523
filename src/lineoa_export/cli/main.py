"""The ``lineoa-export`` command.

Heavy imports (aiohttp, the database, the worker) happen inside the commands, so
``lineoa-export --help`` starts quickly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .db import db_app
from .insight import reconcile_command, stats_command
from .overview import overview_command

if TYPE_CHECKING:
    from ..context import Context
    from ..operations import Operations

app = typer.Typer(
    help="Push LINE messages for triggered activations: exactly once, within LINE's rate limits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
auth_app = typer.Typer(help="Stored LINE channel credentials.", no_args_is_help=True)
activation_app = typer.Typer(
    help="Triggered activations: recipient, messages payload, retry settings.", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")
app.add_typer(activation_app, name="activation")
app.add_typer(db_app, name="db")
app.command("stats")(stats_command)
app.command("reconcile")(reconcile_command)
app.command("overview")(overview_command)

# Markup off: names, reasons, errors and LINE's texts print as they are ("[/x]" is no tag);
# a line that styles itself says markup=True and escapes what it quotes.
out = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    # The message may quote input ("[/red]" would be read as markup) and is one line however
    # long: the terminal may wrap it, rich must not cut it in two for a script reading stderr.
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; our own errors become one red line and exit 1, never a traceback."""
    from ..errors import InvalidInput, LineoaExportError

    try:
        return fn()
    except InvalidInput as exc:
        if len(exc.problems) > 1:
            err.print("[red]error:[/red] invalid input:")
            for problem in exc.problems:
                err.print(f"  {problem}", markup=False)
            raise typer.Exit(1) from None
        fail(str(exc))
    except LineoaExportError as exc:
        fail(str(exc))


def context(**overrides: Any) -> Context:
    """Settings from the environment (``LINEOA_EXPORT_*``), with command-line flags over them."""
    from ..context import open_context
    from ..settings import Settings

    return guarded(lambda: open_context(Settings.from_env(**overrides)))


def operations() -> Operations:
    """The verbs every front end calls, on this command's context (no worker runs beside a command)."""
    from ..operations import Operations

    return Operations(context())


def show_kv(rows: list[tuple[str, Any]]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, "" if value is None else str(value))
    out.print(table)


# -- auth ----------------------------------------------------------------------------------------


@auth_app.command("create")
def auth_create(
    name: str,
    access_token: Annotated[
        str | None,
        typer.Option(help="Long-lived channel access token.", envvar="LINE_CHANNEL_ACCESS_TOKEN", show_envvar=True),
    ] = None,
    channel_id: Annotated[
        str | None, typer.Option(help="Channel ID (with --channel-secret: tokens are minted).")
    ] = None,
    channel_secret: Annotated[
        str | None,
        typer.Option(
            help="Channel secret: with --channel-id tokens are minted; with --access-token it checks webhooks.",
            envvar="LINE_CHANNEL_SECRET",
            show_envvar=True,
        ),
    ] = None,
    api_url: Annotated[str, typer.Option(help="Where this channel's LINE API lives.")] = "https://api.line.me",
    skip_test: Annotated[bool, typer.Option("--skip-test", help="Store without asking LINE first.")] = False,
) -> None:
    """Store LINE channel credentials (encrypted), after testing them against LINE."""
    ops = operations()
    auth = guarded(
        lambda: asyncio.run(
            ops.create_authentication(
                name,
                access_token=access_token,
                channel_id=channel_id,
                channel_secret=channel_secret,
                api_url=api_url,
                skip_test=skip_test,
            )
        )
    )
    tested = " (not tested)" if skip_test else f" (tested: {auth.bot_name or auth.bot_user_id})"
    out.print(f"created authentication [bold]{escape(auth.name)}[/bold]{escape(tested)}", markup=True)


@auth_app.command("list")
def auth_list() -> None:
    """List authentications (secrets are never shown)."""
    from .. import authentications

    ctx = context()
    table = Table("name", "kind", "bot", "api url", "used by", "status")
    table.columns[0].no_wrap = True
    table.columns[3].overflow = "fold"
    for a in authentications.list_all(ctx.db):
        status = Text(f"paused: {a.paused_reason}", "yellow") if a.paused_reason else Text("active", "green")
        kind = "token" if a.kind == "access_token" else f"channel {a.channel_id}"
        table.add_row(a.name, kind, a.bot_name or "", a.api_url, str(a.activations or 0), status)
    out.print(table)


def _forward_shown(db: Any, a: Any) -> str:
    from ..activation_table import iso
    from ..webhook_forward import failures, shown_url

    if a.forward_webhook is None:
        return "none"
    failed = failures(db, a.name)
    last = f"; last {iso(failed.last_at)}: {failed.last_error}" if failed.count else ""
    return f"{shown_url(a.forward_webhook)} ({failed.count} failed{last})"


@auth_app.command("show")
def auth_show(name: str) -> None:
    """Show one authentication (never its secret)."""
    from .. import authentications
    from ..activation_table import iso

    ctx = context()
    a = guarded(lambda: authentications.get(ctx.db, name))
    show_kv(
        [
            ("name", a.name),
            ("kind", a.kind),
            ("api url", a.api_url),
            ("channel id", a.channel_id),
            ("bot user id", a.bot_user_id),
            ("bot name", a.bot_name),
            ("secret", "stored encrypted; never shown"),
            ("webhook url", f"https://YOUR-HOST{a.webhook_path} (give LINE this; served by `serve`)"),
            ("webhook secret", "stored" if a.webhook_secret_set else "none: add --channel-secret to receive webhooks"),
            ("blocked users", f"{a.blocked_users} (not pushed; from LINE's unfollow webhooks)"),
            ("webhook forward", _forward_shown(ctx.db, a)),
            ("created", iso(a.created_at)),
            ("status", f"paused: {a.paused_reason}" if a.paused_reason else "active"),
        ]
    )


@auth_app.command("update")
def auth_update(
    name: str,
    forward_webhook: Annotated[
        str | None,
        typer.Option(
            help="Re-send every verified LINE webhook, body and signature untouched, to this URL (your bot); "
            "its host must be in LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS."
        ),
    ] = None,
    no_forward_webhook: Annotated[bool, typer.Option("--no-forward-webhook", help="Stop forwarding.")] = False,
    channel_secret: Annotated[
        str | None,
        typer.Option(
            help="The channel secret that signs webhooks (a token authentication).", envvar="LINE_CHANNEL_SECRET"
        ),
    ] = None,
) -> None:
    """Change what needs no new credentials: webhook forwarding and the webhook secret."""
    if forward_webhook is None and not no_forward_webhook and not channel_secret:
        fail("give --forward-webhook URL, --no-forward-webhook or --channel-secret", 2)
    ops = operations()
    auth = guarded(
        lambda: ops.update_authentication(
            name, forward_webhook=forward_webhook, no_forward_webhook=no_forward_webhook, channel_secret=channel_secret
        )
    )
    forwarding = auth.public()["forward_webhook"] or "not forwarded"
    secret = "stored" if auth.webhook_secret_set else "none"
    out.print(
        f"updated [bold]{escape(auth.name)}[/bold]: webhooks {escape(forwarding)}; webhook secret {escape(secret)}",
        markup=True,
    )


@auth_app.command("test")
def auth_test(name: str) -> None:
    """Ask LINE whether the stored credentials still work."""
    ops = operations()
    bot = guarded(lambda: asyncio.run(ops.test_authentication(name)))
    out.print(
        f"[green]ok[/green]: {escape(name)} works for {escape(bot.display_name or '?')} ({escape(bot.user_id or '?')})",
        markup=True,
    )


@auth_app.command("rotate")
def auth_rotate(
    name: str,
    access_token: Annotated[
        str | None,
        typer.Option(help="The new access token.", envvar="LINE_CHANNEL_ACCESS_TOKEN", show_envvar=True),
    ] = None,
    channel_secret: Annotated[
        str | None, typer.Option(help="The channel's new secret.", envvar="LINE_CHANNEL_SECRET", show_envvar=True)
    ] = None,
    skip_test: Annotated[bool, typer.Option("--skip-test", help="Store without asking LINE first.")] = False,
) -> None:
    """Replace the stored secret (same name, same channel), after testing the new one against LINE."""
    ops = operations()
    auth = guarded(
        lambda: asyncio.run(
            ops.rotate_authentication(
                name, access_token=access_token, channel_secret=channel_secret, skip_test=skip_test
            )
        )
    )
    tested = " (not tested)" if skip_test else f" (tested: {auth.bot_name or auth.bot_user_id})"
    out.print(f"rotated the credentials of [bold]{escape(auth.name)}[/bold]{escape(tested)}", markup=True)


@auth_app.command("delete")
def auth_delete(name: str) -> None:
    """Delete an authentication no activation uses."""
    ops = operations()
    guarded(lambda: ops.delete_authentication(name))
    out.print(f"deleted authentication {name}")


# -- activation ------------------------------------------------------------------------------------


def read_json_arg(value: str, field: str) -> Any:
    """``JSON`` or ``@FILE`` (``@-`` for standard input)."""
    from ..errors import InvalidInput

    text = value
    if value.startswith("@"):
        path = value[1:]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise InvalidInput.single(field, f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput.single(field, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


# The options create and update share, declared once.
AuthOpt = Annotated[str | None, typer.Option("--auth", help="Authentication to send with.")]
RecipientOpt = Annotated[str | None, typer.Option(help="Recipient ID template, e.g. '{{line_user_id}}'.")]
MessagesOpt = Annotated[str | None, typer.Option(help="Messages Payload: a JSON array, or @FILE.")]
DescriptionOpt = Annotated[str | None, typer.Option(help="Optional description.")]
RetryOpt = Annotated[int | None, typer.Option(help="Maximum Number Of Retry (default 3).")]
DelayOpt = Annotated[float | None, typer.Option(help="Initial Retry Delay in seconds (default 2).")]
MultipleOpt = Annotated[float | None, typer.Option(help="Retry Delay Multiple (default 2).")]
NotificationOpt = Annotated[
    bool | None,
    typer.Option("--notification-disabled/--notification-enabled", help="Deliver without a notification sound."),
]
UnitOpt = Annotated[
    str | None,
    typer.Option(
        "--aggregation-unit",
        help="customAggregationUnits of every push, for `stats` (1-30 of A-Z a-z 0-9 _; default: from the name).",
    ),
]
NoUnitOpt = Annotated[
    bool | None, typer.Option("--no-aggregation-unit", help="Send without an aggregation unit (no `stats`).")
]
CapOpt = Annotated[
    str | None,
    typer.Option(help="At most N pushes to one recipient in any rolling PERIOD: 1/24h, 3/7d, 10/30m ('none' clears)."),
]
OverCapOpt = Annotated[str | None, typer.Option(help="Over the cap: suppress (default) or defer until it allows.")]
QuietOpt = Annotated[
    str | None, typer.Option(help="Quiet hours HH:MM-HH:MM, may wrap midnight, e.g. 22:00-08:00 ('none' clears).")
]
ZoneOpt = Annotated[str | None, typer.Option(help="IANA zone of the quiet hours (default Asia/Tokyo).")]
ZoneAttributeOpt = Annotated[
    str | None, typer.Option(help="Event attribute holding the recipient's own IANA zone (used when it is one).")
]
InQuietOpt = Annotated[
    str | None, typer.Option(help="A trigger inside quiet hours: defer (default) until they end, or drop.")
]


def _activation_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The activation fields a command was given (``None`` = not given), payload read and parsed."""
    fields = {("authentication" if k == "auth" else k): v for k, v in options.items() if v is not None}
    if "messages" in fields:
        fields["messages"] = guarded(lambda: read_json_arg(fields["messages"], "messages"))
    return fields


@activation_app.command("create")
def activation_create(
    name: str,
    auth: AuthOpt = None,
    recipient: RecipientOpt = None,
    messages: MessagesOpt = None,
    description: DescriptionOpt = None,
    copy_from: Annotated[str | None, typer.Option(help="Start from another activation's settings.")] = None,
    max_retries: RetryOpt = None,
    initial_retry_delay: DelayOpt = None,
    retry_delay_multiple: MultipleOpt = None,
    notification_disabled: NotificationOpt = None,
    aggregation_unit: UnitOpt = None,
    no_aggregation_unit: NoUnitOpt = None,
    frequency_cap: CapOpt = None,
    over_cap: OverCapOpt = None,
    quiet_hours: QuietOpt = None,
    time_zone: ZoneOpt = None,
    time_zone_attribute: ZoneAttributeOpt = None,
    in_quiet_hours: InQuietOpt = None,
) -> None:
    """Create a triggered activation (the payload is validated before it is saved)."""
    options = {k: v for k, v in locals().items() if k not in ("name", "copy_from")}  # the flags, first thing
    ops = operations()
    fields = _activation_fields(options)
    created = guarded(lambda: ops.create_activation(name, fields, copy_from=copy_from))
    out.print(
        f"created activation [bold]{escape(created.name)}[/bold] "
        f"on authentication {escape(created.spec.authentication)}",
        markup=True,
    )


@activation_app.command("update")
def activation_update(
    name: str,
    auth: AuthOpt = None,
    recipient: RecipientOpt = None,
    messages: MessagesOpt = None,
    description: DescriptionOpt = None,
    max_retries: RetryOpt = None,
    initial_retry_delay: DelayOpt = None,
    retry_delay_multiple: MultipleOpt = None,
    notification_disabled: NotificationOpt = None,
    aggregation_unit: UnitOpt = None,
    no_aggregation_unit: NoUnitOpt = None,
    frequency_cap: CapOpt = None,
    over_cap: OverCapOpt = None,
    quiet_hours: QuietOpt = None,
    time_zone: ZoneOpt = None,
    time_zone_attribute: ZoneAttributeOpt = None,
    in_quiet_hours: InQuietOpt = None,
) -> None:
    """Change an activation; what is not given stays as it was."""
    options = {k: v for k, v in locals().items() if k != "name"}  # the flags, first thing
    ops = operations()
    fields = _activation_fields(options)
    guarded(lambda: ops.update_activation(name, fields))
    out.print(f"updated activation [bold]{escape(name)}[/bold]", markup=True)


@activation_app.command("list")
def activation_list() -> None:
    """List activations with their event counts."""
    from .. import activations

    ctx = context()
    table = Table("name", "auth", "recipient", "retry", "waiting", "delivered", "failed", "status")
    table.columns[0].no_wrap = True
    for a in activations.list_all(ctx.db):
        c = activations.counts(ctx.db, a.name)
        waiting = c.get("queued", 0) + c.get("retrying", 0) + c.get("paused", 0)
        status = Text(f"paused: {a.pause_reason}", "yellow") if a.pause_reason else Text("active", "green")
        s = a.spec
        retry = f"{s.max_retries}× from {s.initial_retry_delay:g}s ×{s.retry_delay_multiple:g}"
        table.add_row(
            a.name,
            s.authentication,
            s.recipient,
            retry,
            str(waiting),
            str(c.get("delivered", 0)),
            str(c.get("failed", 0)),
            status,
        )
    out.print(table)


def _quiet_hours_shown(s: Any) -> str:
    if not s.quiet_hours:
        return "none"
    zone = s.time_zone + (f" (or the event's {s.time_zone_attribute})" if s.time_zone_attribute else "")
    return f"{s.quiet_hours} {zone}, inside them: {s.in_quiet_hours}"


@activation_app.command("show")
def activation_show(name: str) -> None:
    """Show an activation: its parameters, its state, and its event counts."""
    from .. import activations
    from ..activation_table import iso
    from ..delivery import units

    ctx = context()
    a = guarded(lambda: activations.get(ctx.db, name))
    c = activations.counts(ctx.db, name)
    s = a.spec
    unit = units.status(ctx.db, a.channel_key, s.aggregation_unit, ctx.clock.now())
    show_kv(
        [
            ("name", s.name),
            ("description", s.description),
            ("authentication", s.authentication),
            ("status", f"PAUSED: {a.pause_reason}" if a.pause_reason else "active"),
            ("recipient", s.recipient),
            ("max retries", s.max_retries),
            ("initial retry delay", f"{s.initial_retry_delay:g} s"),
            ("retry delay multiple", f"{s.retry_delay_multiple:g}"),
            ("retry waits", ", ".join(f"{s.policy.delay(n):g} s" for n in range(1, s.max_retries + 1)) or "no retries"),
            ("notification disabled", s.notification_disabled),
            ("aggregation unit", unit.describe()),
            ("frequency cap", f"{s.frequency_cap} per recipient, over it: {s.over_cap}" if s.frequency_cap else "none"),
            ("quiet hours", _quiet_hours_shown(s)),
            ("events", ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"),
            ("created", iso(a.created_at)),
            ("updated", iso(a.updated_at)),
        ]
    )
    out.print("[bold]messages[/bold]", markup=True)
    out.print_json(json.dumps(s.messages))


@activation_app.command("validate")
def activation_validate(
    name: str,
    event: Annotated[str | None, typer.Option(help="Sample event (JSON or @FILE) for a templated payload.")] = None,
) -> None:
    """Check the payload locally and with LINE's validate endpoint (nothing is sent)."""
    ops = operations()
    sample = guarded(lambda: read_json_arg(event, "event")) if event else None
    guarded(lambda: asyncio.run(ops.validate_activation(name, _event_object(sample))))
    out.print(f"[green]ok[/green]: {escape(name)} is valid (checked locally and by LINE)", markup=True)


def _event_object(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        fail("event: must be a JSON object")
    return value


@activation_app.command("preview")
def activation_preview(
    name: str,
    event: Annotated[str, typer.Option(help="Sample event: a JSON object of profile attributes, or @FILE.")] = "{}",
) -> None:
    """Print the push request an event would make (method, URL, headers, body); nothing is sent."""
    ops = operations()
    sample = _event_object(guarded(lambda: read_json_arg(event, "event"))) or {}
    preview = guarded(lambda: ops.preview_activation(name, sample))
    sys.stdout.write(json.dumps(preview.public(), ensure_ascii=False, indent=2) + "\n")


@activation_app.command("delete")
def activation_delete(name: str) -> None:
    """Delete an activation and its activation table."""
    ops = operations()
    guarded(lambda: ops.delete_activation(name))
    out.print(f"deleted activation {name}")


@activation_app.command("pause")
def activation_pause(
    name: str, reason: Annotated[str, typer.Option(help="Why (shown in 'show').")] = "paused by hand"
) -> None:
    """Hold an activation's events (they keep their retry keys)."""
    ops = operations()
    guarded(lambda: ops.pause_activation(name, reason))
    out.print(f"paused activation {name}")


@activation_app.command("resume")
def activation_resume(name: str) -> None:
    """Put an activation's held events back in line (and its channel, if LINE paused it)."""
    ops = operations()
    guarded(lambda: ops.resume_activation(name))
    out.print(f"resumed activation {name}")


@activation_app.command("replay")
def activation_replay(
    name: str,
    event_ids: Annotated[list[str] | None, typer.Argument(help="Failed events to replay; all when none given.")] = None,
) -> None:
    """Queue failed events again with their retry keys (only while LINE still knows a key: 24 hours)."""
    ops = operations()
    result = guarded(lambda: ops.replay(name, event_ids or None))
    for event_id in result.not_replayable:
        err.print(f"not replayed: {event_id} (not failed, or its retry key is older than 24 hours)", markup=False)
    out.print(f"{len(result.replayed)} failed event(s) of {name} queued again with their retry keys")
    if result.not_replayable:
        raise typer.Exit(1)


@activation_app.command("event")
def activation_event(name: str, event_id: str) -> None:
    """One event of the activation table as JSON: its state, request body and every attempt."""
    ops = operations()
    entry = guarded(lambda: ops.event(name, event_id))
    sys.stdout.write(json.dumps(entry, ensure_ascii=False, indent=2) + "\n")


# -- trigger -------------------------------------------------------------------------------------


TRIGGER_CHUNK = 500


class BadLine(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")


def read_events(source: Any) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """NDJSON lines (bytes) → events, or a :class:`BadLine` naming the line; blank lines are skipped.

    Each line is decoded on its own, so one line that is not UTF-8 is reported by number
    and the others are still recorded. A leading byte-order mark is ignored.
    """
    for number, raw in enumerate(source, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield number, BadLine(number, f"not UTF-8 (byte {exc.start + 1})")
            continue
        except json.JSONDecodeError as exc:
            yield number, BadLine(number, f"not JSON ({exc.msg})")
            continue
        yield number, value if isinstance(value, dict) else BadLine(number, "not a JSON object")


@app.command()
def trigger(
    activation: str,
    event: Annotated[str | None, typer.Option(help="One event: a JSON object of profile attributes.")] = None,
    events: Annotated[str | None, typer.Option(help="NDJSON file of events, or '-' for standard input.")] = None,
) -> None:
    """Render and enqueue events; prints each event's id and status (accepted, duplicate, failed)."""
    if (event is None) == (events is None):
        fail("give exactly one of --event JSON or --events FILE|-", 2)
    ops = operations()
    guarded(lambda: ops.get_activation(activation))
    if event is not None:
        value = guarded(lambda: read_json_arg(event, "event"))
        if not isinstance(value, dict):
            fail("event: must be a JSON object")
        counts = _trigger_chunk(ops, activation, [value])
    else:
        counts = _trigger_stream(ops, activation, events or "-")
    bad = counts.pop("unreadable", 0)
    err.print(", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no events")
    if bad:
        raise typer.Exit(1)


def _trigger_chunk(ops: Operations, activation: str, chunk: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"accepted": 0, "paused": 0, "duplicate": 0, "failed": 0}
    for r in guarded(lambda: ops.trigger(activation, chunk).results):
        counts[r.status] += 1
        print(f"{r.event_id}\t{r.status}" + (f"\t{r.error}" if r.error else ""))
    return counts


def _trigger_stream(ops: Operations, activation: str, path: str) -> dict[str, int]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    total = None
    if path != "-":
        with open(path, "rb") as f:
            total = sum(1 for line in f if line.strip())
    counts = {"accepted": 0, "paused": 0, "duplicate": 0, "failed": 0, "unreadable": 0}
    with (
        source,
        Progress(
            TextColumn("triggering"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as progress,
    ):
        task = progress.add_task("events", total=total)
        chunk: list[dict[str, Any]] = []
        for _, item in read_events(source):
            if isinstance(item, BadLine):
                err.print(f"[red]error:[/red] {escape(str(item))} (not recorded)")
                counts["unreadable"] += 1
                progress.advance(task)
                continue
            chunk.append(item)
            if len(chunk) >= TRIGGER_CHUNK:
                _add(counts, _trigger_chunk(ops, activation, chunk))
                progress.advance(task, len(chunk))
                chunk = []
        if chunk:
            _add(counts, _trigger_chunk(ops, activation, chunk))
            progress.advance(task, len(chunk))
    return counts


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


# -- worker ----------------------------------------------------------------------------------------


@app.command()
def worker(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once nothing is due or waiting to retry.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Upper bound of pushes in flight in this process (LINEOA_EXPORT_CONCURRENCY).", min=1),
    ] = None,
) -> None:
    """Deliver due events to LINE (Ctrl-C drains and exits)."""
    import logging

    from .views import describe_results, run_worker_with_progress

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx = context(concurrency=concurrency)
    stats = guarded(lambda: run_worker_with_progress(ctx, until_idle=until_idle, console=err))
    err.print(f"worker done: {describe_results(stats)}")


# -- log -------------------------------------------------------------------------------------------


@app.command()
def log(
    activation: str,
    format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    failed: Annotated[bool, typer.Option("--failed", help="Only events that failed for good.")] = False,
    state: Annotated[
        str | None,
        typer.Option(
            help="Only events in this state: queued, retrying, paused, delivered, failed, suppressed, deferred."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the newest N events.", min=1)] = None,
) -> None:
    """The activation table: every event, its state, status code, error and attempts."""
    from .. import activation_table

    if format not in ("table", "json", "csv"):
        fail("--format: must be table, json or csv", 2)
    states = (None, "queued", "retrying", "paused", "delivered", "failed", "suppressed", "deferred")
    if state not in states or (failed and state):
        fail(
            "--state: must be queued, retrying, paused, delivered, failed, suppressed or deferred "
            "(and not with --failed)",
            2,
        )
    ops = operations()
    filters = activation_table.Filters(state="failed" if failed else state)
    if limit is not None:
        entries, _ = guarded(lambda: ops.table_page(activation, filters, limit=limit))
    else:
        entries = list(guarded(lambda: ops.table_rows(activation, filters)))
    entries.reverse()  # oldest first reads naturally
    if format == "json":
        sys.stdout.write(json.dumps(entries, ensure_ascii=False, indent=2) + "\n")
    elif format == "csv":
        sys.stdout.write(activation_table.to_csv(entries))
    else:
        from .views import activation_table_view

        out.print(activation_table_view(activation, entries))


# -- serve and API keys ------------------------------------------------------------------------------

apikey_app = typer.Typer(help="API keys for 'lineoa-export serve'.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API and console only (run `worker` processes elsewhere).")
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option(help="Upper bound of pushes in flight in this process's worker.", min=1)
    ] = None,
) -> None:
    """Run the JSON API (/v1, /openapi.json, /metrics), the console and, unless --no-worker, the delivery worker."""
    import logging

    from ..web.service import serve as run_service

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ctx = context(concurrency=concurrency)
    guarded(lambda: asyncio.run(run_service(ctx, host=host, port=port, with_worker=not no_worker)))


@apikey_app.command("create")
def apikey_create(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            help="admin: everything; operator: activations, triggers, the activation table (no credentials, "
            "no keys); trigger: only POST .../triggers; read: the activation table and metrics."
        ),
    ] = "admin",
) -> None:
    """Create an API key with a role; it is printed once and stored only as a hash."""
    ops = operations()
    key = guarded(lambda: ops.create_apikey(name, role))
    err.print(f"created API key [bold]{name}[/bold] (role {role}); it will not be shown again:")
    print(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (names, roles and dates only)."""
    from ..activation_table import iso

    ops = operations()
    table = Table("name", "role", "created", "status")
    for k in ops.list_apikeys():
        status = f"revoked {iso(k.revoked_at)}" if k.revoked_at else "active"
        table.add_row(k.name, k.role, iso(k.created_at), status)
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke an API key at once."""

    ops = operations()
    guarded(lambda: ops.revoke_apikey(name))
    out.print(f"revoked API key {name}")


# -- simulator and demo ------------------------------------------------------------------------------


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    fault_500: Annotated[float, typer.Option(help="Probability of a 500 answer.")] = 0.0,
    fault_502: Annotated[float, typer.Option(help="Probability of a 502 answer.")] = 0.0,
    fault_503: Annotated[float, typer.Option(help="Probability of a 503 answer.")] = 0.0,
    fault_504: Annotated[float, typer.Option(help="Probability of a 504 answer.")] = 0.0,
    fault_rate_429: Annotated[float, typer.Option(help="Probability of a rate-limit 429.")] = 0.0,
    latency_ms: Annotated[float, typer.Option(help="Added latency per push, milliseconds.")] = 0.0,
    drop: Annotated[float, typer.Option(help="Probability of dropping the connection.")] = 0.0,
    hang: Annotated[float, typer.Option(help="Probability of answering nothing for --hang-seconds.")] = 0.0,
    hang_seconds: Annotated[float, typer.Option(help="How long a hang lasts.")] = 30.0,
    quota: Annotated[int | None, typer.Option(help="Monthly message quota of the demo channel.")] = None,
    rate_limit: Annotated[float, typer.Option(help="Push requests per second the channel allows.")] = 2000.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
) -> None:
    """Run the LINE simulator (demo channel token: demo-access-token)."""
    from pydantic import ValidationError

    from ..simulator import ChannelConfig, SimulatorOptions, serve_forever

    try:
        options = SimulatorOptions(
            channels=[ChannelConfig(quota=quota, rate_limit_per_second=rate_limit)],
            fault_500=fault_500,
            fault_502=fault_502,
            fault_503=fault_503,
            fault_504=fault_504,
            fault_rate_429=fault_rate_429,
            latency_ms=latency_ms,
            drop_probability=drop,
            hang_probability=hang,
            hang_seconds=hang_seconds,
            seed=seed,
        )
    except ValidationError as exc:
        from ..activations import problems_from_pydantic

        fail("; ".join(str(p) for p in problems_from_pydantic(exc)), 2)
    serve_forever(options, host, port)


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="How many sample triggers to fire.", min=1, max=100_000)] = 300,
) -> None:
    """Run everything on embedded defaults: simulator, authentication, activation, triggers, delivery."""
    from .demo import run_demo

    guarded(lambda: run_demo(events=events, console=out))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
