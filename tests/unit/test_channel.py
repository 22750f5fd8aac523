"""LineChannel.push: one re-mint and one resend on a 401 for minted tokens, same key, same bytes."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from lineoa_export.authentications import Authentication, Credentials, TokenSource
from lineoa_export.clock import FakeClock
from lineoa_export.delivery.channel import LineChannel
from lineoa_export.delivery.line_client import LineClient
from lineoa_export.delivery.outcomes import Answer, NoAnswer, OutcomeKind
from lineoa_export.testing import FakeTransport

API = "https://api.line.test"
PUSH = "/v2/bot/message/push"
TOKEN = "/oauth2/v3/token"
QUOTA = "/v2/bot/message/quota"
CONSUMPTION = "/v2/bot/message/quota/consumption"
CHANNEL_ID = "1234567890"
LONG_LIVED = "long-lived-token"
RETRY_KEY = "5f1c1a4e-2b6f-4d53-9a52-7f1d3c1e9b10"
BODY = b'{"to":"U0123456789abcdef0123456789abcdef","messages":[{"type":"text","text":"Hi \\u00e9"}]}'
UNAUTHORIZED = Answer(401, orjson.dumps({"message": "Authentication failed due to the expired access token"}))
DELIVERED = Answer(200, orjson.dumps({"sentMessages": [{"id": "4612", "quoteToken": "q"}]}), request_id="req-2")


def minted(token: str) -> Answer:
    return Answer(200, orjson.dumps({"token_type": "Bearer", "access_token": token, "expires_in": 900}))


def make_channel(transport: FakeTransport, creds: Credentials) -> LineChannel:
    auth = Authentication(
        name="main",
        kind=creds.kind,
        api_url=API,
        channel_id=creds.channel_id,
        channel_key=creds.channel_id or "auth:main",
        bot_user_id=None,
        bot_name=None,
        created_at=0.0,
    )
    client = LineClient(transport, API)
    return LineChannel(auth, client, TokenSource(client, creds, FakeClock()))


CHANNEL_CREDS = Credentials.from_options(None, CHANNEL_ID, "s" * 32)
LONG_LIVED_CREDS = Credentials.from_options(LONG_LIVED, None, None)


def test_a_push_sends_the_body_byte_for_byte_with_its_retry_key() -> None:
    transport = FakeTransport({PUSH: [DELIVERED]})

    outcome = asyncio.run(make_channel(transport, LONG_LIVED_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is OutcomeKind.DELIVERED
    assert outcome.sent_message_ids == ("4612",)
    (call,) = transport.calls
    assert (call.method, call.url, call.body) == ("POST", API + PUSH, BODY)
    assert call.headers == {
        "Authorization": "Bearer " + LONG_LIVED,
        "Content-Type": "application/json",
        "X-Line-Retry-Key": RETRY_KEY,
    }


def test_a_401_on_a_minted_token_remints_once_and_resends_the_same_request() -> None:
    transport = FakeTransport({TOKEN: [minted("t1"), minted("t2")], PUSH: [UNAUTHORIZED, DELIVERED]})

    outcome = asyncio.run(make_channel(transport, CHANNEL_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is OutcomeKind.DELIVERED
    assert outcome.request_id == "req-2"
    assert [c.url.removeprefix(API) for c in transport.calls] == [TOKEN, PUSH, TOKEN, PUSH]
    first, second = transport.to(PUSH)
    assert first.headers["Authorization"] == "Bearer t1"
    assert second.headers["Authorization"] == "Bearer t2"
    assert first.headers["X-Line-Retry-Key"] == second.headers["X-Line-Retry-Key"] == RETRY_KEY
    assert first.body == second.body == BODY


def test_a_second_401_is_unauthorized_with_no_third_try() -> None:
    transport = FakeTransport({TOKEN: [minted("t1"), minted("t2"), minted("t3")], PUSH: [UNAUTHORIZED]})

    outcome = asyncio.run(make_channel(transport, CHANNEL_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert outcome.status_code == 401
    assert outcome.error == "Authentication failed due to the expired access token"
    assert len(transport.to(PUSH)) == 2
    assert len(transport.to(TOKEN)) == 2


def test_a_401_on_a_long_lived_token_is_unauthorized_without_resend() -> None:
    transport = FakeTransport({PUSH: [UNAUTHORIZED, DELIVERED]})

    outcome = asyncio.run(make_channel(transport, LONG_LIVED_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert len(transport.calls) == 1
    assert transport.to(TOKEN) == []


def test_a_refused_remint_is_unauthorized_without_resend() -> None:
    refused = Answer(400, orjson.dumps({"error": "invalid_client", "error_description": "invalid client_secret"}))
    transport = FakeTransport({TOKEN: [minted("t1"), refused], PUSH: [UNAUTHORIZED, DELIVERED]})

    outcome = asyncio.run(make_channel(transport, CHANNEL_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert outcome.error == "channel token request refused: invalid client_secret"
    assert len(transport.to(PUSH)) == 1


def test_a_refused_first_mint_sends_nothing() -> None:
    refused = Answer(401, orjson.dumps({"error": "invalid_client"}))
    transport = FakeTransport({TOKEN: [refused], PUSH: [DELIVERED]})

    outcome = asyncio.run(make_channel(transport, CHANNEL_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert transport.to(PUSH) == []


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(403, orjson.dumps({"message": "not allowed"})), OutcomeKind.FORBIDDEN),
        (Answer(500, b""), OutcomeKind.TRANSIENT),
        (NoAnswer("timeout"), OutcomeKind.TRANSIENT),
        (Answer(409, b"{}", accepted_request_id="orig"), OutcomeKind.DUPLICATE),
    ],
)
def test_other_answers_are_not_resent(answer: Answer | NoAnswer, kind: OutcomeKind) -> None:
    transport = FakeTransport({TOKEN: [minted("t1")], PUSH: [answer, DELIVERED]})

    outcome = asyncio.run(make_channel(transport, CHANNEL_CREDS).push(BODY, RETRY_KEY))

    assert outcome.kind is kind
    assert len(transport.to(PUSH)) == 1


def test_concurrent_401s_on_one_token_remint_once() -> None:
    transport = FakeTransport(
        {TOKEN: [minted("t1"), minted("t2"), minted("t3")], PUSH: [UNAUTHORIZED] * 5 + [DELIVERED]}
    )
    channel = make_channel(transport, CHANNEL_CREDS)

    async def main() -> list[OutcomeKind]:
        await channel.tokens.token()  # every push starts with t1
        outcomes = await asyncio.gather(*(channel.push(BODY, f"key-{i}") for i in range(5)))
        return [o.kind for o in outcomes]

    assert asyncio.run(main()) == [OutcomeKind.DELIVERED] * 5
    assert len(transport.to(TOKEN)) == 2
    assert [c.headers["Authorization"] for c in transport.to(PUSH)[5:]] == ["Bearer t2"] * 5


def test_an_unusable_token_answer_is_never_reported_as_delivered() -> None:
    # Regression: push() once returned DELIVERED here, recording an event delivered though nothing was sent.
    transport = FakeTransport({TOKEN: [Answer(200, b"<html>proxy login</html>")], PUSH: [DELIVERED]})

    outcome = asyncio.run(make_channel(transport, CHANNEL_CREDS).push(BODY, RETRY_KEY))

    assert transport.to(PUSH) == []
    assert not outcome.kind.delivered
    assert outcome.kind is OutcomeKind.TRANSIENT  # retried later, with the same key


# -- quota -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "consumption", "room"),
    [
        (Answer(200, b'{"type":"none"}'), None, True),
        (Answer(200, b'{"type":"limited","value":1000}'), Answer(200, b'{"totalUsage":999}'), True),
        (Answer(200, b'{"type":"limited","value":1000}'), Answer(200, b'{"totalUsage":1000}'), False),
        (Answer(200, b'{"type":"limited","value":1000}'), Answer(500, b""), None),
        (Answer(500, b""), None, None),
        (NoAnswer("timeout"), None, None),
    ],
)
def test_quota_has_room(quota: Answer | NoAnswer, consumption: Answer | None, room: bool | None) -> None:
    answers: dict[str, list[Answer | NoAnswer]] = {QUOTA: [quota]}
    if consumption is not None:
        answers[CONSUMPTION] = [consumption]
    transport = FakeTransport(answers)

    assert asyncio.run(make_channel(transport, LONG_LIVED_CREDS).quota_has_room()) is room
    assert all("X-Line-Retry-Key" not in c.headers for c in transport.calls)
