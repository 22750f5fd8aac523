"""The console on several nodes: `serve --no-worker` processes on one database behind a load
balancer (README), and the same node after a restart. A user's requests land on any node, so
what the console keeps between two requests lives in the database: sessions (logout ends them
on every node), the login form's and the flash message's signatures (a key every host shares),
and the Catalog flow's tested credentials.

Each node here is an app of its own on a context of its own (its own connections, its own
Console: a node restarted is no different); one browser (one cookie jar) talks to them through a
balancer the test steers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from console_support import Console, console_app, csrf_of
from fastapi import FastAPI
from schemathesis.python.asgi import ASGIClient

from lineoa_export import authentications
from lineoa_export.context import open_context
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import ThreadedSimulator, postgres_schema
from lineoa_export.web.app import create_app


class Balancer:
    """A load balancer in front of the nodes: each request goes to the node ``to`` names."""

    def __init__(self, *nodes: FastAPI) -> None:
        self.nodes = nodes
        self.to = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # `serve` runs its apps without one (lifespan="off")
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.nodes[self.to](scope, receive, send)


@contextmanager
def node(first: Console) -> Iterator[FastAPI]:
    """Another `serve` on the first one's database and settings (the same secret key)."""
    ctx = open_context(first.ctx.settings, clock=first.ctx.clock)
    try:
        yield create_app(ctx)
    finally:
        ctx.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nodes.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def two(tmp_path: Path, database_url: str) -> Iterator[tuple[Console, Balancer]]:
    """A browser in front of two nodes on one database, not logged in; it talks to node 0 first."""
    with console_app(tmp_path, database_url=database_url) as first, node(first) as second:
        balancer = Balancer(first.app, second)
        with ASGIClient(balancer) as client:
            yield Console(first.ctx, first.app, first.key, client), balancer


def test_a_login_form_from_one_node_logs_in_on_the_other(two: tuple[Console, Balancer]) -> None:
    browser, balancer = two
    form = browser.client.get("/console/login")
    balancer.to = 1
    answer = browser.client.post(
        "/console/login", data={"csrf": csrf_of(form.text), "api_key": browser.key}, allow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/activations"


def test_a_session_is_known_to_every_node_and_logging_out_ends_it_on_all(two: tuple[Console, Balancer]) -> None:
    browser, balancer = two
    assert browser.login().status_code == 303  # on node 0
    cookies = dict(browser.client.cookies)
    balancer.to = 1
    page = browser.client.get("/console/activations", allow_redirects=False)
    assert page.status_code == 200 and "Log out" in page.text
    said = browser.post("/console/logout", page="/console/activations", follow=False)  # on node 1
    balancer.to = 0
    assert "Logged out." in browser.client.get(said.headers["location"]).text  # node 1's flash, shown by node 0
    browser.client.cookies.update(cookies)  # the cookie, copied before logout
    gone = browser.client.get("/console/activations", allow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")


def test_the_catalog_flow_continues_on_one_node_and_is_done_on_the_other(
    two: tuple[Console, Balancer], sim: ThreadedSimulator
) -> None:
    browser, balancer = two
    assert browser.login().status_code == 303
    new = "/console/integrations/line-oa/new"
    tested = browser.post(new, {"access_token": DEFAULT_ACCESS_TOKEN, "api_url": sim.url}, page=new, follow=False)
    step2 = tested.headers["location"]
    assert tested.status_code == 303 and step2.startswith(new + "/"), tested.text  # tested on node 0
    balancer.to = 1
    page = browser.client.get(step2, allow_redirects=False)
    assert page.status_code == 200 and "LINE accepted the credentials" in page.text  # node 1 has the draft
    done = browser.post(step2, {"name": "my-oa"}, page=step2, follow=False)
    assert done.headers["location"] == "/console/integrations/line-oa/done/my-oa"
    assert authentications.get(browser.ctx.db, "my-oa").kind == "access_token"
    balancer.to = 0
    again = browser.client.get(step2, allow_redirects=False)  # used up, on every node
    assert again.headers["location"] == new


def test_logging_out_on_one_node_drops_the_draft_for_all(two: tuple[Console, Balancer], sim: ThreadedSimulator) -> None:
    browser, balancer = two
    assert browser.login().status_code == 303
    new = "/console/integrations/line-oa/new"
    tested = browser.post(new, {"access_token": DEFAULT_ACCESS_TOKEN, "api_url": sim.url}, page=new, follow=False)
    balancer.to = 1
    browser.post("/console/logout", page=new)
    assert len(browser.app.state.console.drafts) == 0  # node 0's view of the database
    balancer.to = 0
    assert browser.login().status_code == 303
    gone = browser.client.get(tested.headers["location"], allow_redirects=False)
    assert gone.headers["location"] == new
