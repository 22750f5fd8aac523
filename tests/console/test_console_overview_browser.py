"""The overview and the live activation table in a real browser (Debian's Chromium, Playwright).

Half an hour of pushes is delivered to the threaded LINE simulator on a fake clock (a batch every
five minutes, some scripted to fail or to be retried), LINE's statistics and a reconciliation are
fetched and stored, and then: the overview's charts are there with one bar per busy minute and
figures that match the activation table; with the activation page open, more events are triggered
and delivered and their rows appear without a reload; the overview's cards follow too. The README's
pictures of the overview and of the activation table are taken here.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from pathlib import Path
from typing import Any

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    browser_settings,
    collect_console_errors,
    deliver,
    log_in,
    playwright_or_skip,
    screenshot,
    served,
)

from lineoa_export import activation_table, activations, apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.context import Context, open_context
from lineoa_export.delivery import triggers
from lineoa_export.operations import Operations
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import ThreadedSimulator, user_id
from lineoa_export.web.console.live import COUNTS_SECONDS

sync_api = playwright_or_skip()

BATCHES = 7  # one every five minutes
PER_BATCH = 6
QUOTA = 1000


def history(ctx: Context, clock: FakeClock, sim: ThreadedSimulator) -> None:
    """Half an hour of a welcome campaign: a retried push (500), a refused one (400), a dropped one."""
    for batch in range(BATCHES):
        first = batch * PER_BATCH
        sim.options.script = {user_id(first + 1): [500], user_id(first + 2): [400], user_id(first + 3): ["drop"]}
        numbers = range(first, first + PER_BATCH)
        events = [{"event_id": f"signup-{n}", "line_user_id": user_id(n), "name": "Ann"} for n in numbers]
        if batch == BATCHES - 1:
            events.append({"event_id": "signup-no-name", "line_user_id": user_id(999)})  # fails to render
        triggers.accept(ctx.db, "welcome", events, now=clock.now())
        deliver(ctx)
        clock.advance(300)


def insight(ctx: Context) -> None:
    """What serve fetches in the background: LINE's statistics of the unit, and yesterday's reconciliation."""

    async def ask() -> None:
        ops = Operations(ctx)
        await ops.activation_stats("welcome")
        await ops.reconcile("line")

    thread = threading.Thread(target=lambda: asyncio.run(ask()))
    thread.start()
    thread.join(30)


def test_overview_charts_and_a_live_activation_table(tmp_path: Path, sim: ThreadedSimulator) -> None:
    sim.options.channels[0].quota = QUOTA
    sim.options.engagement.open_rate = 1.0  # enough viewers for LINE to give a figure (20 or more)
    # The history starts 35 minutes ago, ten seconds into a minute: each batch has a minute of its own.
    clock = FakeClock(start=math.floor(time.time() / 60) * 60 - 35 * 60 + 10)
    settings = browser_settings(tmp_path, "overview")
    ctx = open_context(settings, clock=clock)
    now = clock.now()
    key = apikeys.create(ctx.db, "ops", now=now)
    creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None)
    authentications.create(ctx.db, ctx.vault, name="line", credentials=creds, api_url=sim.url, now=now)
    spec = {"name": "welcome", "description": "Welcome message after sign-up", "authentication": "line",
            "recipient": "{{line_user_id}}", "messages": [{"type": "text", "text": "Welcome, {{name}}!"}],
            "max_retries": 2, "initial_retry_delay": 2}  # fmt: skip
    activations.create(ctx.db, activations.parse_spec(spec), now=now)
    history(ctx, clock, sim)
    insight(ctx)
    table = list(activation_table.iterate(ctx.db, "welcome"))
    delivered = sum(e["state"] == "delivered" for e in table)
    failed = sum(e["state"] == "failed" for e in table)
    assert (delivered, failed) == (BATCHES * (PER_BATCH - 1), BATCHES + 1)

    with served(ctx) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors = collect_console_errors(page)
            log_in(page, base, key)
            page.click("nav >> text=Overview")
            page.click(".overview-links >> text=welcome")
            page.wait_for_url(f"{base}/console/overview/activations/welcome")
            check_overview(page, delivered, failed)
            screenshot(page, "overview", readme=True)
            # the overview's figures follow by themselves too
            triggers.accept(ctx.db, "welcome", [{"line_user_id": user_id(400), "name": "Cy"}], now=clock.now())
            deliver(ctx)
            page.wait_for_selector(f"[data-card=Delivered] .stat-value:text-is('{delivered + 1}')")

            page.goto(f"{base}/console/activations/welcome")
            watch_rows_arrive(page, ctx, clock, delivered + 1)
            screenshot(page, "activation_table", readme=True)

            page.click("a.button:has-text('Overview')")
            page.click("text=Channel line")
            assert page.inner_text("[data-card=Delivered] .stat-value") == str(delivered + 4)
            assert errors == [], errors  # no CSP violation, no script error
        finally:
            browser.close()
    ctx.close()


def check_overview(page: Any, delivered: int, failed: int) -> None:
    """The figures are the activation table's; the charts have one bar per busy minute, with labels."""

    def card(name: str) -> str:
        return str(page.inner_text(f"[data-card='{name}'] .stat-value"))

    assert (card("Delivered"), card("Failed"), card("Retried")) == (str(delivered), str(failed), str(2 * BATCHES))
    assert card("Quota left") == f"{QUOTA - delivered:,}"
    assert card("Reconciliation") != "none yet"
    pushes = "svg.chart.stacked"
    assert page.locator(f"{pushes} rect.bar[data-series=delivered]").count() == BATCHES
    assert page.locator(f"{pushes} rect.bar[data-series=failed]").count() == BATCHES
    assert page.locator(f"{pushes} rect.bar[data-series=retried]").count() == BATCHES
    legend = page.locator(f"{pushes} g.legend").all_text_contents()
    assert legend == [f"delivered {delivered}", f"retried {2 * BATCHES}", f"failed {BATCHES}"]
    ticks = page.locator(f"{pushes} text.tick").all_text_contents()
    assert "0" in ticks and any(t.count(":") == 1 for t in ticks)  # a y axis from 0, minutes as HH:MM
    reasons = page.locator("svg.chart.hbars").nth(1)
    assert reasons.locator("text.label").all_text_contents() == ["400", "500", "connect error"]
    assert reasons.locator("text.value").all_text_contents() == [str(BATCHES)] * 3
    assert page.locator("svg.chart.meter").count() == 2  # rate and quota
    engagement = page.inner_text("#engagement")
    assert "welcome" in engagement and "fewer than 20" in engagement  # clicks: no link to click


def watch_rows_arrive(page: Any, ctx: Context, clock: FakeClock, delivered_before: int) -> None:
    """New events show up in the open page without a reload, first queued, then delivered."""
    page.evaluate("window.notReloaded = true")
    late = [{"event_id": f"late-{n}", "line_user_id": user_id(500 + n), "name": "Bo"} for n in range(3)]
    triggers.accept(ctx.db, "welcome", late, now=clock.now())
    page.wait_for_selector("tr.queued a:has-text('late-0')")
    deliver(ctx)
    page.wait_for_selector("tr.delivered a:has-text('late-2')")
    clock.advance(COUNTS_SECONDS)  # the counts, shared by every open tab, follow within 10 s
    page.wait_for_selector(f"#activation-summary dd.count.delivered:text-is('{delivered_before + 3}')")
    assert page.evaluate("window.notReloaded") is True
