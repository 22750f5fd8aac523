"""The ``/v1`` JSON API in process: every endpoint and every class of error (issue 3).

Endpoints that call LINE talk to a real simulator on a thread; deliveries are made by a
worker run until idle on the fake clock. Every response any test receives is searched for
the credentials the tests used: no response may ever contain them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from api_support import START, Api, make_api

from lineoa_export import activation_table, apikeys
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_SECRET
from lineoa_export.testing import ThreadedSimulator, user_id

BAD_TOKEN = "not-a-valid-token-7f3a"
BAD_SECRET = "wrong-secret-0123456789abcdef00"
SECRETS = (DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_SECRET, BAD_TOKEN, BAD_SECRET)
JSON = {"Content-Type": "application/json"}

U1, U2, U3 = user_id(1), user_id(2), user_id(3)

# Every operation that needs an API key, with a body good enough to get past parsing.
PROTECTED: list[tuple[str, str, Any]] = [
    ("GET", "/metrics", None),
    ("POST", "/v1/authentications", {"name": "x", "access_token": "t", "skip_test": True}),
    ("GET", "/v1/authentications", None),
    ("GET", "/v1/authentications/line", None),
    ("DELETE", "/v1/authentications/line", None),
    ("POST", "/v1/authentications/line/test", None),
    ("PATCH", "/v1/authentications/line", {"forward_webhook": None}),
    ("POST", "/v1/authentications/line/rotate", {"access_token": "t", "skip_test": True}),
    ("POST", "/v1/apikeys", {"name": "x"}),
    ("GET", "/v1/apikeys", None),
    ("DELETE", "/v1/apikeys/line", None),
    ("POST", "/v1/activations", {"name": "x", "authentication": "line"}),
    ("GET", "/v1/activations", None),
    ("GET", "/v1/activations/welcome", None),
    ("PATCH", "/v1/activations/welcome", {"description": "x"}),
    ("DELETE", "/v1/activations/welcome", None),
    ("POST", "/v1/activations/welcome/pause", None),
    ("POST", "/v1/activations/welcome/resume", None),
    ("POST", "/v1/activations/welcome/validate", None),
    ("POST", "/v1/activations/welcome/preview", {"event": {}}),
    ("POST", "/v1/activations/welcome/triggers", {"event": {"line_user_id": U1}}),
    ("GET", "/v1/activations/welcome/log", None),
    ("GET", "/v1/activations/welcome/events/e1", None),
    ("POST", "/v1/activations/welcome/replay", None),
    ("GET", "/v1/activations/welcome/stats", None),
    ("POST", "/v1/authentications/line/reconcile", None),
    ("GET", "/v1/authentications/line/reconciliations", None),
    ("GET", "/v1/activations/welcome/overview", None),
    ("GET", "/v1/authentications/line/overview", None),
]


@pytest.fixture
def api(tmp_path: Path, sim: ThreadedSimulator) -> Iterator[Api]:
    """As the conftest's ``api``, plus: no response may contain a credential."""
    with make_api(tmp_path, sim) as a:
        seen: list[str] = []

        def no_secrets(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            text = response.text
            seen.append(text)
            for secret in SECRETS:
                assert secret not in text, f"{response.request.method} {response.request.url} leaked a secret"
            for name, value in response.headers.items():
                for secret in SECRETS:
                    assert secret not in value, f"header {name} leaked a secret"

        a.client.hooks["response"].append(no_secrets)
        yield a


def problem_fields(response: requests.Response) -> list[str]:
    return [p["field"] for p in response.json()["problems"]]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def event_state(api: Api, event_id: str, activation: str = "welcome") -> dict[str, Any]:
    response = api.get(f"/v1/activations/{activation}/events/{event_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# -- API keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_every_protected_endpoint_refuses_requests_without_a_valid_key(
    api: Api, method: str, path: str, body: Any
) -> None:
    api.create_activation()
    revoked = apikeys.create(api.ctx.db, "old", now=START)
    apikeys.revoke(api.ctx.db, "old", now=START + 1)
    for authorization in (None, "Bearer lxk_wrong", f"Bearer {revoked}", f"Basic {api.key}", api.key):
        response = api.client.request(method, path, json=body, headers={"Authorization": authorization})
        assert response.status_code == 401, (authorization, response.text)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # Nothing was done on the unauthenticated requests' behalf.
    assert api.get("/v1/activations/welcome").status_code == 200
    assert api.get("/v1/authentications/line").status_code == 200
    assert api.get("/v1/activations/welcome/log").json()["events"] == []


def test_the_protected_list_covers_every_operation_in_the_openapi_document(api: Api) -> None:
    doc = api.get("/openapi.json").json()
    # LINE's webhook cannot carry an API key: its signature authenticates it (test_webhook_receiving.py).
    signed = "/line/webhook/{authentication}"
    assert list(doc["paths"][signed]) == ["post"]
    operations = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if not path.endswith("z") and path != signed
    }

    def template(path: str) -> str:
        return path.replace("/line", "/{name}").replace("/welcome", "/{name}").replace("/e1", "/{event_id}")

    assert operations == {(m, template(p)) for m, p, _ in PROTECTED}


def test_health_endpoints_need_no_key(api: Api) -> None:
    for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        response = api.get(path, headers={"Authorization": None})
        assert response.status_code == 200
        assert response.json() == body


def test_a_valid_key_is_accepted_and_a_revoked_one_no_longer(api: Api) -> None:
    other = apikeys.create(api.ctx.db, "other", now=START)
    assert api.get("/v1/activations", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    apikeys.revoke(api.ctx.db, "other", now=START + 1)
    assert api.get("/v1/activations", headers={"Authorization": f"Bearer {other}"}).status_code == 401


# -- authentications --------------------------------------------------------------------------


def test_create_authentication_tests_the_token_with_line(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post(
        "/v1/authentications", json={"name": "oa", "access_token": DEFAULT_ACCESS_TOKEN, "api_url": sim.url}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "oa"
    assert body["kind"] == "access_token"
    assert body["api_url"] == sim.url
    assert body["bot_user_id"].startswith("U")
    assert body["bot_name"] == "Demo Official Account"
    assert body["paused"] is False
    assert "access_token" not in body
    assert sim.stats()["requests_by_endpoint"]["bot_info"] == {"200": 1}


def test_create_authentication_from_channel_id_and_secret(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post(
        "/v1/authentications",
        json={
            "name": "minted",
            "channel_id": DEFAULT_CHANNEL_ID,
            "channel_secret": DEFAULT_CHANNEL_SECRET,
            "api_url": sim.url,
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "channel_credentials"
    assert response.json()["channel_id"] == DEFAULT_CHANNEL_ID
    assert "channel_secret" not in response.json()


def test_a_refused_token_answers_422_with_lines_reason(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post("/v1/authentications", json={"name": "bad", "access_token": BAD_TOKEN, "api_url": sim.url})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "credentials_rejected"
    assert "401" in body["message"]
    assert "Authentication failed" in body["message"]  # LINE's own words
    assert problem_fields(response) == ["credentials"]
    assert api.get("/v1/authentications/bad").status_code == 404  # nothing stored


def test_a_refused_channel_secret_answers_422_with_lines_reason(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post(
        "/v1/authentications",
        json={
            "name": "bad",
            "channel_id": DEFAULT_CHANNEL_ID,
            "channel_secret": BAD_SECRET,
            "api_url": sim.url,
        },
    )
    assert response.status_code == 422
    assert response.json()["error"] == "credentials_rejected"
    assert "invalid client_id or client_secret" in response.json()["message"]


def test_an_unreachable_line_is_a_rejection_not_a_server_error(api: Api) -> None:
    response = api.post(
        "/v1/authentications", json={"name": "far", "access_token": BAD_TOKEN, "api_url": "http://127.0.0.1:9"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "credentials_rejected"


def test_skip_test_stores_without_calling_line(api: Api, sim: ThreadedSimulator) -> None:
    before = sim.stats()["requests_by_endpoint"]
    response = api.post(
        "/v1/authentications", json={"name": "later", "access_token": BAD_TOKEN, "api_url": sim.url, "skip_test": True}
    )
    assert response.status_code == 201, response.text
    assert response.json()["bot_user_id"] is None
    assert sim.stats()["requests_by_endpoint"] == before
    # ... and ``test`` then reports LINE's refusal.
    tested = api.post("/v1/authentications/later/test")
    assert tested.status_code == 422
    assert tested.json()["error"] == "credentials_rejected"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "credentials"),
        ({"name": "x", "access_token": "t", "channel_id": "1", "channel_secret": "s"}, "credentials"),
        ({"name": "x", "channel_id": "abc", "channel_secret": "s"}, "channel_id"),
        ({"name": "bad name!", "access_token": "t", "skip_test": True}, "name"),
        ({"name": "x", "access_token": "t", "skip_test": True, "api_url": "ftp://x"}, "api_url"),
        ({"name": "x", "access_token": "t", "surprise": 1}, "surprise"),
        ({"access_token": "t"}, "name"),
        ({"name": 5, "access_token": "t"}, "name"),
        ({"name": "x", "access_token": "t", "skip_test": "maybe"}, "skip_test"),
    ],
)
def test_bad_authentication_bodies_answer_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/v1/authentications", json=body)
    assert response.status_code == 422, response.text
    assert field in problem_fields(response)


def test_a_taken_authentication_name_answers_409(api: Api) -> None:
    response = api.post("/v1/authentications", json={"name": "line", "access_token": "t", "skip_test": True})
    assert response.status_code == 409
    assert response.json()["error"] == "already_exists"


def test_list_and_get_authentications(api: Api, sim: ThreadedSimulator) -> None:
    api.post(
        "/v1/authentications",
        json={
            "name": "minted",
            "channel_id": DEFAULT_CHANNEL_ID,
            "channel_secret": DEFAULT_CHANNEL_SECRET,
            "api_url": sim.url,
        },
    )
    listed = api.get("/v1/authentications")
    assert listed.status_code == 200
    assert sorted(a["name"] for a in listed.json()) == ["line", "minted"]
    got = api.get("/v1/authentications/minted")
    assert got.status_code == 200
    assert got.json()["kind"] == "channel_credentials"
    assert api.get("/v1/authentications/nope").status_code == 404
    assert api.get("/v1/authentications/nope").json()["error"] == "not_found"


def test_delete_authentication(api: Api) -> None:
    api.create_activation()
    in_use = api.delete("/v1/authentications/line")
    assert in_use.status_code == 422
    assert "welcome" in in_use.json()["message"]
    assert api.get("/v1/authentications/line").status_code == 200
    assert api.delete("/v1/activations/welcome").status_code == 204
    gone = api.delete("/v1/authentications/line")
    assert gone.status_code == 204
    assert gone.content == b""
    assert api.get("/v1/authentications/line").status_code == 404
    assert api.delete("/v1/authentications/line").status_code == 404


def test_test_authentication(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post("/v1/authentications/line/test")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True,
        "bot_user_id": "U" + "0123456789abcdef" * 2,
        "bot_name": "Demo Official Account",
    }
    assert api.post("/v1/authentications/nope/test").status_code == 404
    # Once LINE stops accepting the token, the test says so.
    sim.patch({"channels": {DEFAULT_CHANNEL_ID: {"access_tokens": []}}})
    refused = api.post("/v1/authentications/line/test")
    assert refused.status_code == 422
    assert refused.json()["error"] == "credentials_rejected"


def test_a_token_with_a_line_break_is_refused_when_tested(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post(
        "/v1/authentications", json={"name": "nl", "access_token": "abc\r\nX-Evil: 1", "api_url": sim.url}
    )
    assert response.status_code == 422


def test_a_token_with_a_line_break_is_refused_even_untested(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post(
        "/v1/authentications",
        json={"name": "nl", "access_token": "abc\nX-Evil: 1", "api_url": sim.url, "skip_test": True},
    )
    assert response.status_code == 422


def test_a_taken_name_is_refused_before_line_is_asked(api: Api, sim: ThreadedSimulator) -> None:
    response = api.post(
        "/v1/authentications", json={"name": "line", "access_token": DEFAULT_ACCESS_TOKEN, "api_url": sim.url}
    )
    assert response.status_code == 409, response.text
    assert sim.stats()["requests_by_endpoint"].get("bot_info") is None


def test_rotate_replaces_the_token_only_when_line_accepts_the_new_one(api: Api, sim: ThreadedSimulator) -> None:
    refused = api.post("/v1/authentications/line/rotate", json={"access_token": BAD_TOKEN})
    assert refused.status_code == 422 and refused.json()["error"] == "credentials_rejected"
    assert api.post("/v1/authentications/line/test").status_code == 200  # the stored token still works

    wrong_kind = api.post("/v1/authentications/line/rotate", json={"channel_secret": BAD_SECRET})
    assert wrong_kind.status_code == 422 and problem_fields(wrong_kind) == ["channel_secret"]

    untested = api.post("/v1/authentications/line/rotate", json={"access_token": BAD_TOKEN, "skip_test": True})
    assert untested.status_code == 200, untested.text
    assert api.post("/v1/authentications/line/test").json()["error"] == "credentials_rejected"

    rotated = api.post("/v1/authentications/line/rotate", json={"access_token": DEFAULT_ACCESS_TOKEN})
    assert rotated.status_code == 200 and rotated.json()["bot_name"] == "Demo Official Account"
    assert api.post("/v1/authentications/line/test").status_code == 200
    assert api.post("/v1/authentications/nope/rotate", json={"access_token": "t"}).status_code == 404


# -- activations ------------------------------------------------------------------------------


def test_create_activation_with_the_defaults(api: Api) -> None:
    response = api.post(
        "/v1/activations",
        json={
            "name": "welcome",
            "authentication": "line",
            "recipient": "{{line_user_id}}",
            "messages": [{"type": "text", "text": "Hello {{name}}"}],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["max_retries"], body["initial_retry_delay"], body["retry_delay_multiple"]) == (3, 2.0, 2.0)
    assert body["notification_disabled"] is False
    assert body["paused"] is False
    assert body["description"] == ""
    assert body["counts"] == {}
    assert body["created_at"] == START


def test_create_activation_copying_another(api: Api) -> None:
    api.create_activation(
        "original",
        description="first",
        max_retries=5,
        initial_retry_delay=1.5,
        messages=[{"type": "text", "text": "Bye {{name}}"}],
    )
    response = api.post("/v1/activations", json={"name": "copy", "copy_from": "original", "max_retries": 1})
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["name"] == "copy"
    assert copy["description"] == "first"
    assert copy["messages"] == [{"type": "text", "text": "Bye {{name}}"}]
    assert copy["initial_retry_delay"] == 1.5
    assert copy["max_retries"] == 1  # given fields win over the copied ones
    assert api.get("/v1/activations/original").json()["max_retries"] == 5
    missing = api.post("/v1/activations", json={"name": "copy2", "copy_from": "nope"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"initial_retry_delay": -2}, "initial_retry_delay", "0 or more"),
        ({"messages": [{"type": "text", "text": "x" * 5001}]}, "messages[0].text", "5000"),
        ({"authentication": "nope"}, "authentication", "nope"),
        ({"max_retries": -1}, "max_retries", ""),
        ({"retry_delay_multiple": 0.5}, "retry_delay_multiple", ""),
        ({"max_retries": "many"}, "max_retries", ""),
        ({"messages": []}, "messages", ""),
        ({"messages": [{"type": "text"}] * 6}, "messages", ""),
        ({"recipient": ""}, "recipient", ""),
        ({"recipient": "{{unclosed"}, "recipient", ""),
        ({"name": "no spaces"}, "name", ""),
        ({"name": None}, "name", "required"),
        ({"colour": "red"}, "colour", ""),
    ],
)
def test_bad_activations_answer_422_naming_the_field(api: Api, fields: dict[str, Any], field: str, reason: str) -> None:
    body = {
        "name": "a",
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": [{"type": "text", "text": "Hi"}],
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not None}
    response = api.post("/v1/activations", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    problems = {p["field"]: p["reason"] for p in response.json()["problems"]}
    assert field in problems, problems
    assert reason in problems[field]
    assert api.get("/v1/activations/a").status_code == 404


def test_a_taken_activation_name_answers_409(api: Api) -> None:
    api.create_activation()
    response = api.post("/v1/activations", json={"name": "welcome", "copy_from": "welcome"})
    assert response.status_code == 409
    assert response.json()["error"] == "already_exists"


def test_list_and_get_activations(api: Api) -> None:
    api.create_activation("a")
    api.create_activation("b")
    api.trigger([{"line_user_id": U1, "name": "Ann"}], activation="b")
    listed = api.get("/v1/activations")
    assert listed.status_code == 200
    assert [a["name"] for a in listed.json()] == ["a", "b"]
    got = api.get("/v1/activations/b")
    assert got.status_code == 200
    assert got.json()["counts"] == {"queued": 1}
    missing = api.get("/v1/activations/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "activation 'nope' not found", "problems": []}


def test_update_activation(api: Api) -> None:
    api.create_activation()
    api.clock.advance(60)
    response = api.patch("/v1/activations/welcome", json={"description": "new", "max_retries": 7})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["description"], body["max_retries"]) == ("new", 7)
    assert body["messages"] == [{"type": "text", "text": "Hello {{name}}"}]  # untouched fields stay
    assert body["updated_at"] == START + 60
    assert body["created_at"] == START
    assert api.get("/v1/activations/welcome").json()["max_retries"] == 7


def test_update_activation_errors(api: Api) -> None:
    api.create_activation()
    assert api.patch("/v1/activations/nope", json={"description": "x"}).status_code == 404
    renamed = api.patch("/v1/activations/welcome", json={"name": "other"})
    assert renamed.status_code == 422
    assert problem_fields(renamed) == ["name"]
    negative = api.patch("/v1/activations/welcome", json={"initial_retry_delay": -1})
    assert negative.status_code == 422
    assert problem_fields(negative) == ["initial_retry_delay"]
    unknown_auth = api.patch("/v1/activations/welcome", json={"authentication": "nope"})
    assert unknown_auth.status_code == 422
    assert problem_fields(unknown_auth) == ["authentication"]
    assert api.get("/v1/activations/welcome").json()["initial_retry_delay"] == 2.0


def test_delete_activation(api: Api) -> None:
    api.create_activation()
    response = api.delete("/v1/activations/welcome")
    assert response.status_code == 204
    assert api.get("/v1/activations/welcome").status_code == 404
    assert api.delete("/v1/activations/welcome").status_code == 404


def test_pause_and_resume(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation()
    paused = api.post("/v1/activations/welcome/pause", json={"reason": "campaign on hold"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert paused.json()["paused_reason"] == "campaign on hold"
    result = api.trigger([{"line_user_id": U1, "name": "Ann"}])
    assert result["results"][0]["status"] == "paused"
    api.deliver()
    assert sim.stats()["accepted_pushes"] == 0
    resumed = api.post("/v1/activations/welcome/resume")
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is False
    api.deliver()
    assert sim.stats()["accepted_pushes"] == 1
    assert api.log()[0]["state"] == "delivered"
    # Without a body, a default reason; unknown activations are 404.
    assert api.post("/v1/activations/welcome/pause").json()["paused_reason"]
    assert api.post("/v1/activations/nope/pause").status_code == 404
    assert api.post("/v1/activations/nope/resume").status_code == 404
    too_long = api.post("/v1/activations/welcome/pause", json={"reason": "x" * 501})
    assert too_long.status_code == 422
    assert problem_fields(too_long) == ["reason"]


def test_validate(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation()
    needs_sample = api.post("/v1/activations/welcome/validate")
    assert needs_sample.status_code == 422
    assert problem_fields(needs_sample) == ["event"]
    missing = api.post("/v1/activations/welcome/validate", json={"event": {"line_user_id": U1}})
    assert missing.status_code == 422
    assert "Variable not found" in missing.json()["message"]
    good = api.post("/v1/activations/welcome/validate", json={"event": {"line_user_id": U1, "name": "Ann"}})
    assert good.status_code == 200, good.text
    assert good.json() == {"valid": True, "checked": ["local", "line"]}
    assert sim.stats()["requests_by_endpoint"]["validate_push"] == {"200": 1}
    assert sim.stats()["accepted_pushes"] == 0  # nothing sent
    # A payload without placeholders needs no sample.
    api.create_activation("plain", messages=[{"type": "text", "text": "Hi"}])
    assert api.post("/v1/activations/plain/validate").json()["valid"] is True
    assert api.post("/v1/activations/nope/validate").status_code == 404


def test_validate_reports_lines_refusal(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation("plain", messages=[{"type": "text", "text": "Hi"}])
    sim.patch({"channels": {DEFAULT_CHANNEL_ID: {"access_tokens": []}}})
    response = api.post("/v1/activations/plain/validate")
    assert response.status_code == 422
    assert problem_fields(response) == ["messages"]
    assert "LINE refused" in response.json()["message"]


def test_preview_shows_the_exact_request_without_sending(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation(notification_disabled=True)
    response = api.post("/v1/activations/welcome/preview", json={"event": {"line_user_id": U1, "name": "Ann"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["recipient"] == U1
    request = body["request"]
    assert request["method"] == "POST"
    assert request["url"] == sim.url + "/v2/bot/message/push"
    assert request["headers"]["Authorization"] == "Bearer <stored token>"
    assert request["body"] == {
        "to": U1,
        "messages": [{"type": "text", "text": "Hello Ann"}],
        "notificationDisabled": True,
        "customAggregationUnits": ["welcome"],
    }
    # What the worker then sends is byte for byte what preview showed.
    api.trigger([{"line_user_id": U1, "name": "Ann", "event_id": "e1"}])
    assert event_state(api, "e1")["request_body"] == request["body"]
    assert sim.stats()["accepted_pushes"] == 0


def test_preview_errors(api: Api) -> None:
    api.create_activation()
    missing = api.post("/v1/activations/welcome/preview", json={"event": {"line_user_id": U1}})
    assert missing.status_code == 422
    assert problem_fields(missing) == ["event"]
    assert "Variable not found" in missing.json()["message"]
    bad_recipient = api.post("/v1/activations/welcome/preview", json={"event": {"line_user_id": "bob", "name": "A"}})
    assert bad_recipient.status_code == 422
    assert api.post("/v1/activations/welcome/preview", json={"event": "x"}).status_code == 422
    assert api.post("/v1/activations/welcome/preview", json={"sample": {}}).status_code == 422
    assert api.post("/v1/activations/nope/preview", json={"event": {}}).status_code == 404


@pytest.mark.parametrize("extra", [10**30, json.loads("[" * 300 + "]" * 300)], ids=["int beyond 64 bits", "deep"])
def test_a_payload_that_cannot_be_serialized_answers_422(api: Api, extra: Any) -> None:
    response = api.post(
        "/v1/activations",
        json={
            "name": "big",
            "authentication": "line",
            "recipient": "{{line_user_id}}",
            "messages": [{"type": "text", "text": "Hi", "extra": extra}],
        },
    )
    assert response.status_code == 422


# -- triggers ---------------------------------------------------------------------------------


def test_trigger_one_event(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation()
    response = api.post(
        "/v1/activations/welcome/triggers", json={"event": {"line_user_id": U1, "name": "Ann", "event_id": "e1"}}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "results": [{"event_id": "e1", "status": "accepted", "error": None}],
        "counts": {"accepted": 1},
    }
    # Durable before the 202: the log shows it at once.
    assert api.log()[0]["state"] == "queued"
    api.deliver()
    assert sim.stats()["accepted_pushes"] == 1
    assert event_state(api, "e1")["delivered"] is True


def test_trigger_a_batch_with_duplicates_and_unrenderable_events(api: Api) -> None:
    api.create_activation()
    api.trigger([{"line_user_id": U1, "name": "Ann", "event_id": "seen"}])
    events = [
        {"line_user_id": U1, "name": "Ann", "event_id": "seen"},  # seen before
        {"line_user_id": U2, "name": "Bob", "event_id": "b1"},
        {"line_user_id": U2, "name": "Bob", "event_id": "b1"},  # twice in this batch
        {"line_user_id": U3, "event_id": "b2"},  # no name: cannot render
        {"line_user_id": U3, "name": "Cy"},  # id given by the service
    ]
    response = api.post("/v1/activations/welcome/triggers", json={"events": events})
    assert response.status_code == 202, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "accepted", "duplicate", "failed", "accepted"]
    assert "Variable not found" in body["results"][3]["error"]
    assert body["results"][4]["event_id"]
    assert body["counts"] == {"duplicate": 2, "accepted": 2, "failed": 1}
    assert len(api.log()) == 4
    assert event_state(api, "b2")["state"] == "failed"


def test_a_full_batch_is_accepted_and_one_more_is_refused(api: Api) -> None:
    api.create_activation()
    full = [{"line_user_id": U1, "name": "n", "event_id": f"e{i}"} for i in range(1000)]
    assert api.post("/v1/activations/welcome/triggers", json={"events": full}).json()["counts"] == {"accepted": 1000}
    over = [{"line_user_id": U1, "name": "n", "event_id": f"f{i}"} for i in range(1001)]
    response = api.post("/v1/activations/welcome/triggers", json={"events": over})
    assert response.status_code == 422
    assert problem_fields(response) == ["events"]
    assert "1000" in response.json()["message"]
    assert len(api.log()) == 1000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({}, "body"),
        ({"event": {"line_user_id": U1}, "events": [{"line_user_id": U1}]}, "body"),
        ({"events": "x"}, "events"),
        ({"events": [1]}, "events[0]"),
        ({"events": [{"name": "a"}, "b"]}, "events[1]"),
        ({"event": [1, 2]}, "event"),
        ({"event": None}, "body"),
        ({"event": {}, "extra": True}, "extra"),
        ([{"line_user_id": U1}], "body"),
    ],
)
def test_bad_trigger_bodies_answer_422_naming_the_field(api: Api, body: Any, field: str) -> None:
    api.create_activation()
    response = api.post("/v1/activations/welcome/triggers", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert field in problem_fields(response)
    assert api.log() == []


@pytest.mark.parametrize("raw", [b'{"event": {', b"not json", b'{"events": [1,]}', b""])
def test_malformed_json_answers_400(api: Api, raw: bytes) -> None:
    api.create_activation()
    response = api.post("/v1/activations/welcome/triggers", data=raw, headers=JSON)
    expected = 422 if raw == b"" else 400  # an empty body is a missing body, not bad JSON
    assert response.status_code == expected, response.text
    if expected == 400:
        assert response.json()["error"] == "malformed_json"


def test_malformed_json_on_other_endpoints_answers_400(api: Api) -> None:
    api.create_activation()
    for path in (
        "/v1/activations",
        "/v1/authentications",
        "/v1/activations/welcome/preview",
        "/v1/activations/welcome/replay",
    ):
        response = api.post(path, data=b"{oops", headers=JSON)
        assert response.status_code == 400, (path, response.text)
    assert api.patch("/v1/activations/welcome", data=b"{oops", headers=JSON).status_code == 400


def test_trigger_unknown_activation_answers_404(api: Api) -> None:
    response = api.post("/v1/activations/nope/triggers", json={"event": {"line_user_id": U1}})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# -- activation table -------------------------------------------------------------------------


@pytest.fixture
def delivered_log(api: Api, sim: ThreadedSimulator) -> Api:
    """Ten events: U1 refused (400), U2 delivered after a 503, the rest delivered; five accepted later."""
    api.create_activation()
    sim.patch({"script": {U1: [400], U2: [503]}})
    api.trigger(
        [{"line_user_id": U1, "name": "a", "event_id": "bad"}, {"line_user_id": U2, "name": "b", "event_id": "flaky"}]
        + [{"line_user_id": user_id(10 + i), "name": "c", "event_id": f"early{i}"} for i in range(3)]
    )
    api.clock.advance(100)
    api.trigger([{"line_user_id": user_id(20 + i), "name": "d", "event_id": f"late{i}"} for i in range(5)])
    api.deliver()
    return api


def test_log_filters(delivered_log: Api) -> None:
    api = delivered_log
    everything = api.log()
    assert len(everything) == 10
    assert [e["event_id"] for e in everything][:1] == ["late4"]  # newest first
    assert {e["event_id"] for e in api.log(delivered="false")} == {"bad"}
    assert len(api.log(delivered="true")) == 9
    assert {e["event_id"] for e in api.log(state="failed")} == {"bad"}
    assert len(api.log(state="delivered")) == 9
    assert api.log(state="queued") == []
    assert len(api.log(state="delivered", delivered="true")) == 9
    assert api.log(state="delivered", delivered="false") == api.log(state="failed", delivered="true") == []
    assert {e["event_id"] for e in api.log(state="failed", status_code=400)} == {"bad"}
    assert {e["event_id"] for e in api.log(status_code=400)} == {"bad"}
    assert len(api.log(status_code=200)) == 9
    late = START + 100
    assert {e["event_id"] for e in api.log(since=iso(late))} == {f"late{i}" for i in range(5)}
    assert {e["event_id"] for e in api.log(until=iso(late))} == {"bad", "flaky", "early0", "early1", "early2"}
    assert api.log(since=iso(late), until=iso(late)) == []
    assert {e["event_id"] for e in api.log(since=iso(START), until=iso(late), delivered="false")} == {"bad"}


def test_log_entry_fields_and_one_event_with_its_attempts(delivered_log: Api) -> None:
    api = delivered_log
    flaky = event_state(api, "flaky")
    assert flaky["state"] == "delivered"
    assert flaky["attempts"] == 2
    assert [a["status_code"] for a in flaky["attempt_log"]] == [503, 200]
    assert [a["attempt"] for a in flaky["attempt_log"]] == [1, 2]
    assert flaky["line_request_id"]
    assert flaky["sent_message_ids"]
    assert flaky["request_body"] == {
        "to": U2,
        "messages": [{"type": "text", "text": "Hello b"}],
        "customAggregationUnits": ["welcome"],
    }
    bad = event_state(api, "bad")
    assert (bad["state"], bad["delivered"], bad["status_code"]) == ("failed", False, 400)
    assert bad["error"]
    assert len(bad["attempt_log"]) == 1
    missing = api.get("/v1/activations/welcome/events/nope")
    assert missing.status_code == 404
    assert api.get("/v1/activations/nope/events/bad").status_code == 404


def test_log_cursor_pagination_walks_every_event_once(api: Api) -> None:
    api.create_activation()
    for chunk in range(3):
        api.trigger([{"line_user_id": U1, "name": "n", "event_id": f"e{chunk}-{i}"} for i in range(9)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        response = api.get("/v1/activations/welcome/log", params=params)
        assert response.status_code == 200
        page = response.json()
        assert len(page["events"]) <= 5
        seen += [e["event_id"] for e in page["events"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages >= 6
    assert len(seen) == len(set(seen)) == 27
    assert seen == [e["event_id"] for e in api.log()]
    assert set(seen) == {f"e{c}-{i}" for c in range(3) for i in range(9)}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
        ({"state": "lost"}, "state"),
        ({"delivered": "perhaps"}, "delivered"),
        ({"status_code": 99}, "status_code"),
        ({"status_code": 600}, "status_code"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2027-13-01"}, "until"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_log_queries_answer_422_naming_the_parameter(api: Api, params: dict[str, Any], field: str) -> None:
    api.create_activation()
    response = api.get("/v1/activations/welcome/log", params=params)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [field]


def test_log_limit_bounds_are_inclusive(api: Api) -> None:
    api.create_activation()
    api.trigger([{"line_user_id": U1, "name": "n"} for _ in range(3)])
    assert len(api.get("/v1/activations/welcome/log", params={"limit": 1}).json()["events"]) == 1
    assert len(api.get("/v1/activations/welcome/log", params={"limit": 1000}).json()["events"]) == 3


def test_log_of_unknown_activation_answers_404(api: Api) -> None:
    assert api.get("/v1/activations/nope/log").status_code == 404
    assert api.get("/v1/activations/nope/log", params={"format": "csv"}).status_code == 404


def test_log_as_csv(delivered_log: Api) -> None:
    response = delivered_log.get("/v1/activations/welcome/log", params={"format": "csv", "delivered": "false"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == activation_table.COLUMNS
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["event_id"], row["state"], row["status_code"]) == ("bad", "failed", "400")
    everything = delivered_log.get("/v1/activations/welcome/log", params={"format": "csv"})
    assert len(list(csv.reader(io.StringIO(everything.text)))) == 11


def test_log_as_csv_when_empty_has_the_header(api: Api) -> None:
    api.create_activation()
    response = api.get("/v1/activations/welcome/log", params={"format": "csv"})
    assert list(csv.reader(io.StringIO(response.text))) == [list(activation_table.COLUMNS)]


def test_log_as_csv_over_many_chunks_has_one_header(api: Api) -> None:
    api.create_activation()
    api.trigger([{"line_user_id": U1, "name": "n", "event_id": f"e{i}"} for i in range(1000)])
    api.trigger([{"line_user_id": U1, "name": "n", "event_id": f"f{i}"} for i in range(234)])
    rows = list(csv.reader(io.StringIO(api.get("/v1/activations/welcome/log", params={"format": "csv"}).text)))
    assert len(rows) == 1235
    assert sum(1 for r in rows if r[0] == "event_id") == 1
    assert len({r[0] for r in rows[1:]}) == 1234


def test_log_as_ndjson(delivered_log: Api) -> None:
    response = delivered_log.get("/v1/activations/welcome/log", params={"format": "ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.splitlines()
    assert len(lines) == 10
    entries = [json.loads(line) for line in lines]
    assert entries == delivered_log.log()
    failed = delivered_log.get("/v1/activations/welcome/log", params={"format": "ndjson", "state": "failed"})
    assert [json.loads(line)["event_id"] for line in failed.text.splitlines()] == ["bad"]


@pytest.mark.parametrize("param", ["since", "until"])
def test_an_extreme_time_filter_is_not_a_server_error(api: Api, param: str) -> None:
    api.create_activation()
    response = api.get("/v1/activations/welcome/log", params={param: "0001-01-01T00:00:00"})
    assert response.status_code in (200, 422)


# -- replay -----------------------------------------------------------------------------------


def retries_of(api: Api, event_id: str) -> int:
    [(retries,)] = api.sql("SELECT retries FROM events WHERE event_id = ?", event_id)
    return int(retries)


def test_replay_a_failed_event_with_the_same_retry_key_and_a_fresh_budget(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation(max_retries=1)
    sim.patch({"script": {U1: [503, 503, 503]}})
    api.trigger(
        [{"line_user_id": U1, "name": "Ann", "event_id": "e1"}, {"line_user_id": U2, "name": "Bob", "event_id": "ok"}]
    )
    api.deliver()
    failed = event_state(api, "e1")
    assert (failed["state"], failed["attempts"], failed["status_code"]) == ("failed", 2, 503)
    assert retries_of(api, "e1") == 1

    response = api.post("/v1/activations/welcome/replay", json={"event_ids": ["e1", "ok", "nope"]})
    assert response.status_code == 200, response.text
    assert response.json() == {"replayed": ["e1"], "not_replayable": ["ok", "nope"]}
    queued = event_state(api, "e1")
    assert queued["state"] == "queued"
    assert queued["retry_key"] == failed["retry_key"]
    assert queued["finished_at"] is None
    assert retries_of(api, "e1") == 0

    # One 503 is left in the script: with a fresh budget of one retry the event gets through.
    api.deliver()
    done = event_state(api, "e1")
    assert done["state"] == "delivered"
    assert done["retry_key"] == failed["retry_key"]
    assert [a["status_code"] for a in done["attempt_log"]] == [503, 503, 503, 200]
    stats = sim.stats()
    assert stats["accepted_pushes"] == 2
    assert stats["max_accepted_per_recipient"] == 1


def test_replay_everything_failed(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation()
    sim.patch({"script": {U1: [400], U2: [400]}})
    api.trigger(
        [
            {"line_user_id": U1, "name": "a", "event_id": "a"},
            {"line_user_id": U2, "name": "b", "event_id": "b"},
            {"line_user_id": U3, "name": "c", "event_id": "c"},
            {"line_user_id": U3, "event_id": "unrenderable"},
        ]
    )
    api.deliver()
    assert {e["event_id"] for e in api.log(state="failed")} == {"a", "b", "unrenderable"}
    response = api.post("/v1/activations/welcome/replay")
    assert response.status_code == 200
    assert sorted(response.json()["replayed"]) == ["a", "b"]  # never rendered: nothing to resend
    assert response.json()["not_replayable"] == []
    api.deliver()
    assert {e["event_id"] for e in api.log(state="delivered")} == {"a", "b", "c"}
    assert sim.stats()["max_accepted_per_recipient"] == 1


def test_an_event_first_tried_over_24_hours_ago_is_not_replayable(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation()
    sim.patch({"script": {U1: [400], U2: [400]}})
    api.trigger([{"line_user_id": U1, "name": "a", "event_id": "old"}])
    api.deliver()
    api.clock.advance(23 * 3600)
    api.trigger([{"line_user_id": U2, "name": "b", "event_id": "recent"}])
    api.deliver()
    api.clock.advance(3600 + 1)
    response = api.post("/v1/activations/welcome/replay", json={"event_ids": ["old", "recent"]})
    assert response.json() == {"replayed": ["recent"], "not_replayable": ["old"]}
    assert event_state(api, "old")["state"] == "failed"
    everything = api.post("/v1/activations/welcome/replay")
    assert everything.json() == {"replayed": [], "not_replayable": []}


def test_replay_errors(api: Api) -> None:
    api.create_activation()
    assert api.post("/v1/activations/nope/replay").status_code == 404
    bad = api.post("/v1/activations/welcome/replay", json={"event_ids": "e1"})
    assert bad.status_code == 422
    assert problem_fields(bad) == ["event_ids"]
    assert api.post("/v1/activations/welcome/replay", json={"event_ids": []}).json() == {
        "replayed": [],
        "not_replayable": [],
    }


def test_a_replay_names_at_most_10000_events(api: Api) -> None:
    api.create_activation()
    at_most = [f"e{i}" for i in range(10_000)]

    too_many = api.post("/v1/activations/welcome/replay", json={"event_ids": [*at_most, "one-more"]})
    assert too_many.status_code == 422
    assert problem_fields(too_many) == ["event_ids"]
    assert "10000" in too_many.json()["message"]

    allowed = api.post("/v1/activations/welcome/replay", json={"event_ids": at_most})
    assert allowed.status_code == 200
    assert len(allowed.json()["not_replayable"]) == 10_000


def test_a_pause_reason_with_a_nul_is_refused_naming_the_field(api: Api) -> None:
    api.create_activation()
    response = api.post("/v1/activations/welcome/pause", json={"reason": "oops\u0000"})
    assert response.status_code == 422 and problem_fields(response) == ["reason"]
    assert api.get("/v1/activations/welcome").json()["paused"] is False


# -- operations -------------------------------------------------------------------------------


def test_metrics(api: Api) -> None:
    api.create_activation()
    api.trigger([{"line_user_id": U1, "name": "a", "event_id": "1"}, {"line_user_id": U1, "event_id": "2"}])
    api.trigger([{"line_user_id": U1, "name": "a", "event_id": "1"}])
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'lineoa_export_events_accepted_total{activation="welcome",status="accepted"} 1.0' in text
    assert 'lineoa_export_events_accepted_total{activation="welcome",status="failed"} 1.0' in text
    assert 'lineoa_export_events_accepted_total{activation="welcome",status="duplicate"} 1.0' in text
    assert 'lineoa_export_queue_depth{activation="welcome",state="queued"} 1.0' in text
    for family in (
        "lineoa_export_events_delivered_total",
        "lineoa_export_events_failed_total",
        "lineoa_export_events_retried_total",
        "lineoa_export_delivery_latency_seconds",
        "lineoa_export_channel_rate_limit",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family


def test_openapi_document(api: Api) -> None:
    response = api.get("/openapi.json", headers={"Authorization": None})
    assert response.status_code == 200
    doc = response.json()
    paths = set(doc["paths"])
    assert {
        "/v1/authentications",
        "/v1/authentications/{name}",
        "/v1/authentications/{name}/test",
        "/v1/activations",
        "/v1/activations/{name}",
        "/v1/activations/{name}/pause",
        "/v1/activations/{name}/resume",
        "/v1/activations/{name}/validate",
        "/v1/activations/{name}/preview",
        "/v1/activations/{name}/triggers",
        "/v1/activations/{name}/log",
        "/v1/activations/{name}/events/{event_id}",
        "/v1/activations/{name}/replay",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    schemes = doc["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"].lower() == "bearer" for s in schemes.values())
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            secured = bool(operation.get("security"))
            # LINE's webhook is authenticated by its x-line-signature, not by an API key.
            assert secured == (path not in ("/healthz", "/readyz", "/line/webhook/{authentication}")), (method, path)
    # Public, as the README says; no docs page (FastAPI's loads its scripts from a CDN).
    assert api.get("/openapi.json", headers={"Authorization": None}).status_code == 200
    assert api.get("/docs", headers={"Authorization": None}).status_code == 404


def test_unknown_paths_and_methods(api: Api) -> None:
    missing = api.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = api.client.put("/v1/activations")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


# -- input no service may choke on ----------------------------------------------------------------

SURROGATE_CASES = [
    pytest.param(
        "/v1/activations/welcome/triggers",
        b'{"event": {"line_user_id": "%s", "name": "x", "event_id": "\\ud800"}}',
        id="trigger event_id",
    ),
    pytest.param(
        "/v1/activations/welcome/triggers",
        b'{"event": {"line_user_id": "%s", "name": "\\ud800"}}',
        id="trigger attribute",
    ),
    pytest.param(
        "/v1/activations/welcome/preview", b'{"event": {"line_user_id": "%s", "name": "\\ud800"}}', id="preview"
    ),
    pytest.param("/v1/activations/welcome/replay", b'{"event_ids": ["\\ud800"]}', id="replay"),
    pytest.param(
        "/v1/activations",
        b'{"name": "s", "authentication": "line", "recipient": "{{line_user_id}}", '
        b'"messages": [{"type": "text", "text": "\\ud800"}]}',
        id="activation",
    ),
    pytest.param("/v1/authentications", b'{"name": "s", "access_token": "\\ud800", "skip_test": true}', id="token"),
]


@pytest.mark.parametrize(("path", "raw"), SURROGATE_CASES)
def test_a_lone_surrogate_is_not_a_server_error(api: Api, path: str, raw: bytes) -> None:
    """A lone UTF-16 surrogate escape is valid JSON but no valid text: refused (4xx), or, in a
    trigger, the event is recorded as failed with the reason."""
    api.create_activation()
    body = raw % U1.encode() if b"%s" in raw else raw
    response = api.post(path, data=body, headers=JSON)
    assert response.status_code < 500
    if path.endswith("/triggers"):
        assert response.status_code == 202
        [result] = response.json()["results"]
        assert result["status"] == "failed"
        assert result["error"]
        assert api.log()[0]["state"] == "failed"
    else:
        assert response.status_code in (400, 422), response.text


def test_awkward_but_valid_input_is_handled(api: Api, sim: ThreadedSimulator) -> None:
    api.create_activation()
    events = [
        {"line_user_id": U1, "name": "a", "event_id": "x" * 200},  # the longest id there may be
        {"line_user_id": U1, "name": "b", "event_id": 12345},  # not a string
        {"line_user_id": U1, "name": "c", "event_id": "a\u0000b"},
        {"line_user_id": U1, "name": 10**30, "event_id": "big"},  # rendered as text
        {"line_user_id": U1, "name": "ünï ✓ 🎉", "event_id": "unicode"},
        {"line_user_id": U1, "name": "d", "event_id": ""},  # empty: one is made up
        {"line_user_id": [U1], "name": "e", "event_id": "list"},
    ]
    response = api.post("/v1/activations/welcome/triggers", json={"events": events})
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert results[0]["event_id"] == "x" * 200
    assert results[1]["event_id"] == "12345"
    assert results[5]["event_id"]
    assert results[6]["status"] == "failed"
    api.deliver()
    states = {e["event_id"]: e["state"] for e in api.log()}
    assert states["unicode"] == "delivered"
    assert states["big"] == "delivered"
    assert event_state(api, "x" * 200)["state"] == "delivered"


def test_an_event_id_over_200_characters_is_refused_not_cut_into_another_events_id(api: Api) -> None:
    api.create_activation()
    api.trigger([{"line_user_id": U1, "event_id": "x" * 200}])

    longer = api.post(
        "/v1/activations/welcome/triggers",
        json={"events": [{"line_user_id": U2, "event_id": "ok"}, {"line_user_id": U1, "event_id": "x" * 201}]},
    )

    assert longer.status_code == 422, longer.text  # before: cut to "x" * 200 and dropped as a duplicate
    assert problem_fields(longer) == ["events[1].event_id"]
    assert "at most 200 characters (got 201)" in longer.json()["message"]
    assert [e["event_id"] for e in api.log()] == ["x" * 200]  # nothing of the request was stored


def test_a_body_over_16_mb_is_refused_before_it_is_read(api: Api) -> None:
    api.create_activation()
    huge = b'{"event": {"name": "' + b"x" * (16 * 1024 * 1024) + b'"}}'
    response = api.post("/v1/activations/welcome/triggers", data=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
