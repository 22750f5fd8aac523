"""The Catalog flow in a real browser: Debian's Chromium driven by Playwright, against the LINE simulator.

Integrations Hub → Catalog (search, the LINE OA tile) → Create Authentication → Credentials →
Continue (the bot's name and picture) → a name → Done → the authentication is listed; then a
refused token: LINE's reason is shown and nothing is created. The README's screenshots of the
Catalog and of the tested bot are taken here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    browser_settings,
    collect_console_errors,
    log_in,
    playwright_or_skip,
    screenshot,
    served,
)

from lineoa_export import apikeys, authentications
from lineoa_export.context import open_context
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_SECRET
from lineoa_export.testing import ThreadedSimulator

sync_api = playwright_or_skip()

PICTURE = "https://profile.line-scdn.net/0hDemoOfficialAccount/preview"
# What LINE's CDN would send for the picture; the browser asks for it, and the test answers for LINE.
AVATAR = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 88 88"><rect width="88" height="88" fill="#ffb74d"/>'
    '<circle cx="44" cy="35" r="17" fill="#fff"/><rect x="16" y="58" width="56" height="40" rx="20" fill="#fff"/></svg>'
)


def fill_credentials(page: Any, sim_url: str, token: str) -> None:
    """Credentials step: a token, the Channel Secret Key, and (under Advanced) the simulator's URL."""
    page.fill("#access_token", token)
    page.fill("#channel_secret", DEFAULT_CHANNEL_SECRET)
    page.click("details.advanced summary")
    page.fill("#api_url", sim_url)
    page.click("button:has-text('Continue')")


def test_catalog_flow_in_chromium(tmp_path: Path, sim: ThreadedSimulator) -> None:
    sim.options.channels[0].picture_url = PICTURE
    settings = browser_settings(tmp_path, "catalog")
    ctx = open_context(settings)
    key = apikeys.create(ctx.db, "ops", now=ctx.clock.now())
    pictures: list[str] = []
    with served(ctx) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.route(
                "https://profile.line-scdn.net/**",
                lambda route: (
                    pictures.append(route.request.url),
                    route.fulfill(status=200, content_type="image/svg+xml", body=AVATAR),
                ),
            )
            errors = collect_console_errors(page)
            log_in(page, base, key)

            # Integrations Hub → Catalog: search by name, the LINE OA tile
            page.click("nav >> text=Integrations Hub")
            page.wait_for_url(f"{base}/console/integrations/catalog")
            page.fill("input[name=q]", "salesforce")
            page.press("input[name=q]", "Enter")
            page.wait_for_selector("text=No integration matches")
            assert page.locator(".tile").count() == 0
            page.fill("input[name=q]", "LINE")
            page.press("input[name=q]", "Enter")
            page.wait_for_url(f"{base}/console/integrations/catalog?q=LINE")
            assert page.locator(".tile").count() == 1
            assert page.inner_text(".tile h2") == "LINE OA Streaming Export"
            assert page.eval_on_selector(".tile-logo", "e => e.complete && e.naturalWidth > 0")
            page.hover(".tile")  # the product page: hover over the tile, then Create Authentication
            page.wait_for_function("() => getComputedStyle(document.querySelector('.tile-action')).opacity === '1'")
            screenshot(page, "catalog", readme=True)

            # Create Authentication → Credentials: only the chosen kind's fields show
            page.click(".tile >> text=Create Authentication")
            page.wait_for_url(f"{base}/console/integrations/line-oa/new")
            assert page.is_visible("#access_token") and not page.is_visible("#channel_id")
            page.check("#kind-channel")
            assert page.is_visible("#channel_id") and not page.is_visible("#access_token")
            page.check("#kind-token")
            assert page.input_value("#api_url") == "https://api.line.me"

            # Continue: LINE says whose credentials these are, with its picture (loaded by the browser)
            fill_credentials(page, sim.url, DEFAULT_ACCESS_TOKEN)
            page.wait_for_selector(".bot-name")
            assert page.inner_text(".bot-name") == "Demo Official Account"
            assert page.inner_text(".basic-id") == "@000demo"
            page.wait_for_function("() => document.querySelector('.avatar img').naturalWidth > 0")
            assert pictures == [PICTURE]
            assert page.input_value("#name") == "demo-official-account"
            assert DEFAULT_ACCESS_TOKEN not in page.content() and DEFAULT_CHANNEL_SECRET not in page.content()
            screenshot(page, "catalog_tested", readme=True)

            # a name → Done → listed
            page.fill("#name", "my-oa")
            page.click("button:has-text('Done')")
            page.wait_for_url(f"{base}/console/integrations/line-oa/done/my-oa")
            assert "Authentication “my-oa” created" in page.inner_text("h2")
            assert page.inner_text(".webhook-url").endswith("/line/webhook/my-oa")
            assert page.get_attribute("a:has-text('Create a triggered activation with it')", "href") == (
                "/console/activations/new?authentication=my-oa"
            )
            screenshot(page, "catalog_done")
            page.click("text=All authentications")
            page.wait_for_url(f"{base}/console/authentications")
            row = page.locator("tbody tr", has_text="my-oa")
            assert "Demo Official Account" in row.inner_text()

            # a refused token: LINE's reason, the form kept without its secrets, nothing created
            page.click("a.button:has-text('Create authentication')")
            page.click(".tile >> text=Create Authentication")
            fill_credentials(page, sim.url, "not-a-token-LINE-knows")
            page.wait_for_selector(".refused")
            assert "LINE refused the credentials (HTTP 401)" in page.inner_text(".refused")
            assert page.input_value("#access_token") == "" and page.input_value("#channel_secret") == ""
            assert page.input_value("#api_url") == sim.url and page.is_visible("#api_url")
            assert "not-a-token-LINE-knows" not in page.content()
            screenshot(page, "catalog_refused")
            assert [a.name for a in authentications.list_all(ctx.db)] == ["my-oa"]

            assert errors == [], errors  # no CSP violation or other console error
        finally:
            browser.close()
    ctx.close()
