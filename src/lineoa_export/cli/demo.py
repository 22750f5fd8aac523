"""``lineoa-export demo``: the whole product on embedded defaults, offline, in one command.

A LINE simulator starts in-process on a free loopback port with a few faults switched on;
a demo authentication and activation are created in a temporary database; a few hundred
sample triggers are fired (some broken on purpose); the worker delivers them with a
progress bar; the activation table and a summary are printed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table

from .. import activation_table, activations, authentications
from ..clock import SystemClock
from ..context import Context, open_context
from ..delivery import triggers
from ..settings import Settings
from ..simulator import SimulatorOptions, running_simulator
from ..simulator.options import DEFAULT_ACCESS_TOKEN
from .views import activation_table_view, run_worker_with_progress

DEMO_MESSAGES = [
    {"type": "text", "text": "Hi {{ first_name }}! Your {{tier}} points: {{ points }}."},
    {"type": "sticker", "packageId": "446", "stickerId": "1988"},
]


def sample_events(count: int, rng_seed: int = 7) -> list[dict[str, Any]]:
    """Mostly good profiles; a few duplicates, one missing variable, one invalid recipient."""
    rnd = uuid.UUID(int=rng_seed)
    events: list[dict[str, Any]] = []
    for i in range(count):
        user = "U" + uuid.uuid5(rnd, str(i)).hex
        events.append(
            {
                "event_id": f"evt-{i:05d}",
                "line_user_id": user,
                "first_name": f"Customer {i}",
                "tier": ["silver", "gold", "platinum"][i % 3],
                "points": 100 + i,
            }
        )
    if count >= 10:
        events[3] = {**events[3], "line_user_id": "not-a-line-user"}  # fails: invalid recipient
        del events[5]["first_name"]  # fails: Variable not found
        events.append(dict(events[1]))  # duplicate event_id: not re-sent
    return events


def demo_options(events: list[dict[str, Any]]) -> SimulatorOptions:
    options = SimulatorOptions(fault_500=0.03, fault_503=0.05, fault_rate_429=0.03, drop_probability=0.01, seed=42)
    if len(events) >= 10:
        # Scripted, so every run shows the same stories in the activation table:
        options.script = {
            events[7]["line_user_id"]: [503, 503, 503, 503],  # retried 3 times, then stops for good
            events[8]["line_user_id"]: [400],  # LINE refuses: fails at once, no retry
            events[9]["line_user_id"]: ["accept-then-drop"],  # answer lost; the retry gets 409 = delivered
        }
    return options


def run_demo(*, events: int = 300, console: Console) -> None:
    with tempfile.TemporaryDirectory(prefix="lineoa-export-demo-") as tmp:
        # The demo's own key and database, thrown away at the end; its simulator listens on loopback,
        # so the demo allows that host itself (see api_hosts).
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'demo.db'}",
            secret_key=Fernet.generate_key().decode(),
            allowed_api_hosts=("127.0.0.1",),
        )
        ctx = open_context(settings, clock=SystemClock())
        try:
            asyncio.run(_demo(ctx, events, console))
        finally:
            ctx.close()


async def _demo(ctx: Context, count: int, console: Console) -> None:
    events = sample_events(count)
    async with running_simulator(demo_options(events)) as sim:
        console.print(f"[bold]LINE simulator[/bold] at {sim.url} (5% 503, 3% 500, 3% rate-limit 429, 1% dropped)")
        creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None)
        bot = await authentications.test_credentials_at(sim.url, creds, ctx.clock, ctx.timeouts, ctx.api_hosts)
        authentications.create(
            ctx.db, ctx.vault, name="demo-line-oa", credentials=creds, api_url=sim.url, bot=bot, now=time.time()
        )
        spec = activations.parse_spec(
            {
                "name": "welcome-points",
                "authentication": "demo-line-oa",
                "recipient": "{{line_user_id}}",
                "messages": DEMO_MESSAGES,
                "description": "demo: points reminder",
                # Short waits so the demo ends in seconds; the product's defaults are 3 retries, 2 s, ×2.
                "max_retries": 3,
                "initial_retry_delay": 0.2,
                "retry_delay_multiple": 2,
            }
        )
        activations.create(ctx.db, spec, now=time.time())
        console.print(
            f"authentication [bold]demo-line-oa[/bold] tested: {bot.display_name}; activation "
            f"[bold]welcome-points[/bold]: retries 3, waits 0.2 s × 2ⁿ"
        )
        results = triggers.accept(ctx.db, "welcome-points", events, now=time.time())
        by_status: dict[str, int] = {}
        for r in results:
            by_status[r.status] = by_status.get(r.status, 0) + 1
        console.print(f"fired {len(events)} triggers: " + ", ".join(f"{v} {k}" for k, v in sorted(by_status.items())))
        t0 = time.perf_counter()
        stats = await asyncio.to_thread(run_worker_with_progress, ctx, until_idle=True, console=console)
        elapsed = time.perf_counter() - t0
        entries, _ = activation_table.page(ctx.db, "welcome-points", limit=len(events) + 10)
        entries.reverse()
        failed = [e for e in entries if e["state"] != "delivered"]
        retried = [e for e in entries if e["state"] == "delivered" and e["attempts"] > 1]
        shown = failed + retried[: max(0, 25 - len(failed))]
        title = f"welcome-points: the {len(failed)} failed and {len(shown) - len(failed)} of {len(retried)} retried"
        console.print(activation_table_view(title, shown))
        console.print(_summary(entries, stats.attempts, elapsed, sim.record.stats()))


def _summary(entries: list[dict[str, Any]], attempts: int, elapsed: float, sim: dict[str, Any]) -> Table:
    states: dict[str, int] = {}
    for e in entries:
        states[e["state"]] = states.get(e["state"], 0) + 1
    table = Table(title="summary", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for state in ("delivered", "failed", "retrying", "paused", "queued"):
        if states.get(state):
            table.add_row(f"events {state}", str(states[state]))
    table.add_row("push attempts", str(attempts))
    table.add_row("pushes LINE accepted", str(sim["accepted_pushes"]))
    table.add_row("duplicates suppressed by retry key (409)", str(sim["duplicates_suppressed"]))
    table.add_row("most pushes to one recipient", str(sim["max_accepted_per_recipient"]))
    table.add_row("delivery time", f"{elapsed:.2f} s")
    return table
