"""The API's side of issue 9: frequency cap and quiet-hours fields on activations, with errors
naming the field; channel_secret write-only; the authentication's webhook path and blocked users."""

from __future__ import annotations

from api_support import Api


def test_cap_and_quiet_hours_are_activation_fields(api: Api) -> None:
    created = api.create_activation(
        frequency_cap="3/7d", over_cap="defer", quiet_hours="22:00-08:00", time_zone="Europe/Paris"
    )
    assert (created["frequency_cap"], created["over_cap"], created["quiet_hours"], created["time_zone"]) == (
        "3/7d",
        "defer",
        "22:00-08:00",
        "Europe/Paris",
    )
    assert created["in_quiet_hours"] == "defer" and created["time_zone_attribute"] is None
    cleared = api.patch("/v1/activations/welcome", json={"frequency_cap": "", "quiet_hours": "none"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["frequency_cap"] is None and cleared.json()["quiet_hours"] is None


def test_bad_cap_and_quiet_hours_answer_422_naming_each_field(api: Api) -> None:
    body = {
        "name": "bad",
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": [{"type": "text", "text": "hi"}],
        "quiet_hours": "25:00-08:00",
        "time_zone": "Asia/Tokio",
        "frequency_cap": "0/1h",
        "in_quiet_hours": "later",
    }
    refused = api.post("/v1/activations", json=body)
    assert refused.status_code == 422
    problems = {p["field"]: p["reason"] for p in refused.json()["problems"]}
    assert problems["quiet_hours"] == '"25:00-08:00" is not HH:MM-HH:MM'
    assert problems["time_zone"] == 'unknown zone "Asia/Tokio"'
    assert problems["frequency_cap"].startswith('"0/1h" is not N/PERIOD')
    assert set(problems) == {"quiet_hours", "time_zone", "frequency_cap", "in_quiet_hours"}


def test_a_token_authentication_takes_the_channel_secret_and_never_returns_it(api: Api) -> None:
    secret = "a-channel-secret-for-webhooks-0123"
    created = api.post(
        "/v1/authentications",
        json={"name": "hooked", "access_token": "t", "channel_secret": secret, "skip_test": True},
    )
    assert created.status_code == 201, created.text
    shown = api.get("/v1/authentications/hooked")
    assert shown.json()["webhook_secret_set"] is True and shown.json()["webhook_path"] == "/line/webhook/hooked"
    assert shown.json()["blocked_users"] == 0
    assert secret not in created.text + shown.text + api.get("/v1/authentications").text
