"""The LINE simulator over HTTP: answers as LINE-FACTS says, through aiohttp's own client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from lineoa_export.simulator import ChannelConfig, RunningSimulator, SimulatorOptions, running_simulator

TOKEN = "demo-access-token"
USER = "U" + "a" * 32
USER2 = "U" + "b" * 32
PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"

MSG_AUTH = "Authentication failed. Confirm that the access token in the authorization header is valid."
MSG_RATE = "The API rate limit has been exceeded. Try again later."
MSG_MONTHLY = "You have reached your monthly limit."
MSG_FORBIDDEN = "Access to this API is not available for your account"


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    json: Any

    @property
    def request_id(self) -> str:
        return self.headers["x-line-request-id"]


Scenario = Callable[[RunningSimulator, aiohttp.ClientSession], Awaitable[None]]


class Clock:
    """A hand-moved clock for token expiry and buckets."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(
    scenario: Scenario,
    options: SimulatorOptions | None = None,
    *,
    clock: Callable[[], float] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> None:
    async def main() -> None:
        kwargs: dict[str, Any] = {}
        if clock is not None:
            kwargs["clock"] = clock
        if monotonic is not None:
            kwargs["monotonic"] = monotonic
        async with running_simulator(options, **kwargs) as sim, aiohttp.ClientSession() as session:
            await scenario(sim, session)

    asyncio.run(main())


def text_body(to: str = USER, *texts: str) -> dict[str, Any]:
    return {"to": to, "messages": [{"type": "text", "text": t} for t in texts or ("hello",)]}


async def call(
    session: aiohttp.ClientSession,
    sim: RunningSimulator,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
    token: str | None = TOKEN,
    method: str = "POST",
    data: Any = None,
    headers: dict[str, str] | None = None,
    client_timeout: float | None = None,
) -> Answer:
    h: dict[str, str] = {}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if key is not None:
        h["X-Line-Retry-Key"] = key
    h.update(headers or {})
    kwargs: dict[str, Any] = {"headers": h}
    if body is not None:
        kwargs["json"] = body
    if data is not None:
        kwargs["data"] = data
    if client_timeout is not None:
        kwargs["timeout"] = aiohttp.ClientTimeout(total=client_timeout)
    async with session.request(method, sim.url + path, **kwargs) as r:
        payload = await r.json(content_type=None)
        return Answer(r.status, r.headers, payload)


async def push(session: aiohttp.ClientSession, sim: RunningSimulator, body: Any = None, **kw: Any) -> Answer:
    return await call(session, sim, PUSH, text_body() if body is None else body, **kw)


def new_key() -> str:
    return str(uuid.uuid4())


# -- push ------------------------------------------------------------------------------------------


def test_push_accepted_with_sent_messages() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        body = {
            "to": USER,
            "messages": [
                {"type": "text", "text": "hi"},
                {"type": "location", "title": "t", "address": "a", "latitude": 1.0, "longitude": 2.0},
            ],
        }
        a = await push(s, sim, body)
        assert a.status == 200
        sent = a.json["sentMessages"]
        assert len(sent) == 2
        assert all(m["id"].isdigit() for m in sent)
        assert sent[0]["id"] != sent[1]["id"]
        assert isinstance(sent[0]["quoteToken"], str) and sent[0]["quoteToken"]
        assert "quoteToken" not in sent[1]  # a location cannot be quoted
        uuid.UUID(a.request_id)
        assert a.headers["Content-Type"].startswith("application/json")
        [accepted] = sim.record.accepted
        assert accepted.to == USER
        assert accepted.request_id == a.request_id
        assert accepted.retry_key is None
        assert accepted.channel_id == "1234567890"
        assert list(accepted.sent_message_ids) == [m["id"] for m in sent]
        assert accepted.sent_messages() == sent

    run(scenario)


def test_same_key_again_is_409_with_original_request_id_and_sent_messages() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        first = await push(s, sim, key=key)
        second = await push(s, sim, key=key)
        assert first.status == 200
        assert second.status == 409
        assert second.headers["x-line-accepted-request-id"] == first.request_id
        assert second.request_id != first.request_id
        assert second.json == {
            "message": "The retry key is already accepted",
            "sentMessages": first.json["sentMessages"],
        }
        assert len(sim.record.accepted) == 1
        assert sim.record.duplicates_suppressed == 1
        assert sim.record.key_body_mismatches == 0

    run(scenario)


def test_scripted_503_does_not_use_the_key_up() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        a = await push(s, sim, key=key)
        assert (a.status, a.json) == (503, {"message": "Service unavailable"})
        assert "x-line-request-id" in a.headers
        b = await push(s, sim, key=key)
        assert b.status == 200
        assert len(sim.record.accepted) == 1
        assert sim.options.script[USER] == []

    run(scenario, SimulatorOptions(script={USER: [503]}))


@pytest.mark.parametrize(
    ("entry", "status", "message"),
    [
        (500, 500, "Internal server error"),
        (502, 502, "Bad gateway"),
        (504, 504, "Gateway timeout"),
        (429, 429, MSG_RATE),
        ("monthly", 429, MSG_MONTHLY),
        (400, 400, "Failed to send messages"),
        (401, 401, MSG_AUTH),
        (403, 403, MSG_FORBIDDEN),
    ],
)
def test_scripted_answers(entry: int | str, status: int, message: str) -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        a = await push(s, sim, key=key)
        assert (a.status, a.json) == (status, {"message": message})
        assert sim.record.accepted == []
        other = await push(s, sim, text_body(USER2))  # the script is per recipient
        assert other.status == 200
        again = await push(s, sim, key=key)  # the script is used up; the key was not
        assert again.status == 200

    run(scenario, SimulatorOptions(script={USER: [entry]}))


def test_accept_then_drop_then_retry_is_409() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await push(s, sim, key=key)
        [accepted] = sim.record.accepted
        retry = await push(s, sim, key=key)
        assert retry.status == 409
        assert retry.headers["x-line-accepted-request-id"] == accepted.request_id
        assert retry.json["sentMessages"] == accepted.sent_messages()
        assert sim.record.dropped == 1
        assert sim.record.usage_by_channel["1234567890"] == 1
        assert sim.record.stats()["requests_by_status"] == {"409": 1}

    run(scenario, SimulatorOptions(script={USER: ["accept-then-drop"]}))


def test_scripted_drop_accepts_nothing() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        with pytest.raises(aiohttp.ClientConnectionError):
            await push(s, sim, key=key)
        assert sim.record.accepted == []
        assert (await push(s, sim, key=key)).status == 200
        assert sim.record.dropped == 1

    run(scenario, SimulatorOptions(script={USER: ["drop"]}))


def test_random_drop() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        with pytest.raises(aiohttp.ClientConnectionError):
            await push(s, sim)
        assert sim.record.accepted == []

    run(scenario, SimulatorOptions(drop_probability=1.0, seed=1))


def test_hang_answers_nothing() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        with pytest.raises(asyncio.TimeoutError):
            await push(s, sim, client_timeout=0.2)
        assert sim.record.hung == 1
        assert sim.record.accepted == []

    # hang_seconds is long; the simulator ends the hang when it shuts down.
    run(scenario, SimulatorOptions(script={USER: ["hang"]}, hang_seconds=30))


def test_random_faults_are_seeded_and_never_use_the_key_up() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        statuses = [(await push(s, sim, key=key)).status for _ in range(40)]
        return_statuses.append(statuses)
        assert set(statuses) <= {200, 409, 500, 503, 429}
        assert statuses.count(200) == 1
        first_ok = statuses.index(200)
        assert all(st != 409 for st in statuses[:first_ok])
        assert len(sim.record.accepted) == 1

    return_statuses: list[list[int]] = []
    for _ in range(2):
        run(scenario, SimulatorOptions(fault_500=0.2, fault_503=0.2, fault_rate_429=0.2, seed=7))
    assert return_statuses[0] == return_statuses[1]


def test_random_429_has_rate_message() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        a = await push(s, sim)
        assert (a.status, a.json) == (429, {"message": MSG_RATE})

    run(scenario, SimulatorOptions(fault_rate_429=1.0))


def test_invalid_body_is_400_with_details() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        a = await push(s, sim, {"to": USER, "messages": [{"type": "text"}]})
        assert a.status == 400
        assert a.json["message"] == f"The request body has {len(a.json['details'])} error(s)"
        assert "messages[0].text" in [d["property"] for d in a.json["details"]]
        assert all(isinstance(d["message"], str) and d["message"] for d in a.json["details"])

        b = await push(s, sim, {"to": "nobody", "messages": []})
        assert b.status == 400
        assert {"to", "messages"} <= {d["property"] for d in b.json["details"]}
        assert b.json["message"] == f"The request body has {len(b.json['details'])} error(s)"

        c = await call(s, sim, PUSH, data=b"{not json", headers={"Content-Type": "application/json"})
        assert c.status == 400
        assert c.json["message"] == "The request body has 1 error(s)"
        assert len(c.json["details"]) == 1

        d = await push(s, sim, key="not-a-uuid")
        assert (d.status, d.json) == (400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"})

        e = await call(s, sim, PUSH, data=b"{}", headers={"Content-Type": "text/plain"})
        assert e.status == 415
        assert sim.record.accepted == []

    run(scenario)


def test_body_over_2mb_is_413() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        a = await push(s, sim, {"to": USER, "messages": [{"type": "text", "text": "x" * (2 * 1024 * 1024)}]})
        assert a.status == 413

    run(scenario)


def test_bad_token_is_401() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for token in ("wrong", None):
            a = await push(s, sim, token=token)
            assert (a.status, a.json) == (401, {"message": MSG_AUTH})
            assert "x-line-request-id" in a.headers
        info = await call(s, sim, "/v2/bot/info", method="GET", token="wrong")
        assert info.status == 401

    run(scenario)


def test_forbidden_channel_is_403_everywhere() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        a = await push(s, sim)
        assert (a.status, a.json) == (403, {"message": MSG_FORBIDDEN})
        for path in ("/v2/bot/info", "/v2/bot/message/quota", "/v2/bot/message/quota/consumption"):
            assert (await call(s, sim, path, method="GET")).status == 403
        m = await call(s, sim, MULTICAST, {"to": [USER], "messages": [{"type": "text", "text": "x"}]})
        assert m.status == 403

    run(scenario, SimulatorOptions(channels=[ChannelConfig(forbidden=True)]))


def test_bot_info_has_a_picture_only_when_the_channel_has_one() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        bare = await call(s, sim, "/v2/bot/info", method="GET")
        assert bare.json["displayName"] == "Demo Official Account" and "pictureUrl" not in bare.json
        sim.options.channels[0].picture_url = "https://profile.line-scdn.net/0hDemo"
        pictured = await call(s, sim, "/v2/bot/info", method="GET")
        assert pictured.json["pictureUrl"] == "https://profile.line-scdn.net/0hDemo"

    run(scenario)


def test_monthly_quota_exhausted_then_raised_by_patch() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        assert (await push(s, sim)).status == 200
        assert (await push(s, sim)).status == 200
        key = new_key()
        a = await push(s, sim, key=key)
        assert (a.status, a.json) == (429, {"message": MSG_MONTHLY})
        q = await call(s, sim, "/v2/bot/message/quota", method="GET")
        assert (q.status, q.json) == (200, {"type": "limited", "value": 2})
        c = await call(s, sim, "/v2/bot/message/quota/consumption", method="GET")
        assert (c.status, c.json) == (200, {"totalUsage": 2})

        async with s.patch(sim.url + "/__sim/options", json={"channels": {"1234567890": {"quota": 5}}}) as r:
            assert r.status == 200
            assert (await r.json())["channels"][0]["quota"] == 5
        assert sim.options.channels[0].quota == 5
        b = await push(s, sim, key=key)  # the 429 did not use the key up
        assert b.status == 200
        q = await call(s, sim, "/v2/bot/message/quota", method="GET")
        assert q.json == {"type": "limited", "value": 5}

    run(scenario, SimulatorOptions(channels=[ChannelConfig(quota=2)]))


def test_quota_none_and_initial_usage() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        q = await call(s, sim, "/v2/bot/message/quota", method="GET")
        assert q.json == {"type": "none"}
        assert "x-line-request-id" in q.headers
        await push(s, sim)
        c = await call(s, sim, "/v2/bot/message/quota/consumption", method="GET")
        assert c.json == {"totalUsage": 11}

    run(scenario, SimulatorOptions(channels=[ChannelConfig(initial_usage=10)]))


def test_bucket_exhaustion_is_429_rate_limit() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        answers = [await push(s, sim) for _ in range(6)]
        assert [a.status for a in answers] == [200] * 5 + [429]
        assert answers[5].json == {"message": MSG_RATE}
        # other endpoints have their own bucket
        assert (await call(s, sim, "/v2/bot/info", method="GET")).status == 200
        frozen.now += 0.2  # one token back
        assert (await push(s, sim)).status == 200
        assert (await push(s, sim)).status == 429
        assert sim.record.max_accepted_in_any_window(1.0) == 6

    frozen = Clock(1000.0)
    run(
        scenario,
        SimulatorOptions(channels=[ChannelConfig(rate_limit_per_second=5, burst=5)]),
        monotonic=frozen,
    )


def test_burst_defaults_to_one_second_of_tokens() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        statuses = [(await push(s, sim)).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]

    run(
        scenario,
        SimulatorOptions(channels=[ChannelConfig(rate_limit_per_second=3)]),
        monotonic=Clock(5.0),
    )


# -- tokens ----------------------------------------------------------------------------------------


def test_token_minting_expiry_and_verify() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        form = {"grant_type": "client_credentials", "client_id": "1234567890"}
        bad = await call(s, sim, "/oauth2/v3/token", token=None, data={**form, "client_secret": "nope"})
        assert bad.status == 400
        assert bad.json["error"] == "invalid_client"
        assert bad.json["error_description"]

        minted = await call(
            s,
            sim,
            "/oauth2/v3/token",
            token=None,
            data={**form, "client_secret": sim.options.channels[0].channel_secret},
        )
        assert minted.status == 200
        assert minted.json["token_type"] == "Bearer"
        assert minted.json["expires_in"] == 900
        token = minted.json["access_token"]
        assert token != TOKEN

        assert (await push(s, sim, token=token)).status == 200
        v = await call(s, sim, "/v2/oauth/verify", token=None, data={"access_token": token})
        assert v.status == 200
        assert v.json["client_id"] == "1234567890"
        assert v.json["expires_in"] == 900
        assert isinstance(v.json["scope"], str)

        clock.now += 899
        v = await call(s, sim, "/v2/oauth/verify", token=None, data={"access_token": token})
        assert v.json["expires_in"] == 1
        assert (await push(s, sim, token=token)).status == 200

        clock.now += 1
        a = await push(s, sim, token=token)
        assert (a.status, a.json) == (401, {"message": MSG_AUTH})
        v = await call(s, sim, "/v2/oauth/verify", token=None, data={"access_token": token})
        assert (v.status, v.json) == (400, {"error": "invalid_request", "error_description": "access token expired"})
        # the long-lived token is unaffected by time
        assert (await push(s, sim)).status == 200

    clock = Clock()
    run(scenario, clock=clock)


def test_revoke_makes_minted_tokens_401_until_reminted() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": "1234567890",
            "client_secret": "demo-channel-secret-0123456789ab",
        }
        token = (await call(s, sim, "/oauth2/v3/token", token=None, data=form)).json["access_token"]
        assert (await push(s, sim, token=token)).status == 200
        async with s.post(sim.url + "/__sim/revoke") as r:
            assert r.status == 200
        assert (await push(s, sim, token=token)).status == 401
        token2 = (await call(s, sim, "/oauth2/v3/token", token=None, data=form)).json["access_token"]
        assert (await push(s, sim, token=token2)).status == 200

    run(scenario)


def test_token_request_errors_and_verify_of_unknown_and_long_lived_tokens() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        a = await call(s, sim, "/oauth2/v3/token", token=None, data={"grant_type": "client_credentials"})
        assert (a.status, a.json["error"]) == (400, "invalid_request")
        b = await call(
            s,
            sim,
            "/oauth2/v3/token",
            token=None,
            data={"grant_type": "password", "client_id": "1", "client_secret": "x"},
        )
        assert (b.status, b.json["error"]) == (400, "unsupported_grant_type")
        v = await call(s, sim, "/v2/oauth/verify", token=None, data={"access_token": "garbage"})
        assert (v.status, v.json) == (400, {"error": "invalid_request", "error_description": "invalid access token"})
        v = await call(s, sim, "/v2/oauth/verify", token=None, data={"access_token": TOKEN})
        assert v.status == 200
        assert v.json["client_id"] == "1234567890"
        assert v.json["expires_in"] > 0

    run(scenario)


# -- other bot endpoints ---------------------------------------------------------------------------


def test_bot_info() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        a = await call(s, sim, "/v2/bot/info", method="GET")
        assert a.status == 200
        assert a.json["userId"] == sim.options.channels[0].bot_user_id
        assert a.json["displayName"] == sim.options.channels[0].display_name
        assert {"basicId", "chatMode", "markAsReadMode"} <= set(a.json)
        bad = await call(s, sim, "/v2/bot/info", method="GET", key=new_key())
        assert bad.status == 400

    run(scenario)


def test_validate_push() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        path = "/v2/bot/message/validate/push"
        ok = await call(s, sim, path, {"messages": [{"type": "text", "text": "hi"}]})
        assert (ok.status, ok.json) == (200, {})
        bad = await call(s, sim, path, {"messages": [{"type": "text", "text": "x" * 5001}]})
        assert bad.status == 400
        assert [d["property"] for d in bad.json["details"]] == ["messages[0].text"]
        assert bad.json["message"] == "The request body has 1 error(s)"
        keyed = await call(s, sim, path, {"messages": [{"type": "text", "text": "hi"}]}, key=new_key())
        assert keyed.status == 400
        assert sim.record.accepted == []

    run(scenario)


def test_multicast() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        body = {"to": [USER, USER2], "messages": [{"type": "text", "text": "hi"}]}
        key = new_key()
        a = await call(s, sim, MULTICAST, body, key=key)
        assert (a.status, a.json) == (200, {})
        again = await call(s, sim, MULTICAST, body, key=key)
        assert again.status == 409
        assert again.headers["x-line-accepted-request-id"] == a.request_id
        assert again.json == {"message": "The retry key is already accepted"}
        [m] = sim.record.multicasts
        assert m.to == (USER, USER2)
        assert sim.record.accepted_per_recipient[USER2] == 1
        c = await call(s, sim, "/v2/bot/message/quota/consumption", method="GET")
        assert c.json == {"totalUsage": 2}

        bad = await call(s, sim, MULTICAST, {"to": [USER, "Cnot-a-user"], "messages": [{"type": "text", "text": "x"}]})
        assert bad.status == 400
        assert [d["property"] for d in bad.json["details"]] == ["to[1]"]
        empty = await call(s, sim, MULTICAST, {"to": [], "messages": [{"type": "text", "text": "x"}]})
        assert empty.status == 400
        too_many = await call(s, sim, MULTICAST, {"to": [USER] * 501, "messages": [{"type": "text", "text": "x"}]})
        assert too_many.status == 400

        # quota counts recipients: 2 used of 3, a 2-recipient multicast does not fit
        sim.options.channels[0].quota = 3
        over = await call(s, sim, MULTICAST, body)
        assert (over.status, over.json) == (429, {"message": MSG_MONTHLY})

    run(scenario)


def test_multicast_rate_limit_is_its_own() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        body = {"to": [USER], "messages": [{"type": "text", "text": "hi"}]}
        statuses = [(await call(s, sim, MULTICAST, body)).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert (await push(s, sim)).status == 200

    run(
        scenario,
        SimulatorOptions(channels=[ChannelConfig(multicast_rate_per_second=2)]),
        monotonic=Clock(),
    )


# -- record, stats and control ---------------------------------------------------------------------


def test_stats_counters() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        await push(s, sim, key=key)  # 503 (script)
        await push(s, sim, text_body(USER, "changed"), key=key)  # 200, but another body
        await push(s, sim, key=key)  # 409
        await push(s, sim, token="bad")  # 401
        await push(s, sim, text_body(USER2))  # 200
        async with s.get(sim.url + "/__sim/stats?recipients=1") as r:
            stats = await r.json()
        assert stats["accepted_total"] == 2
        assert stats["duplicates_suppressed"] == 1
        assert stats["key_body_mismatches"] == 1  # the 409 attempt sent the first body again
        assert stats["requests_by_status"] == {"200": 2, "401": 1, "409": 1, "503": 1}
        assert stats["requests_by_endpoint"]["push"] == stats["requests_by_status"]
        assert stats["accepted_per_recipient"] == {USER: 1, USER2: 1}
        assert stats["quota_usage"] == {"1234567890": 2}
        assert stats["max_accepted_in_any_1s_window"] == 2
        assert len(sim.record.bodies_for_key(key)) == 2

        async with s.get(sim.url + "/__sim/accepted") as r:
            accepted = await r.json()
        assert [a["to"] for a in accepted] == [USER, USER2]
        assert "body" not in accepted[0]
        async with s.get(sim.url + "/__sim/accepted?bodies=1") as r:
            accepted = await r.json()
        assert accepted[0]["body"] == text_body(USER, "changed")
        assert accepted[0]["retry_key"] == key

        async with s.post(sim.url + "/__sim/reset") as r:
            assert r.status == 200
        assert sim.record.accepted == []
        assert sim.record.stats()["requests_by_status"] == {}
        assert (await push(s, sim, key=key)).status == 200  # keys forgotten too

    run(scenario, SimulatorOptions(script={USER: [503]}))


def test_patch_options_validation_and_script() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        for bad in ({"fault_503": 2}, {"no_such_option": 1}, {"script": {USER: ["explode"]}}, [1, 2]):
            async with s.patch(sim.url + "/__sim/options", json=bad) as r:
                assert r.status == 400, bad
                assert "message" in await r.json()
        assert sim.options.fault_503 == 0.0

        async with s.patch(sim.url + "/__sim/options", json={"script": {USER: [502]}, "latency_ms": 1}) as r:
            assert r.status == 200
        assert (await push(s, sim)).status == 502
        assert (await push(s, sim)).status == 200

        async with s.patch(
            sim.url + "/__sim/options",
            json={"channels": {"555": {"access_tokens": ["other-token"], "quota": 0}}},
        ) as r:
            assert r.status == 200
        assert [c.channel_id for c in sim.options.channels] == ["1234567890", "555"]
        a = await push(s, sim, token="other-token")
        assert (a.status, a.json) == (429, {"message": MSG_MONTHLY})

        async with s.get(sim.url + "/__sim/options") as r:
            assert (await r.json())["latency_ms"] == 1

    run(scenario)


def test_two_channels_keep_keys_and_quota_apart() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        key = new_key()
        assert (await push(s, sim, key=key)).status == 200
        assert (await push(s, sim, key=key, token="t2")).status == 200
        assert sim.record.usage_by_channel == {"1234567890": 1, "2222": 1}

    run(
        scenario,
        SimulatorOptions(channels=[ChannelConfig(), ChannelConfig(channel_id="2222", access_tokens=["t2"])]),
    )


def test_concurrent_pushes_all_accepted() -> None:
    async def scenario(sim: RunningSimulator, s: aiohttp.ClientSession) -> None:
        answers = await asyncio.gather(*(push(s, sim, text_body(USER, str(i)), key=new_key()) for i in range(50)))
        assert {a.status for a in answers} == {200}
        assert len({a.request_id for a in answers}) == 50
        assert sim.record.accepted_total == 50

    run(scenario)
