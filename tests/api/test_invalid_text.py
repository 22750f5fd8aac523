"""Issue 8, finding 5: text no database can store (a NUL, a lone surrogate) is refused as bad
input wherever it enters the API, on SQLite and on PostgreSQL: never a 5xx.

Every operation of the OpenAPI document is called with such text in each path parameter, in
each string query parameter and in each string field of a body (top level and inside events
and messages), after a good activation, event and authentication exist to be found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_support import SECRET_KEY, START

from lineoa_export import apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.context import Context, open_context
from lineoa_export.settings import Settings
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import SIMULATOR_HOST, postgres_schema, user_id
from lineoa_export.web.app import create_app

BAD_TEXTS = {"nul": "a\x00b", "surrogate": "a\ud800b", "escaped-nul": "\\u0000"}
GOOD_BODY: dict[str, dict[str, Any]] = {
    "/v1/authentications": {"name": "other", "access_token": "tok", "skip_test": True},
    "/v1/authentications/{name}/rotate": {"access_token": "tok2", "skip_test": True},
    "/v1/activations": {
        "name": "other",
        "authentication": "line",
        "recipient": "{{uid}}",
        "messages": [{"type": "text", "text": "hi {{n}}"}],
    },
    "/v1/activations/{name}": {"description": "d", "messages": [{"type": "text", "text": "hi"}]},
    "/v1/activations/{name}/pause": {"reason": "r"},
    "/v1/activations/{name}/preview": {"event": {"uid": user_id(1), "n": "x"}},
    "/v1/activations/{name}/validate": {"event": {"uid": user_id(1), "n": "x"}},
    "/v1/activations/{name}/triggers": {"event": {"event_id": "e2", "uid": user_id(1), "n": "x"}},
    "/v1/activations/{name}/replay": {"event_ids": ["e1"]},
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'text.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def app(database_url: str) -> Iterator[tuple[Any, str, Context]]:
    from schemathesis.python.asgi import ASGIClient

    settings = Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        allowed_api_hosts=(SIMULATOR_HOST,),
        timeout=0.5,
        connect_timeout=0.2,
    )
    ctx = open_context(settings, clock=FakeClock(START))
    try:
        key = apikeys.create(ctx.db, "t", now=START)
        authentications.create(
            ctx.db,
            ctx.vault,
            name="line",
            credentials=authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None),
            api_url="http://127.0.0.1:9",
            now=START,
        )
        client = ASGIClient(create_app(ctx))
        client.trust_env = False
        client.headers["Authorization"] = f"Bearer {key}"
        created = client.post("/v1/activations", json={**GOOD_BODY["/v1/activations"], "name": "welcome"})
        assert created.status_code == 201, created.text
        accepted = client.post(
            "/v1/activations/welcome/triggers", json={"event": {"event_id": "e1", "uid": user_id(1), "n": "x"}}
        )
        assert accepted.status_code == 202, accepted.text
        yield client, key, ctx
    finally:
        ctx.close()


def poisoned(value: Any, bad: str) -> Iterator[Any]:
    """``value`` with one string (or one key) at a time replaced by ``bad``, at any depth."""
    if isinstance(value, str):
        yield bad
    elif isinstance(value, dict):
        for k, v in value.items():
            yield {**value, bad: v}
            for p in poisoned(v, bad):
                yield {**value, k: p}
    elif isinstance(value, list):
        for i, v in enumerate(value):
            for p in poisoned(v, bad):
                yield [*value[:i], p, *value[i + 1 :]]


def calls(doc: dict[str, Any], bad: str) -> Iterator[tuple[str, str, Any]]:
    """(method, URL, JSON body): in a URL, ``bad`` travels as its UTF-8 bytes percent-encoded."""
    on_the_wire = quote(bad.encode("utf-8", "surrogatepass"), safe="")
    for template, item in doc["paths"].items():
        for method, operation in item.items():
            params = list(operation.get("parameters", []))
            names = {p["name"]: ("welcome" if p["name"] == "name" else "e1") for p in params if p["in"] == "path"}
            body = GOOD_BODY.get(template) if method in ("post", "patch") else None
            for poisoned_name in names:
                yield method, template.format(**{**names, poisoned_name: on_the_wire}), body
            for p in params:
                if p["in"] == "query" and p.get("schema", {}).get("type") == "string":
                    yield method, f"{template.format(**names)}?{p['name']}={on_the_wire}", body
            for poisoned_body in poisoned(body, bad) if body else ():
                yield method, template.format(**names), poisoned_body


@pytest.mark.parametrize("bad", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_no_operation_answers_5xx_to_text_no_database_can_store(app: tuple[Any, str, Context], bad: str) -> None:
    client, _, _ = app
    doc = client.get("/openapi.json").json()
    server_errors = []
    for method, url, body in calls(doc, bad):
        try:  # the in-process client raises what the app did not handle (a 500 over the wire)
            response = client.request(method.upper(), url, json=body)
        except Exception as exc:
            server_errors.append((method, url, repr(body), f"{type(exc).__name__}: {exc}"[:160]))
            continue
        if response.status_code >= 500:
            server_errors.append((method, url, repr(body), response.status_code, response.text[:200]))
    assert server_errors == [], "\n".join(str(e) for e in server_errors)
