"""The console in a real browser: Debian's Chromium driven by Playwright, the app served by uvicorn.

Log in, create an authentication and a triggered activation through the forms, trigger events
through the package, deliver them to the in-process LINE simulator, and read the activation
table. Screenshots land in ``tests/console/artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_settings, deliver, playwright_or_skip, served

from lineoa_export import activation_table, apikeys
from lineoa_export.context import open_context
from lineoa_export.delivery import triggers
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import ThreadedSimulator, user_id

sync_api = playwright_or_skip()


def test_console_in_chromium(tmp_path: Path, sim: ThreadedSimulator) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    settings = browser_settings(tmp_path, "browser")
    ctx = open_context(settings)
    key = apikeys.create(ctx.db, "ops", now=ctx.clock.now())
    with served(ctx) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors: list[str] = []
            # 4xx answers (a 422 form, the absent favicon) log "Failed to load resource": not errors here
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )

            # log in
            page.goto(f"{base}/console/activations")
            assert page.url.startswith(f"{base}/console/login")
            page.fill("#api_key", key)
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{base}/console/activations")
            assert page.is_visible("h1:has-text('Triggered activations')")
            # the stylesheet loaded (CSP allows 'self' styles)
            assert page.eval_on_selector("header.top", "e => getComputedStyle(e).borderBottomStyle") == "solid"
            cookie = next(c for c in page.context.cookies() if c["name"] == "lineoa_console")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and key not in cookie["value"]

            # create an authentication (skip the test)
            page.click("nav >> text=Authentications")
            page.fill("#name", "line")
            page.fill("#access_token", DEFAULT_ACCESS_TOKEN)
            page.fill("#api_url", sim.url)
            page.check("input[name=skip_test]")
            page.click("button:has-text('Create authentication')")
            page.wait_for_selector(".flash.ok")
            assert "Authentication 'line' created" in page.inner_text(".flash.ok")
            assert DEFAULT_ACCESS_TOKEN not in page.content()
            page.screenshot(path=str(ARTIFACTS / "authentications.png"), full_page=True)

            # create a triggered activation through the form: the defaults are there
            page.click("nav >> text=Triggered activations")
            page.click("text=New triggered activation")
            assert page.input_value("#max_retries") == "3"
            assert page.input_value("#initial_retry_delay") == "2"
            assert page.input_value("#retry_delay_multiple") == "2"
            assert page.input_value("#authentication") == "line"
            page.fill("#name", "welcome")
            page.fill("#description", "Welcome message after sign-up")
            page.fill("#recipient", "{{line_user_id}}")
            page.fill("#messages", '[{"type": "text", "text": "Welcome, {{name}}!"}]')
            page.fill("#initial_retry_delay", "-2")
            page.click("button.primary:has-text('Create')")
            assert "must be 0 or more seconds" in page.inner_text(".flash.error")
            page.fill("#initial_retry_delay", "2")
            page.screenshot(path=str(ARTIFACTS / "new_activation.png"), full_page=True)
            page.click("button.primary:has-text('Create')")
            page.wait_for_url(f"{base}/console/activations/welcome")

            # events in, through the package; delivered to the simulator
            sim.options.script = {user_id(2): [400], user_id(3): [429]}
            triggers.accept(
                ctx.db,
                "welcome",
                [
                    {"event_id": "signup-1", "line_user_id": user_id(1), "name": "Ann"},
                    {"event_id": "signup-2", "line_user_id": user_id(2), "name": "Bob"},
                    {"event_id": "signup-3", "line_user_id": user_id(3), "name": "Chai"},
                    {"event_id": "signup-4", "line_user_id": user_id(4)},  # no name: fails to render
                ],
                now=ctx.clock.now(),
            )
            deliver(ctx)
            states = {e["event_id"]: e["state"] for e in activation_table.iterate(ctx.db, "welcome")}
            assert states == {
                "signup-1": "delivered",
                "signup-2": "failed",
                "signup-3": "delivered",
                "signup-4": "failed",
            }

            # the activation table shows status codes and errors
            page.reload()
            rows = {
                cells[0]: cells
                for cells in (r.locator("td").all_inner_texts() for r in page.locator("table.log tbody tr").all())
            }
            assert set(rows) == {"signup-1", "signup-2", "signup-3", "signup-4"}
            # event id, recipient, state, delivered, status code, error, attempts, time
            assert rows["signup-1"][2:5] == ["delivered", "yes", "200"]
            assert rows["signup-2"][2:5] == ["failed", "no", "400"] and rows["signup-2"][5]
            assert rows["signup-3"][4] == "200" and rows["signup-3"][6] == "2"  # one retry after the 429
            assert rows["signup-4"][2] == "failed" and "name" in rows["signup-4"][5]
            page.screenshot(path=str(ARTIFACTS / "activation_table.png"), full_page=True)

            # filter, then one event's attempts
            page.select_option("select[name=state]", "failed")
            page.click("button:has-text('Filter')")
            assert len(page.query_selector_all("table.log tbody tr")) == 2
            page.click("text=signup-2")
            assert page.is_visible("text=Replay this event")
            assert "400" in page.inner_text("h2:has-text('Attempts') + section")
            page.screenshot(path=str(ARTIFACTS / "event.png"), full_page=True)

            # log out; the cookie copied before, in a fresh browser, no longer opens the console
            copied = next(c for c in page.context.cookies() if c["name"] == "lineoa_console")
            page.click("button:has-text('Log out')")
            page.wait_for_url(f"{base}/console/login")
            assert "Logged out." in page.inner_text(".flash.ok")
            thief = browser.new_context()
            thief.add_cookies([copied])
            stolen = thief.new_page()
            stolen.goto(f"{base}/console/activations")
            assert stolen.url.startswith(f"{base}/console/login")
            thief.close()

            assert errors == [], errors  # no CSP violation or other console error
        finally:
            browser.close()
    ctx.close()
