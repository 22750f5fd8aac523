"""What the terminal shows: the worker's progress bar and the activation table view."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..context import Context
from ..delivery import outbox
from ..delivery.outbox import Claimed, Result
from ..delivery.outcomes import Outcome
from ..delivery.worker import Worker, WorkerStats
from ..insight.background import Background

STATE_STYLE = {
    "delivered": "green",
    "failed": "red",
    "retrying": "yellow",
    "paused": "magenta",
    "queued": "cyan",
    "suppressed": "bright_black",
    "deferred": "blue",
}


def run_worker_with_progress(ctx: Context, *, until_idle: bool, console: Console) -> WorkerStats:
    return asyncio.run(_run(ctx, until_idle=until_idle, console=console))


async def _run(ctx: Context, *, until_idle: bool, console: Console) -> WorkerStats:
    pending = outbox.pending(ctx.db, now=ctx.clock.now()).count
    columns: list[Any] = [
        SpinnerColumn(),
        TextColumn("delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("worker", total=pending if until_idle else None, summary="")
        counts: dict[str, int] = {}
        finished = [0]

        def on_result(_: Claimed, result: Result, __: Outcome | None) -> None:
            # Counting only: rich's lock is shared with its refresh thread, and taking it for every
            # result stalled the event loop while a frame was drawn (pushes left in bursts).
            counts[result.state] = counts.get(result.state, 0) + 1
            if result.state.is_final:
                finished[0] += 1

        def show() -> None:
            summary = " ".join(
                f"[{STATE_STYLE.get(k, '')}]{RESULT_WORDS.get(k, k)} {v}[/]" for k, v in sorted(counts.items())
            )
            progress.update(task, completed=finished[0], summary=summary)

        worker = Worker(ctx.db, ctx.vault, ctx.settings, clock=ctx.clock, listener=on_result)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, worker.stop)
        painter = asyncio.create_task(_every(PROGRESS_EVERY, show))
        # A worker that runs until stopped also does the background insight work (as `serve` does).
        background = None if until_idle else asyncio.create_task(Background(ctx).run())
        try:
            return await worker.run(until_idle=until_idle)
        finally:
            painter.cancel()
            if background is not None:
                background.cancel()
            show()


#: Seconds between progress bar updates while the worker runs.
PROGRESS_EVERY = 0.2


async def _every(seconds: float, fn: Callable[[], None]) -> None:
    while True:
        fn()
        await asyncio.sleep(seconds)


# What a result says, in words: a "retrying" result is one more retry scheduled, not an event.
RESULT_WORDS = {
    "delivered": "delivered",
    "failed": "failed",
    "retrying": "retries scheduled",
    "paused": "paused",
    "queued": "released",
}


def describe_results(stats: WorkerStats) -> str:
    if not stats.attempts and not stats.states:
        return "nothing to do"
    parts = [f"{RESULT_WORDS.get(k, k)} {v}" for k, v in sorted(stats.states.items())]
    return f"{stats.attempts} attempts; " + ", ".join(parts)


def short_id(value: str | None) -> str:
    """``U0123…cdef``: enough to tell recipients apart in a terminal."""
    if not value:
        return ""
    return value if len(value) <= 12 else f"{value[:5]}…{value[-4:]}"


def activation_table_view(activation: str, entries: list[dict[str, Any]]) -> Table:
    table = Table(title=f"activation table: {activation}")
    table.add_column("event", no_wrap=True)
    table.add_column("recipient", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("status", justify="right", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("attempt history", overflow="fold")
    table.add_column("error", overflow="fold", ratio=1)
    for e in entries:
        style = STATE_STYLE.get(e["state"], "")
        history = " → ".join(
            str(a["status_code"]) if a["status_code"] is not None else "no answer" for a in e["attempt_log"]
        )
        table.add_row(
            e["event_id"],
            short_id(e["recipient"]),
            Text(e["state"], style),
            "" if e["status_code"] is None else str(e["status_code"]),
            str(e["attempts"]),
            history,
            e["error"] or "",
        )
    return table
