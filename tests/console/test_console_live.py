"""What an open activation table costs the server while it refreshes itself (web/console/live.py):
the counts by state are shared by every tab for 10 s, only the newest page refreshes, and a slow
answer makes the page ask again later. Over HTTP, on a fake clock (no browser, no sleep)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_support import Console, console_app
from schemathesis.python.asgi import ASGIClient

from lineoa_export import activations, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.delivery import triggers
from lineoa_export.testing import user_id
from lineoa_export.web.console.live import COUNTS_SECONDS, EVERY_MS

TABLE = "/console/activations/welcome"
LIVE = TABLE + "/live"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[Console]:
    """The activation ``welcome`` with 3 queued events (nothing delivers them); logged in."""
    with console_app(tmp_path, clock=clock) as c:
        db, now = c.ctx.db, clock.now()
        creds = authentications.Credentials.from_options("tok", None, None)
        authentications.create(db, c.ctx.vault, name="line", credentials=creds, api_url="https://api.line.me", now=now)
        spec = {"name": "welcome", "authentication": "line", "recipient": "{{line_user_id}}",
                "messages": [{"type": "text", "text": "Hi"}]}  # fmt: skip
        activations.create(db, activations.parse_spec(spec), now=now)
        accept(c, 1, 2, 3)
        assert c.login().status_code == 303
        yield c


def accept(c: Console, *numbers: int) -> None:
    events = [{"event_id": f"e{n}", "line_user_id": user_id(n)} for n in numbers]
    triggers.accept(c.ctx.db, "welcome", events, now=c.ctx.clock.now())


def counted(c: Console, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The activations whose every event was read to count them by state, as it happens."""
    seen: list[str] = []
    run = c.ctx.db.run

    def spy(name: str, params: Any = None) -> Any:
        if name == "activation_counts":
            seen.append(params["name"])
        return run(name, params)

    monkeypatch.setattr(c.ctx.db, "run", spy)
    return seen


def queued_count(html: str) -> str:
    match = re.search(r'<dd class="count queued">(\d+)</dd>', html)
    assert match, html
    return match.group(1)


def rows(html: str) -> set[str]:
    return set(re.findall(r"/events/(e\d+)", html))


def test_open_tabs_share_the_counts_and_count_again_every_10_seconds(
    app: Console, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = counted(app, monkeypatch)
    assert queued_count(app.client.get(TABLE).text) == "3"  # a page load counts
    with ASGIClient(app.app) as client:
        other = Console(app.ctx, app.app, app.key, client)  # a second tab, in another session
        assert other.login().status_code == 303
        tabs = [app, other]
        for _ in range(4):  # 8 refreshes in 8 s
            for tab in tabs:
                assert queued_count(tab.client.get(LIVE).text) == "3"
            clock.advance(1)
        assert seen == ["welcome"]
        accept(app, 4)
        assert "e4" in rows(other.client.get(LIVE).text)  # the rows are read at every refresh
        clock.advance(COUNTS_SECONDS)
        assert queued_count(other.client.get(LIVE).text) == "4"  # the counts within 10 s
        assert queued_count(app.client.get(LIVE).text) == "4"
    assert seen == ["welcome", "welcome"]
    accept(app, 5)
    assert queued_count(app.client.get(TABLE).text) == "5"  # a page load counts afresh
    assert seen == ["welcome"] * 3


def test_only_the_newest_page_refreshes_itself(app: Console) -> None:
    newest = app.client.get(TABLE + "?state=queued").text
    assert f'data-live="{LIVE}?state=queued" data-live-every="{EVERY_MS}"' in newest
    assert 'src="/console/static/live.js"' in newest
    older = app.client.get(TABLE + "?state=queued&before=3").text  # the events before row 3
    assert rows(older) == {"e1", "e2"}
    assert "data-live=" not in older and "live.js" not in older  # it stays as it was loaded
    # the live parts are the newest page's, whatever a URL asks
    assert rows(app.client.get(LIVE + "?before=3").text) == {"e1", "e2", "e3"}


def test_a_slow_refresh_makes_the_page_ask_again_later(
    app: Console, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.client.get(LIVE).headers["X-Live-Every"] == str(EVERY_MS)  # quick: every 2 s
    ops = app.app.state.console.ops
    read = ops.table_page

    def slow(*args: Any, **kwargs: Any) -> Any:
        clock.advance(0.75)  # a filter no index serves, on a large activation
        return read(*args, **kwargs)

    monkeypatch.setattr(ops, "table_page", slow)
    answer = app.client.get(LIVE + "?status_code=418")
    assert answer.status_code == 200 and answer.headers["X-Live-Every"] == "7500"  # 10 times its cost
