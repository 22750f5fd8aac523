"""Credentials and tokens: which options make credentials, and how stateless tokens are minted and cached."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import orjson
import pytest

from lineoa_export import authentications
from lineoa_export.authentications import (
    TOKEN_EXPIRY_MARGIN,
    BotInfo,
    Credentials,
    TokenSource,
    TokenUnavailable,
)
from lineoa_export.clock import FakeClock
from lineoa_export.delivery.line_client import LineClient
from lineoa_export.delivery.outcomes import Answer, NoAnswer, OutcomeKind
from lineoa_export.errors import CredentialsRejected, InvalidInput
from lineoa_export.testing import FakeTransport

CHANNEL_ID = "1234567890"
CHANNEL_SECRET = "0123456789abcdef0123456789abcdef"
LONG_LIVED = "long-lived-token/abc+def="
API = "https://api.line.test"
TOKEN_PATH = "/oauth2/v3/token"


def minted(token: str, expires_in: int = 900) -> Answer:
    return Answer(200, orjson.dumps({"token_type": "Bearer", "access_token": token, "expires_in": expires_in}))


def channel() -> Credentials:
    return Credentials.from_options(None, CHANNEL_ID, CHANNEL_SECRET)


def source(transport: FakeTransport, creds: Credentials, clock: FakeClock) -> TokenSource:
    return TokenSource(LineClient(transport, API), creds, clock)


# -- Credentials.from_options ------------------------------------------------------------------


def test_an_access_token_alone_is_a_long_lived_credential() -> None:
    creds = Credentials.from_options(LONG_LIVED, None, None)

    assert creds.kind == "access_token"
    assert creds.access_token == LONG_LIVED
    assert creds.channel_id is None and creds.channel_secret is None


def test_an_access_token_may_bring_the_channel_secret_that_signs_webhooks() -> None:
    creds = Credentials.from_options(LONG_LIVED, None, CHANNEL_SECRET)

    assert creds.kind == "access_token"
    assert (creds.access_token, creds.channel_secret) == (LONG_LIVED, CHANNEL_SECRET)
    assert creds.channel_id is None


def test_a_channel_id_and_secret_are_channel_credentials() -> None:
    creds = Credentials.from_options(None, CHANNEL_ID, CHANNEL_SECRET)

    assert creds.kind == "channel_credentials"
    assert (creds.channel_id, creds.channel_secret) == (CHANNEL_ID, CHANNEL_SECRET)
    assert creds.access_token is None


@pytest.mark.parametrize(
    ("access_token", "channel_id", "channel_secret"),
    [
        (None, None, None),
        ("", "", ""),
        (LONG_LIVED, CHANNEL_ID, CHANNEL_SECRET),
        (LONG_LIVED, CHANNEL_ID, None),
        (None, CHANNEL_ID, None),
        (None, None, CHANNEL_SECRET),
        (None, CHANNEL_ID, ""),
    ],
)
def test_other_combinations_are_refused(
    access_token: str | None, channel_id: str | None, channel_secret: str | None
) -> None:
    with pytest.raises(InvalidInput) as exc:
        Credentials.from_options(access_token, channel_id, channel_secret)

    assert [p.path for p in exc.value.problems] == ["credentials"]
    for secret in (LONG_LIVED, CHANNEL_SECRET):
        assert secret not in str(exc.value)


@pytest.mark.parametrize("channel_id", ["abc", "12 34", "-1234", "1234x"])
def test_a_non_numeric_channel_id_is_refused(channel_id: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        Credentials.from_options(None, channel_id, CHANNEL_SECRET)

    assert [p.path for p in exc.value.problems] == ["channel_id"]
    assert CHANNEL_SECRET not in str(exc.value)


LONG_LIVED_CREDS = Credentials.from_options(LONG_LIVED, None, None)


@pytest.mark.parametrize("creds", [LONG_LIVED_CREDS, channel()], ids=["token", "channel"])
def test_repr_and_str_never_show_the_secret(creds: Credentials) -> None:
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert LONG_LIVED not in text
        assert CHANNEL_SECRET not in text
        assert "redacted" in text


# -- TokenSource -------------------------------------------------------------------------------


def test_a_long_lived_token_is_returned_as_is_and_never_minted() -> None:
    transport = FakeTransport()
    clock = FakeClock()
    tokens = source(transport, Credentials.from_options(LONG_LIVED, None, None), clock)

    async def main() -> list[str]:
        got = [await tokens.token()]
        clock.advance(365 * 86400)
        got.append(await tokens.token())
        return got

    assert asyncio.run(main()) == [LONG_LIVED, LONG_LIVED]
    assert tokens.renewable is False
    assert transport.calls == []


def test_channel_credentials_mint_once_and_cache_until_shortly_before_expiry() -> None:
    transport = FakeTransport({TOKEN_PATH: [minted("t1", 900), minted("t2", 900)]})
    clock = FakeClock()
    tokens = source(transport, channel(), clock)

    async def main() -> list[str]:
        got = [await tokens.token()]
        clock.advance(900 - TOKEN_EXPIRY_MARGIN - 0.001)  # 839.999 s later: still cached
        got.append(await tokens.token())
        clock.advance(0.001)  # 840 s after minting: mint anew, 60 s before LINE expires it
        got.append(await tokens.token())
        got.append(await tokens.token())
        return got

    assert asyncio.run(main()) == ["t1", "t1", "t2", "t2"]
    assert tokens.renewable is True
    assert transport.paths() == [TOKEN_PATH, TOKEN_PATH]


def test_the_mint_request_is_the_oauth_client_credentials_form() -> None:
    transport = FakeTransport({TOKEN_PATH: [minted("t1")]})

    asyncio.run(source(transport, channel(), FakeClock()).token())

    (call,) = transport.calls
    assert call.method == "POST"
    assert call.url == API + TOKEN_PATH
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-Line-Retry-Key" not in call.headers  # LINE answers 400 to a key outside push
    assert call.body is not None
    assert parse_qs(call.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [CHANNEL_ID],
        "client_secret": [CHANNEL_SECRET],
    }


def test_a_missing_expires_in_means_15_minutes() -> None:
    answer = Answer(200, orjson.dumps({"access_token": "t1"}))
    transport = FakeTransport({TOKEN_PATH: [answer, minted("t2")]})
    clock = FakeClock()
    tokens = source(transport, channel(), clock)

    async def main() -> list[str]:
        got = [await tokens.token()]
        clock.advance(839)
        got.append(await tokens.token())
        clock.advance(1)
        got.append(await tokens.token())
        return got

    assert asyncio.run(main()) == ["t1", "t1", "t2"]


def test_concurrent_token_calls_mint_once() -> None:
    transport = FakeTransport({TOKEN_PATH: [minted("t1"), minted("t2")]})
    tokens = source(transport, channel(), FakeClock())

    async def main() -> list[str]:
        return await asyncio.gather(*(tokens.token() for _ in range(20)))

    assert asyncio.run(main()) == ["t1"] * 20
    assert transport.paths() == [TOKEN_PATH]


def test_renew_of_one_stale_token_by_many_callers_mints_once() -> None:
    transport = FakeTransport({TOKEN_PATH: [minted("t1"), minted("t2"), minted("t3")]})
    tokens = source(transport, channel(), FakeClock())

    async def main() -> tuple[str, list[str]]:
        stale = await tokens.token()
        await asyncio.gather(*(tokens.renew(stale) for _ in range(10)))
        return stale, await asyncio.gather(*(tokens.token() for _ in range(5)))

    stale, after = asyncio.run(main())
    assert stale == "t1"
    assert after == ["t2"] * 5
    assert transport.paths() == [TOKEN_PATH, TOKEN_PATH]


def test_renew_of_an_already_replaced_token_mints_nothing() -> None:
    transport = FakeTransport({TOKEN_PATH: [minted("t1"), minted("t2"), minted("t3")]})
    tokens = source(transport, channel(), FakeClock())

    async def main() -> str:
        await tokens.token()
        await tokens.renew("t1")
        await tokens.renew("t1")  # a late caller holding the old token
        return await tokens.token()

    assert asyncio.run(main()) == "t2"
    assert len(transport.calls) == 2


@pytest.mark.parametrize(
    "answer",
    [
        Answer(400, orjson.dumps({"error": "invalid_client", "error_description": "invalid client_secret"})),
        Answer(401, orjson.dumps({"error": "invalid_client"})),
    ],
    ids=["400", "401"],
)
def test_a_refused_mint_raises_token_unavailable_as_unauthorized(answer: Answer) -> None:
    transport = FakeTransport({TOKEN_PATH: [answer]})
    tokens = source(transport, channel(), FakeClock())

    with pytest.raises(TokenUnavailable) as exc:
        asyncio.run(tokens.token())

    assert exc.value.outcome.kind is OutcomeKind.UNAUTHORIZED
    assert exc.value.outcome.status_code == answer.status
    assert CHANNEL_SECRET not in str(exc.value)


def test_a_refused_mint_says_why() -> None:
    answer = Answer(400, orjson.dumps({"error": "invalid_client", "error_description": "invalid client_secret"}))
    tokens = source(FakeTransport({TOKEN_PATH: [answer]}), channel(), FakeClock())

    with pytest.raises(TokenUnavailable) as exc:
        asyncio.run(tokens.token())

    assert str(exc.value) == "channel token request refused: invalid client_secret"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (NoAnswer("timeout: no answer within 10 s"), OutcomeKind.TRANSIENT),
        (Answer(503, b""), OutcomeKind.TRANSIENT),
        (
            Answer(429, orjson.dumps({"message": "The API rate limit has been exceeded. Try again later."})),
            OutcomeKind.RATE_LIMITED,
        ),
    ],
    ids=["no-answer", "503", "429"],
)
def test_a_mint_that_got_no_usable_answer_is_retryable(answer: Answer | NoAnswer, kind: OutcomeKind) -> None:
    transport = FakeTransport({TOKEN_PATH: [answer, minted("t1")]})
    tokens = source(transport, channel(), FakeClock())

    async def main() -> str:
        with pytest.raises(TokenUnavailable) as exc:
            await tokens.token()
        assert exc.value.outcome.kind is kind
        return await tokens.token()  # nothing was cached: the next call mints again

    assert asyncio.run(main()) == "t1"


@pytest.mark.parametrize(
    "answer",
    [Answer(200, b"<html>captive portal</html>"), Answer(200, orjson.dumps({"token_type": "Bearer"}))],
    ids=["not-json", "no-access-token"],
)
def test_a_200_without_an_access_token_is_transient_never_delivered(answer: Answer) -> None:
    # Regression: this TokenUnavailable once carried OutcomeKind.DELIVERED (any 2xx classified so).
    tokens = source(FakeTransport({TOKEN_PATH: [answer]}), channel(), FakeClock())

    with pytest.raises(TokenUnavailable) as exc:
        asyncio.run(tokens.token())

    assert not exc.value.outcome.kind.delivered
    assert exc.value.outcome.kind is OutcomeKind.TRANSIENT
    assert exc.value.outcome.error == "channel token request answered without an access_token"


# -- authentications.test_credentials (called through its module: pytest would collect the name)


BOT_INFO = "/v2/bot/info"


def test_credentials_that_work_return_the_bot() -> None:
    info = Answer(200, orjson.dumps({"userId": "U" + "1" * 32, "displayName": "Shop", "basicId": "@shop"}))
    transport = FakeTransport({BOT_INFO: [info]})

    bot = asyncio.run(authentications.test_credentials(LineClient(transport, API), LONG_LIVED_CREDS, FakeClock()))

    assert bot == BotInfo(user_id="U" + "1" * 32, display_name="Shop", basic_id="@shop")
    (call,) = transport.calls
    assert (call.method, call.url) == ("GET", API + BOT_INFO)
    assert call.headers["Authorization"] == "Bearer " + LONG_LIVED


@pytest.mark.parametrize(
    ("picture", "shown"),
    [
        ("https://profile.line-scdn.net/0hAbc", "https://profile.line-scdn.net/0hAbc"),
        ("http://profile.line-scdn.net/0hAbc", None),  # a page loads only https pictures
        ("javascript:alert(1)", None),
        ('https://x.test/a" onerror="alert(1)', None),
        ("https://x.test/" + "a" * 1000, None),
        (12, None),
    ],
)
def test_the_bots_picture_is_kept_only_when_it_is_an_https_url(picture: object, shown: str | None) -> None:
    body = {"userId": "U" + "1" * 32, "displayName": "Shop", "pictureUrl": picture}
    transport = FakeTransport({BOT_INFO: [Answer(200, orjson.dumps(body))]})
    bot = asyncio.run(authentications.test_credentials(LineClient(transport, API), LONG_LIVED_CREDS, FakeClock()))
    assert bot.picture_url == shown


def test_channel_credentials_are_tested_with_a_minted_token() -> None:
    info = Answer(200, orjson.dumps({"userId": "U" + "2" * 32, "displayName": "Shop"}))
    transport = FakeTransport({TOKEN_PATH: [minted("fresh")], BOT_INFO: [info]})

    asyncio.run(authentications.test_credentials(LineClient(transport, API), channel(), FakeClock()))

    assert transport.paths() == [TOKEN_PATH, BOT_INFO]
    assert transport.calls[1].headers["Authorization"] == "Bearer fresh"


def test_a_401_raises_credentials_rejected_with_lines_reason() -> None:
    refused = Answer(401, orjson.dumps({"message": "Authentication failed. Confirm that the access token is valid."}))
    transport = FakeTransport({BOT_INFO: [refused]})

    with pytest.raises(CredentialsRejected) as exc:
        asyncio.run(authentications.test_credentials(LineClient(transport, API), LONG_LIVED_CREDS, FakeClock()))

    message = str(exc.value)
    assert "HTTP 401" in message
    assert "Authentication failed. Confirm that the access token is valid." in message
    assert LONG_LIVED not in message


def test_a_refused_mint_raises_credentials_rejected_with_lines_reason() -> None:
    refused = Answer(400, orjson.dumps({"error": "invalid_client", "error_description": "invalid client_secret"}))
    transport = FakeTransport({TOKEN_PATH: [refused]})

    with pytest.raises(CredentialsRejected) as exc:
        asyncio.run(authentications.test_credentials(LineClient(transport, API), channel(), FakeClock()))

    assert "invalid client_secret" in str(exc.value)
    assert CHANNEL_SECRET not in str(exc.value)
    assert transport.paths() == [TOKEN_PATH]  # bot info is not asked with no token
