"""Roles (issue 8): every route of the OpenAPI document, called with a key of every role.

A role that may do what the route does gets past the door (never 401 or 403, never 5xx); one
that may not gets 403 naming the roles that may, and nothing is done on its behalf.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import START, Api, make_api

from lineoa_export import apikeys
from lineoa_export.testing import ThreadedSimulator, user_id

ROLES = ("admin", "operator", "trigger", "read")
NEEDS_IN_WORDS = {
    "admin": "admin",
    "operator": "operator or admin",
    "trigger": "trigger, operator or admin",
    "read": "read, operator or admin",
}
# (method, OpenAPI path, what it needs, a request that gets past parsing)
ROUTES: list[tuple[str, str, str, str, Any]] = [
    ("GET", "/metrics", "read", "/metrics", None),
    ("POST", "/v1/authentications", "admin", "/v1/authentications",
     {"name": "x", "access_token": "t", "skip_test": True}),
    ("GET", "/v1/authentications", "admin", "/v1/authentications", None),
    ("GET", "/v1/authentications/{name}", "admin", "/v1/authentications/line", None),
    ("DELETE", "/v1/authentications/{name}", "admin", "/v1/authentications/unused", None),
    ("POST", "/v1/authentications/{name}/test", "admin", "/v1/authentications/line/test", None),
    ("PATCH", "/v1/authentications/{name}", "admin", "/v1/authentications/unused", {"forward_webhook": None}),
    ("POST", "/v1/authentications/{name}/rotate", "admin", "/v1/authentications/unused/rotate",
     {"access_token": "t2", "skip_test": True}),
    ("POST", "/v1/apikeys", "admin", "/v1/apikeys", {"name": "new", "role": "read"}),
    ("GET", "/v1/apikeys", "admin", "/v1/apikeys", None),
    ("DELETE", "/v1/apikeys/{name}", "admin", "/v1/apikeys/spare", None),
    ("POST", "/v1/activations", "operator", "/v1/activations", {"name": "x", "copy_from": "welcome"}),
    ("GET", "/v1/activations", "read", "/v1/activations", None),
    ("GET", "/v1/activations/{name}", "read", "/v1/activations/welcome", None),
    ("PATCH", "/v1/activations/{name}", "operator", "/v1/activations/welcome", {"description": "changed"}),
    ("DELETE", "/v1/activations/{name}", "operator", "/v1/activations/spare", None),
    ("POST", "/v1/activations/{name}/pause", "operator", "/v1/activations/welcome/pause", None),
    ("POST", "/v1/activations/{name}/resume", "operator", "/v1/activations/welcome/resume", None),
    ("POST", "/v1/activations/{name}/validate", "operator", "/v1/activations/welcome/validate",
     {"event": {"line_user_id": user_id(1), "name": "Ann"}}),
    ("POST", "/v1/activations/{name}/preview", "operator", "/v1/activations/welcome/preview",
     {"event": {"line_user_id": user_id(1), "name": "Ann"}}),
    ("POST", "/v1/activations/{name}/triggers", "trigger", "/v1/activations/welcome/triggers",
     {"event": {"line_user_id": user_id(1), "name": "Ann"}}),
    ("GET", "/v1/activations/{name}/log", "read", "/v1/activations/welcome/log", None),
    ("GET", "/v1/activations/{name}/events/{event_id}", "read", "/v1/activations/welcome/events/e1", None),
    ("POST", "/v1/activations/{name}/replay", "operator", "/v1/activations/welcome/replay", None),
    ("GET", "/v1/activations/{name}/stats", "read", "/v1/activations/welcome/stats", None),
    ("POST", "/v1/authentications/{name}/reconcile", "operator", "/v1/authentications/line/reconcile", None),
    ("GET", "/v1/authentications/{name}/reconciliations", "read", "/v1/authentications/line/reconciliations",
     None),
    ("GET", "/v1/activations/{name}/overview", "read", "/v1/activations/welcome/overview", None),
    ("GET", "/v1/authentications/{name}/overview", "read", "/v1/authentications/line/overview", None),
]  # fmt: skip


@pytest.fixture
def api(tmp_path: Path, sim: ThreadedSimulator) -> Iterator[Api]:
    with make_api(tmp_path, sim) as a:
        yield a


def setup_for(api: Api) -> dict[str, str]:
    """The things routes act on (fresh for each call), and a key of every role."""
    api.create_activation()
    api.create_activation("spare")
    api.trigger([{"event_id": "e1", "line_user_id": user_id(1), "name": "Ann"}])
    api.post("/v1/authentications", json={"name": "unused", "access_token": "t", "skip_test": True})
    apikeys.create(api.ctx.db, "spare", now=START)
    return {role: apikeys.create(api.ctx.db, f"as-{role}", now=START, role=role) for role in ROLES}


def test_the_routes_here_are_every_route_of_the_openapi_document(api: Api) -> None:
    doc = api.get("/openapi.json").json()
    # LINE's webhook takes no key, of any role: its signature authenticates it (test_webhook_receiving.py).
    signed = "/line/webhook/{authentication}"
    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if not path.endswith("z") and path != signed
    }
    assert documented == {(method, path) for method, path, *_ in ROUTES}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "template", "need", "path", "body"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_every_route_answers_every_role(
    tmp_path: Path, sim: ThreadedSimulator, role: str, method: str, template: str, need: str, path: str, body: Any
) -> None:
    with make_api(tmp_path, sim) as api:
        keys = setup_for(api)
        before = api.get("/v1/activations/welcome").json()
        response = api.client.request(method, path, json=body, headers={"Authorization": f"Bearer {keys[role]}"})
        assert response.status_code < 500, response.text
        if apikeys.allows(role, need):
            assert response.status_code not in (401, 403), response.text
            assert 200 <= response.status_code < 300, response.text
        else:
            assert response.status_code == 403, response.text
            error = response.json()
            assert error["error"] == "forbidden"
            assert f"needs an API key with the role {NEEDS_IN_WORDS[need]}" in error["message"]
            assert f"has the role {role!r}" in error["message"]
            # Nothing was done on its behalf.
            assert api.get("/v1/activations/welcome").json() == before
            assert [e["event_id"] for e in api.log()] == ["e1"]


def test_keys_made_before_roles_are_admins_and_the_cli_shows_roles(api: Api) -> None:
    assert [(k.name, k.role) for k in apikeys.list_all(api.ctx.db)] == [("t", "admin")]
    listed = api.get("/v1/apikeys").json()
    assert [(k["name"], k["role"]) for k in listed] == [("t", "admin")]


def test_an_unknown_role_is_refused_naming_the_field(api: Api) -> None:
    response = api.post("/v1/apikeys", json={"name": "x", "role": "root"})
    assert response.status_code == 422 and [p["field"] for p in response.json()["problems"]] == ["role"]
    with pytest.raises(Exception, match="role: must be one of admin, operator, trigger, read"):
        apikeys.create(api.ctx.db, "x", now=START, role="root")


def test_a_key_made_through_the_api_works_once_shown_and_a_revoked_one_no_longer(api: Api) -> None:
    created = api.post("/v1/apikeys", json={"name": "journeys", "role": "trigger"})
    assert created.status_code == 201 and created.json()["role"] == "trigger"
    key = created.json()["key"]
    assert key not in api.get("/v1/apikeys").text
    api.create_activation()
    as_trigger = {"Authorization": f"Bearer {key}"}
    event = {"event": {"line_user_id": user_id(1), "name": "Ann"}}
    assert api.post("/v1/activations/welcome/triggers", json=event, headers=as_trigger).status_code == 202
    assert api.get("/v1/activations/welcome/log", headers=as_trigger).status_code == 403
    assert api.delete("/v1/apikeys/journeys").status_code == 204
    assert api.post("/v1/activations/welcome/triggers", json=event, headers=as_trigger).status_code == 401
