"""Roles in the console: each key sees only what its role allows, and is refused the rest by a 403
page naming the role needed. read = the activation tables; operator = activations too; admin =
everything; trigger cannot log in."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from console_support import Console, console_app, csrf_of

from lineoa_export import apikeys, authentications
from lineoa_export.delivery import triggers

ACTIVATION = {
    "name": "welcome",
    "description": "Say hello",
    "authentication": "line",
    "recipient": "{{line_user_id}}",
    "messages": '[{"type": "text", "text": "Hello {{name}}"}]',
}
TABLE = "/console/activations/welcome"
# (method, path, the least role that may) for every console page and action
ROUTES = [
    ("GET", "/console/activations", "read"),
    ("GET", TABLE, "read"),
    ("GET", f"{TABLE}/table.csv", "read"),
    ("GET", f"{TABLE}/events/bad", "read"),
    ("GET", f"{TABLE}/preview", "read"),
    ("POST", f"{TABLE}/preview", "read"),
    ("GET", "/console/activations/new", "operator"),
    ("GET", f"{TABLE}/edit", "operator"),
    ("POST", "/console/activations", "operator"),
    ("POST", f"{TABLE}/edit", "operator"),
    ("POST", f"{TABLE}/pause", "operator"),
    ("POST", f"{TABLE}/resume", "operator"),
    ("POST", f"{TABLE}/replay", "operator"),
    ("POST", f"{TABLE}/validate", "operator"),
    ("POST", f"{TABLE}/trigger", "operator"),
    ("POST", f"{TABLE}/delete", "operator"),
    ("GET", "/console/authentications", "admin"),
    ("POST", "/console/authentications", "admin"),
    ("POST", "/console/authentications/line/test", "admin"),
    ("POST", "/console/authentications/line/rotate", "admin"),
    ("POST", "/console/authentications/line/delete", "admin"),
    ("GET", "/console/integrations", "admin"),
    ("GET", "/console/integrations/catalog", "admin"),
    ("GET", "/console/integrations/line-oa/new", "admin"),
    ("POST", "/console/integrations/line-oa/new", "admin"),
    ("GET", "/console/integrations/line-oa/new/some-draft", "admin"),
    ("POST", "/console/integrations/line-oa/new/some-draft", "admin"),
    ("POST", "/console/integrations/line-oa/new/some-draft/discard", "admin"),
    ("GET", "/console/integrations/line-oa/done/line", "admin"),
]
RANK = {"read": 1, "operator": 2, "admin": 3}
NEEDS = {"read": "read, operator or admin", "operator": "operator or admin", "admin": "admin"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Console]:
    """An admin (``ops``) has made an authentication, an activation and a failed event."""
    with console_app(tmp_path) as c:
        c.login()
        assert (
            c.post(
                "/console/authentications",
                {"name": "line", "access_token": "tok", "skip_test": "on", "api_url": "https://api.line.me"},
            ).status_code
            == 200
        )
        assert c.post("/console/activations", ACTIVATION, follow=False).status_code == 303
        triggers.accept(
            c.ctx.db, "welcome", [{"event_id": "bad", "line_user_id": "nobody", "name": "x"}], now=c.ctx.clock.now()
        )
        c.post("/console/logout")
        yield c


def as_role(c: Console, role: str) -> Console:
    key = apikeys.create(c.ctx.db, role, now=c.ctx.clock.now(), role=role)
    assert c.login(key).status_code == 303
    return c


@pytest.mark.parametrize("role", ["read", "operator", "admin"])
def test_every_route_answers_by_role(app: Console, role: str) -> None:
    c = as_role(app, role)
    for method, path, need in ROUTES:
        if method == "GET":
            response = c.client.get(path, allow_redirects=False)
        else:  # a harmless form: refused by validation or asked to confirm when allowed
            response = c.post(path, {"confirm": "no"}, follow=False)
        if RANK[role] >= RANK[need]:
            assert response.status_code in (200, 303, 422), (role, method, path, response.status_code)
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)
            assert f"This needs a key with the role {NEEDS[need]}" in unescape(response.text)
            assert f"has the role {role!r}" in unescape(response.text)
    assert [a.name for a in authentications.list_all(c.ctx.db)] == ["line"]


def test_read_sees_the_tables_and_no_buttons(app: Console) -> None:
    c = as_role(app, "read")
    listing = c.client.get("/console/activations").text
    assert "welcome" in listing and "Authentications" not in listing
    for action in ("New triggered activation", "/edit", "/pause", "/delete"):
        assert action not in listing, action
    table = c.client.get(TABLE).text
    assert "bad" in table and "Download CSV" in table
    for action in ("/edit", "/pause", "/replay", "/delete"):
        assert action not in table, action
    assert "Replay this event" not in c.client.get(f"{TABLE}/events/bad").text


def test_operator_manages_activations_but_not_credentials(app: Console) -> None:
    c = as_role(app, "operator")
    table = c.client.get(TABLE).text
    for action in ("/edit", "/pause", "/replay", "/delete"):
        assert action in table, action
    assert "Authentications" not in c.client.get("/console/activations").text
    assert "Replay this event" in c.client.get(f"{TABLE}/events/bad").text
    assert "paused" in c.post(f"{TABLE}/pause", page=TABLE).text


def test_admin_sees_everything(app: Console) -> None:
    c = as_role(app, "admin")
    assert "Authentications" in c.client.get("/console/activations").text
    assert "Create authentication" in c.client.get("/console/authentications").text


def test_a_trigger_key_cannot_log_in(app: Console) -> None:
    key = apikeys.create(app.ctx.db, "journeys", now=app.ctx.clock.now(), role="trigger")
    response = app.login(key)
    assert response.status_code == 403
    assert "has the role &#39;trigger&#39;, which cannot use the console" in response.text
    assert "lineoa_console" not in app.client.cookies
    page = app.client.get("/console/login").text
    assert csrf_of(page)  # the login form is still there for another key
