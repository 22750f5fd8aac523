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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from cryptography.fernet import Fernet
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import activation_table, activations, authentications, followers
from ..clock import SystemClock
from ..context import Context, open_context
from ..delivery import triggers
from ..settings import Settings
from ..simulator import SimulatorOptions, running_simulator
from ..simulator.options import DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_SECRET
from ..webhooks import signature_for as signature
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
        console.print(
            f"[bold]LINE simulator[/bold] at {sim.url} (5% 503, 3% 500, 3% rate-limit 429, 1% dropped)", markup=True
        )
        # With the channel secret, so the demo can take LINE's follow / unfollow webhooks too.
        creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, DEFAULT_CHANNEL_SECRET)
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
            f"authentication [bold]demo-line-oa[/bold] tested: {escape(bot.display_name or '?')}; activation "
            f"[bold]welcome-points[/bold]: retries 3, waits 0.2 s × 2ⁿ",
            markup=True,
        )
        audience_events = _audience_care_setup(ctx, sim, events, console)
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
        console.print(_audience_care_summary(ctx, entries, audience_events, sim.record.stats()))


def _summary(entries: list[dict[str, Any]], attempts: int, elapsed: float, sim: dict[str, Any]) -> Table:
    states: dict[str, int] = {}
    for e in entries:
        states[e["state"]] = states.get(e["state"], 0) + 1
    table = Table(title="summary", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for state in ("delivered", "failed", "suppressed", "deferred", "retrying", "paused", "queued"):
        if states.get(state):
            table.add_row(f"events {state}", str(states[state]))
    table.add_row("push attempts", str(attempts))
    table.add_row("pushes LINE accepted", str(sim["accepted_pushes"]))
    table.add_row("duplicates suppressed by retry key (409)", str(sim["duplicates_suppressed"]))
    table.add_row("most pushes to one recipient", str(sim["max_accepted_per_recipient"]))
    table.add_row("delivery time", f"{elapsed:.2f} s")
    return table


# -- audience care (issue 9): blocked users, a frequency cap, quiet hours ----------------------------

BLOCKED = 3  # the first sample users unfollow the account before the triggers fire


def _audience_care_setup(ctx: Context, sim: Any, events: list[dict[str, Any]], console: Console) -> list[str]:
    """Three users block the account (a signed unfollow webhook), one user reloads a capped cart page
    three times, and a digest fires inside its quiet hours. Returns the event ids of the last two."""
    now = time.time()
    users = [e["line_user_id"] for e in events[:BLOCKED]]
    unfollows = [
        {
            "type": "unfollow",
            "mode": "active",
            "timestamp": int(now * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": uuid.uuid4().hex.upper()[:26],
            "deliveryContext": {"isRedelivery": False},
        }
        for user in users
    ]
    body = orjson.dumps({"destination": "U" + "0" * 32, "events": unfollows})
    followers.receive(ctx.db, ctx.vault, "demo-line-oa", body, signature(DEFAULT_CHANNEL_SECRET, body), now=now)
    for user in users:
        sim.record.note_follow(user, False, int(now * 1000))
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    quiet = f"{(tokyo - timedelta(hours=1)):%H:00}-{(tokyo + timedelta(hours=2)):%H:00}"
    base = {"authentication": "demo-line-oa", "recipient": "{{line_user_id}}", "messages": DEMO_MESSAGES[:1]}
    activations.create(
        ctx.db, activations.parse_spec({**base, "name": "cart-reminder", "frequency_cap": "1/24h"}), now=now
    )
    activations.create(ctx.db, activations.parse_spec({**base, "name": "night-digest", "quiet_hours": quiet}), now=now)
    shopper = {k: v for k, v in events[-2].items() if k != "event_id"}
    triggers.accept(ctx.db, "cart-reminder", [{**shopper, "event_id": f"cart-{n}"} for n in (1, 2, 3)], now=now)
    triggers.accept(ctx.db, "night-digest", [{**shopper, "event_id": "digest-1"}], now=now)
    console.print(
        f"{BLOCKED} users blocked the account (unfollow webhook); cart-reminder capped at 1/24h (fired 3 times "
        f"for one user); night-digest in quiet hours {quiet} Asia/Tokyo"
    )
    return ["cart-1", "cart-2", "cart-3", "digest-1"]


def _audience_care_summary(ctx: Context, entries: list[dict[str, Any]], ids: list[str], sim: dict[str, Any]) -> Table:
    others = [activation_table.event(ctx.db, "cart-reminder", i) for i in ids[:3]]
    others.append(activation_table.event(ctx.db, "night-digest", ids[3]))
    blocked = sum(1 for e in entries if e["state"] == "suppressed")
    capped = sum(1 for e in others if e["state"] == "suppressed")
    deferred = [e for e in others if e["state"] == "deferred"]
    table = Table(title="audience care", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("suppressed: blocked the account", str(blocked))
    table.add_row("suppressed: frequency cap 1/24h", str(capped))
    table.add_row("deferred: quiet hours (due at)", ", ".join(e["due_at"] or "?" for e in deferred) or "0")
    table.add_row("pushes saved (no quota used)", str(blocked + capped))
    table.add_row("pushes LINE accepted for blocked users", str(sim["pushes_to_blocked"]))
    return table
