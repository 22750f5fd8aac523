"""The console's overview pages and the activation table's live parts, over HTTP (no browser):
who may see them, what they show, 404 pages, no secret, and LINE asked only for a logged-in reader."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from browser_support import deliver
from console_support import Console, console_app

from lineoa_export import activations, apikeys, authentications
from lineoa_export.delivery import triggers
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import ThreadedSimulator, user_id

OVERVIEW = "/console/overview/activations/welcome"
CHANNEL = "/console/overview/channels/line"
PAGES = ["/console/overview", OVERVIEW, f"{OVERVIEW}/live", CHANNEL, f"{CHANNEL}/live"]


@pytest.fixture
def app(tmp_path: Path, sim: ThreadedSimulator) -> Iterator[Console]:
    """An authentication on the simulator, an activation, 4 events: 2 delivered, 1 failed (400), 1 failed
    to render; logged in as nobody yet."""
    with console_app(tmp_path) as c:
        db, now = c.ctx.db, c.ctx.clock.now()
        creds = authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None)
        authentications.create(db, c.ctx.vault, name="line", credentials=creds, api_url=sim.url, now=now)
        spec = {"name": "welcome", "authentication": "line", "recipient": "{{line_user_id}}",
                "messages": [{"type": "text", "text": "Hi {{name}}"}], "max_retries": 0}  # fmt: skip
        activations.create(db, activations.parse_spec(spec), now=now)
        sim.options.script = {user_id(3): [400]}
        events = [{"event_id": f"e{n}", "line_user_id": user_id(n), "name": "Ann"} for n in (1, 2, 3)]
        triggers.accept(db, "welcome", [*events, {"event_id": "e4", "line_user_id": user_id(4)}], now=now)
        deliver(c.ctx)
        yield c


def quota_requests(sim: ThreadedSimulator) -> int:
    return sum(sim.stats()["requests_by_endpoint"].get("quota", {}).values())


def as_role(c: Console, role: str) -> Console:
    key = apikeys.create(c.ctx.db, role, now=c.ctx.clock.now(), role=role)
    assert c.login(key).status_code == 303
    return c


def test_a_reader_sees_the_overview_of_an_activation_and_of_its_channel(app: Console, sim: ThreadedSimulator) -> None:
    c = as_role(app, "read")
    index = c.client.get("/console/overview")
    assert index.status_code == 200 and 'href="/console/overview"' in index.text  # the nav link
    assert f'href="{OVERVIEW}"' in index.text and f'href="{CHANNEL}"' in index.text

    page = c.client.get(OVERVIEW)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    html = unescape(page.text)
    card = r'data-card="([^"]+)">\s*<div class="stat-label">[^<]*</div>\s*<div class="stat-value[^"]*">([^<]*)'
    cards = dict(re.findall(card, html))
    assert (cards["Delivered"], cards["Failed"], cards["Retried"], cards["Waiting"]) == ("2", "2", "0", "0")
    assert cards["Quota left"] == "no limit"  # the simulator's channel has none
    assert html.count('<svg class="chart') == 6  # pushes, outcomes, reasons, queue, latency, rate; no quota meter
    per_minute = re.findall(r"<title>\d\d:\d\d: (\d+) (delivered|failed|retried)</title>", html)
    assert sum(int(n) for n, series in per_minute if series == "delivered") == 2
    assert sum(int(n) for n, series in per_minute if series == "failed") == 1  # e4 was never pushed
    assert 'data-series="400"' in html  # the retry and failure reasons name LINE's status code
    assert "Nothing waiting: the queue is empty" in html
    assert "Not reconciled yet" in html and "lineoa-export stats welcome" in html
    assert 'src="/console/static/live.js"' in html and f'data-live="{OVERVIEW}/live"' in html
    assert quota_requests(sim) == 1

    channel = unescape(c.client.get(CHANNEL).text)
    assert "LINE channel" in channel and 'href="/console/overview/activations/welcome"' in channel
    live = c.client.get(f"{CHANNEL}/live")
    assert live.status_code == 200 and live.text.lstrip().startswith('<div id="overview-figures" data-live-part>')
    assert "<header" not in live.text  # figures only, no layout
    assert quota_requests(sim) == 1  # asked once a minute per channel, not once a page


def test_pages_link_to_the_overviews(app: Console) -> None:
    c = as_role(app, "admin")
    assert f'href="{OVERVIEW}"' in c.client.get("/console/activations/welcome").text
    assert f'href="{CHANNEL}"' in c.client.get("/console/authentications").text


def test_without_a_session_the_overview_sends_to_login_and_line_is_not_asked(
    app: Console, sim: ThreadedSimulator
) -> None:
    for path in PAGES:
        answer = app.client.get(path, allow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")
    assert quota_requests(sim) == 0


def test_a_trigger_key_cannot_log_in_to_see_it(app: Console, sim: ThreadedSimulator) -> None:
    key = apikeys.create(app.ctx.db, "journeys", now=app.ctx.clock.now(), role="trigger")
    assert app.login(key).status_code == 403
    assert app.client.get(OVERVIEW, allow_redirects=False).status_code == 303
    assert quota_requests(sim) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/console/overview/activations/nope",
        "/console/overview/activations/nope/live",
        "/console/overview/channels/nope",
        "/console/overview/channels/nope/live",
        "/console/overview/channels/a%00b",
        "/console/overview/activations/a%00b",
        "/console/activations/nope/live",
    ],
)
def test_what_does_not_exist_is_a_404_page(app: Console, path: str) -> None:
    c = as_role(app, "read")
    answer = c.client.get(path)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "Not found" in answer.text


def test_no_secret_is_rendered(app: Console) -> None:
    c = as_role(app, "read")
    for path in [*PAGES, "/console/activations/welcome/live"]:
        text = c.client.get(path).text
        assert DEFAULT_ACCESS_TOKEN not in text and "Bearer" not in text, path


def test_the_activation_tables_live_parts_keep_its_filters(app: Console) -> None:
    c = as_role(app, "read")
    page = c.client.get("/console/activations/welcome?state=failed").text
    assert 'data-live="/console/activations/welcome/live?state=failed"' in page
    live = c.client.get("/console/activations/welcome/live?state=failed")
    assert live.status_code == 200 and "<header" not in live.text
    assert re.findall(r'id="(activation-[a-z]+)" data-live-part', live.text) == [
        "activation-summary",
        "activation-rows",
    ]
    assert set(re.findall(r"/events/(e\d)", live.text)) == {"e3", "e4"}
    # newer events appear in the next answer, in the filtered rows only when they match
    triggers.accept(c.ctx.db, "welcome", [{"event_id": "e5", "line_user_id": user_id(5)}], now=c.ctx.clock.now())
    again = c.client.get("/console/activations/welcome/live?state=failed").text
    assert set(re.findall(r"/events/(e\d)", again)) == {"e3", "e4", "e5"}
    everything = c.client.get("/console/activations/welcome/live").text
    assert set(re.findall(r"/events/(e\d)", everything)) == {"e1", "e2", "e3", "e4", "e5"}
    # an older page (here: the events before row 3) stays as it was loaded: see test_console_live.py
    paged = c.client.get("/console/activations/welcome?before=3").text
    assert set(re.findall(r"/events/(e\d)", paged)) == {"e1", "e2"} and "data-live=" not in paged
