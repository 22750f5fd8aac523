"""``GET /v1/activations/{name}/overview`` and ``GET /v1/authentications/{name}/overview``: the console
overview's figures as JSON, for a key of role read (every role: test_roles.py)."""

from __future__ import annotations

from api_support import START, Api

from lineoa_export import apikeys
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import user_id


def test_the_overview_of_an_activation_and_of_its_channel(api: Api) -> None:
    api.create_activation()
    api.create_activation("other", no_aggregation_unit=True)
    assert api.sim is not None
    api.sim.options.script = {user_id(2): [500], user_id(3): [400]}
    api.trigger([{"line_user_id": user_id(n), "name": "Ann"} for n in (1, 2, 3)])
    api.trigger([{"line_user_id": user_id(4), "name": "Bo"}], "other")
    api.deliver()
    reader = apikeys.create(api.ctx.db, "analyst", now=START, role="read")

    answer = api.get("/v1/activations/welcome/overview", headers={"Authorization": f"Bearer {reader}"})
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert (view["scope"], view["name"], view["authentication"]) == ("activation", "welcome", "line")
    assert view["outcomes"] == {"delivered": 2, "retried": 1, "failed": 1, "suppressed": 0, "deferred": 0}
    assert view["retry_reasons"] == {"400": 1, "500": 1}
    assert len(view["pushes_per_minute"]) == 60 and sum(m["delivered"] for m in view["pushes_per_minute"]) == 2
    assert view["queue"] == {"queued": 0, "retrying": 0, "paused": 0, "deferred": 0} and view["lag_seconds"] == 0
    assert view["quota"]["limited"] is False and view["quota"]["used"] == 3
    assert view["null_means"] == "fewer than 20" and view["reconciliation"] is None
    assert DEFAULT_ACCESS_TOKEN not in answer.text

    channel = api.get("/v1/authentications/line/overview").json()
    assert channel["scope"] == "channel" and channel["activations"] == ["other", "welcome"]
    assert channel["outcomes"]["delivered"] == 3


def test_what_does_not_exist_is_404_and_no_key_is_401(api: Api) -> None:
    for path in ("/v1/activations/nope/overview", "/v1/authentications/nope/overview",
                 "/v1/authentications/a%00b/overview", "/v1/activations/a%00b/overview"):  # fmt: skip
        answer = api.get(path)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", path
    assert api.get("/v1/activations/welcome/overview", headers={"Authorization": ""}).status_code == 401
