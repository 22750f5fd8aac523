"""Authentications: stored LINE channel credentials, and the tokens they yield.

Two kinds, as the product page describes:

* ``access_token``: a long-lived channel access token from the LINE Developers Console;
* ``channel_credentials``: a channel ID and secret, from which stateless tokens are minted
  (``/oauth2/v3/token``, valid 15 minutes), cached until shortly before they expire, and
  minted anew once when LINE answers 401.

Secrets are sealed by :class:`~lineoa_export.vault.Vault` before they reach the database
and never leave this module except as a bearer header, and only towards an ``api_url`` the
vault's :class:`~lineoa_export.api_hosts.ApiHosts` allow (checked on create, on test, and
each time stored credentials are loaded).

A connection test shows the caller only what LINE itself says (its JSON ``message`` and
``details``) or a coarse reason ("timeout", "connection failed"): never what some other
server answered, which would turn the test into a probe of other hosts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .api_hosts import ApiHosts
from .clock import Clock
from .delivery.line_client import DEFAULT_API_URL, AiohttpTransport, LineClient, Timeouts
from .delivery.outcomes import Outcome, OutcomeKind, classify, classify_token_answer, success_json
from .errors import AlreadyExists, CredentialsRejected, InvalidInput, NotFound
from .naming import check_name
from .store.database import Database, Row
from .vault import Vault
from .webhook_forward import forward_url_problem, shown_url

Kind = Literal["access_token", "channel_credentials"]
# Mint a fresh stateless token this long before the old one expires, so no push
# leaves with a token that dies in flight.
TOKEN_EXPIRY_MARGIN = 60.0


@dataclass(frozen=True, slots=True)
class Credentials:
    kind: Kind
    access_token: str | None = None
    channel_id: str | None = None
    channel_secret: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Credentials(kind={self.kind!r}, channel_id={self.channel_id!r}, <secret redacted>)"

    @classmethod
    def from_options(cls, access_token: str | None, channel_id: str | None, channel_secret: str | None) -> Credentials:
        for field, value in (("access_token", access_token), ("channel_secret", channel_secret)):
            # They travel in an HTTP header or form: a space or line break can only be a paste error.
            if value and not (value.isascii() and value.isprintable() and " " not in value):
                raise InvalidInput.single(field, "one line of printable ASCII: no spaces or line breaks")
        if access_token and not channel_id:
            # A token authentication may hold the channel secret too: it only checks webhooks.
            return cls("access_token", access_token=access_token, channel_secret=channel_secret or None)
        if channel_id and channel_secret and not access_token:
            if not channel_id.isdigit():
                raise InvalidInput.single("channel_id", "must be the channel's numeric ID")
            return cls("channel_credentials", channel_id=channel_id, channel_secret=channel_secret)
        raise InvalidInput.single(
            "credentials",
            "give either an access token, or a channel ID and channel secret (a token may bring the channel secret "
            "too, for webhooks)",
        )

    def seal(self, vault: Vault) -> bytes:
        secret: dict[str, str] = {"access_token": self.access_token} if self.access_token else {}
        if self.channel_secret:
            secret["channel_secret"] = self.channel_secret
        return vault.seal(orjson.dumps(secret).decode())


@dataclass(frozen=True, slots=True)
class Authentication:
    """What may be shown about an authentication: everything but its secret."""

    name: str
    kind: Kind
    api_url: str
    channel_id: str | None
    channel_key: str
    bot_user_id: str | None
    bot_name: str | None
    created_at: float
    paused_reason: str | None = None
    paused_kind: str | None = None
    activations: int | None = None
    webhook_secret_set: bool = False
    blocked_users: int = 0  # users whose last webhook event on this channel was an unfollow
    forward_webhook: str | None = None  # where verified webhook requests are re-sent (the customer's bot)

    @property
    def webhook_path(self) -> str:
        """Where LINE sends this channel's webhooks on ``serve`` (the URL to give LINE, after the host)."""
        return f"/line/webhook/{self.name}"

    @classmethod
    def from_row(cls, row: Row) -> Authentication:
        return cls(
            name=row["name"],
            kind=row["kind"],
            api_url=row["api_url"],
            channel_id=row["channel_id"],
            channel_key=row["channel_key"],
            bot_user_id=row["bot_user_id"],
            bot_name=row["bot_name"],
            created_at=row["created_at"],
            paused_reason=row.get("paused_reason"),
            paused_kind=row.get("paused_kind"),
            activations=row.get("activations"),
            webhook_secret_set=bool(row.get("webhook_secret_set")),
            blocked_users=int(row.get("blocked_users") or 0),
            forward_webhook=row.get("forward_webhook"),
        )

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "api_url": self.api_url,
            "channel_id": self.channel_id,
            "bot_user_id": self.bot_user_id,
            "bot_name": self.bot_name,
            "created_at": self.created_at,
            "paused": self.paused_reason is not None,
            "paused_reason": self.paused_reason,
            "webhook_path": self.webhook_path,
            "webhook_secret_set": self.webhook_secret_set,
            "blocked_users": self.blocked_users,
            "forward_webhook": shown_url(self.forward_webhook),
        }


@dataclass(frozen=True, slots=True)
class BotInfo:
    """Who LINE says credentials belong to (``GET /v2/bot/info``); only the ID and name are stored."""

    user_id: str | None
    display_name: str | None
    basic_id: str | None = None  # "@123abcde": what users search for in LINE
    picture_url: str | None = None  # an https URL on LINE's CDN; a browser loads it, never this server


# -- storage -----------------------------------------------------------------------------------


def create(
    db: Database,
    vault: Vault,
    *,
    name: str,
    credentials: Credentials,
    api_url: str = DEFAULT_API_URL,
    bot: BotInfo | None = None,
    now: float,
) -> Authentication:
    check_name(name)
    api_url = vault.api_hosts.check(api_url)
    channel_key = credentials.channel_id or (bot.user_id if bot and bot.user_id else None) or f"auth:{name}"
    rows = db.run(
        "auth_insert",
        {
            "name": name,
            "kind": credentials.kind,
            "api_url": api_url,
            "channel_id": credentials.channel_id,
            "channel_key": channel_key,
            "credentials": credentials.seal(vault),
            "bot_user_id": bot.user_id if bot else None,
            "bot_name": bot.display_name if bot else None,
            "created_at": now,
            "webhook_secret_set": credentials.channel_secret is not None,
        },
    )
    if not rows:
        raise AlreadyExists(f"authentication {name!r} already exists")
    return get(db, name)


def rotate(db: Database, vault: Vault, name: str, *, credentials: Credentials, bot: BotInfo | None) -> Authentication:
    """Replace the secret of ``name`` (same kind, same channel); the bot's name is refreshed when tested."""
    current = get(db, name)
    if credentials.kind != current.kind or credentials.channel_id != current.channel_id:
        raise InvalidInput.single("credentials", "a rotation keeps the kind and the channel: create another")
    if credentials.kind == "access_token" and credentials.channel_secret is None and current.webhook_secret_set:
        # A new token keeps the webhook secret already stored with the old one.
        kept = _sealed_secret(db, vault, name).get("channel_secret")
        credentials = Credentials("access_token", access_token=credentials.access_token, channel_secret=kept)
    params = {
        "name": name,
        "credentials": credentials.seal(vault),
        "bot_user_id": bot.user_id if bot else None,
        "bot_name": bot.display_name if bot else None,
        "webhook_secret_set": credentials.channel_secret is not None,
    }
    if not db.run("auth_rotate", params):
        raise NotFound(f"authentication {name!r} not found")
    return get(db, name)


def set_forward_webhook(db: Database, name: str, url: str | None, *, allowed: frozenset[str]) -> Authentication:
    """Re-send this channel's verified webhook requests to ``url`` (None: stop); ``url``'s host must be allowed."""
    if url is not None:
        problem = forward_url_problem(url, allowed)
        if problem:
            raise InvalidInput.single("forward_webhook", problem)
    if not db.run("auth_set_forward", {"name": name, "forward_webhook": url}):
        raise NotFound(f"authentication {name!r} not found")
    return get(db, name)


def set_channel_secret(db: Database, vault: Vault, name: str, channel_secret: str) -> Authentication:
    """Store the channel secret that signs webhooks in a token authentication (a channel one has it)."""
    current = get(db, name)
    if current.kind != "access_token":
        raise InvalidInput.single("channel_secret", "this authentication mints tokens from its secret: use rotate")
    probe = Credentials.from_options("token", None, channel_secret)  # the same checks as on create
    kept = _sealed_secret(db, vault, name)["access_token"]
    credentials = Credentials("access_token", access_token=kept, channel_secret=probe.channel_secret)
    params = {"name": name, "credentials": credentials.seal(vault), "bot_user_id": None, "bot_name": None}
    db.run("auth_rotate", {**params, "webhook_secret_set": True})
    return get(db, name)


def check_api_url(api_url: str, hosts: ApiHosts) -> str:
    """Where an authentication's LINE API lives: a URL ``hosts`` allow (see :mod:`lineoa_export.api_hosts`)."""
    return hosts.check(api_url)


def get(db: Database, name: str) -> Authentication:
    rows = db.run("auth_get", {"name": name})
    if not rows:
        raise NotFound(f"authentication {name!r} not found")
    return Authentication.from_row(rows[0])


def list_all(db: Database) -> list[Authentication]:
    return [Authentication.from_row(r) for r in db.run("auth_list")]


def delete(db: Database, name: str) -> None:
    users = [r["name"] for r in db.run("auth_users", {"name": name})]
    if users:
        raise InvalidInput.single("name", f"authentication {name!r} is used by activations: {', '.join(users)}")
    if not db.run("auth_delete", {"name": name}):
        raise NotFound(f"authentication {name!r} not found")


def load_credentials(db: Database, vault: Vault, auth: Authentication) -> Credentials:
    """The secret, for sending to ``auth.api_url``; ConfigurationError when that host is no longer allowed."""
    vault.api_hosts.check_stored(auth.api_url)
    secret = _sealed_secret(db, vault, auth.name)
    if auth.kind == "access_token":
        return Credentials(
            "access_token", access_token=secret["access_token"], channel_secret=secret.get("channel_secret")
        )
    return Credentials("channel_credentials", channel_id=auth.channel_id, channel_secret=secret["channel_secret"])


def _sealed_secret(db: Database, vault: Vault, name: str) -> dict[str, str]:
    rows = db.run("auth_get", {"name": name})
    if not rows:
        raise NotFound(f"authentication {name!r} not found")
    secret: dict[str, str] = orjson.loads(vault.open(rows[0]["credentials"]))
    return secret


def webhook_secret(db: Database, vault: Vault, name: str) -> tuple[Authentication, str | None]:
    """The authentication and the channel secret its webhooks are signed with (None: it holds none).

    Unlike :func:`load_credentials`, nothing is sent anywhere: the secret only checks a signature.
    """
    auth = get(db, name)
    if not auth.webhook_secret_set:
        return auth, None
    return auth, _sealed_secret(db, vault, name).get("channel_secret")


# -- tokens ------------------------------------------------------------------------------------


class TokenUnavailable(Exception):
    """No token could be had; ``outcome`` says why, in the same terms as a push outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class TokenSource:
    """The bearer token for one authentication, minted and cached when it is a channel."""

    def __init__(self, client: LineClient, credentials: Credentials, clock: Clock) -> None:
        self._client = client
        self._credentials = credentials
        self._clock = clock
        self._token: str | None = credentials.access_token
        self._expires_at = float("inf") if credentials.access_token else 0.0
        self._lock = asyncio.Lock()

    @property
    def renewable(self) -> bool:
        return self._credentials.kind == "channel_credentials"

    def cached(self) -> str | None:
        """The token if it is good to use now, without minting (no coroutine on the hot path)."""
        if self._token is not None and self._clock.now() < self._expires_at:
            return self._token
        return None

    async def token(self) -> str:
        if self._token is not None and self._clock.now() < self._expires_at:
            return self._token
        async with self._lock:  # one mint for many waiting pushes
            if self._token is None or self._clock.now() >= self._expires_at:
                await self._mint()
            assert self._token is not None
            return self._token

    async def renew(self, stale: str) -> None:
        """LINE refused ``stale``: mint a new token unless another push already did."""
        async with self._lock:
            if self._token == stale:
                await self._mint()

    async def _mint(self) -> None:
        creds = self._credentials
        assert creds.channel_id is not None and creds.channel_secret is not None
        answer = await self._client.issue_stateless_token(creds.channel_id, creds.channel_secret)
        data = success_json(answer)
        if data is None or not isinstance(data.get("access_token"), str):
            raise TokenUnavailable(classify_token_answer(answer))
        try:
            expires_in = float(data.get("expires_in") or 900)
        except (TypeError, ValueError):
            expires_in = 900.0  # LINE's documented lifetime, when the answer does not say
        self._token = data["access_token"]
        self._expires_at = self._clock.now() + max(0.0, expires_in - TOKEN_EXPIRY_MARGIN)


async def test_credentials(client: LineClient, credentials: Credentials, clock: Clock) -> BotInfo:
    """Ask LINE who these credentials belong to (``GET /v2/bot/info``).

    Raises :class:`CredentialsRejected` with LINE's reason when they do not work.
    """
    tokens = TokenSource(client, credentials, clock)
    try:
        token = await tokens.token()
    except TokenUnavailable as exc:
        reason = shown_reason(exc.outcome)
        if exc.outcome.status_code is None:
            reason = f"no answer to the channel token request ({reason})"
        raise CredentialsRejected(reason) from None
    answer = await client.bot_info(token)
    outcome = classify(answer)
    if outcome.kind is not OutcomeKind.DELIVERED:
        where = f"HTTP {outcome.status_code}" if outcome.status_code else "no answer"
        raise CredentialsRejected(f"LINE refused the credentials ({where}): {shown_reason(outcome)}")
    info = success_json(answer) or {}
    return BotInfo(
        user_id=_short_text(info.get("userId")),
        display_name=_short_text(info.get("displayName")),
        basic_id=_short_text(info.get("basicId")),
        picture_url=_picture_url(info.get("pictureUrl")),
    )


# Bot names are at most 20 characters and user IDs 33; anything longer is not LINE's answer.
MAX_SHOWN_TEXT = 200
MAX_PICTURE_URL = 1000


def shown_reason(outcome: Outcome) -> str:
    """What a caller may see of a failed answer: LINE's JSON message, or a coarse transport reason
    (never the text of whatever else answered at ``api_url``)."""
    if outcome.status_code is None:
        error = outcome.error or ""
        return "timeout" if error.startswith("timeout") else "the connection failed"
    # error_message() keeps only a JSON answer's message and details, else says "HTTP <status>".
    return _short_text(outcome.error) or f"HTTP {outcome.status_code}"


def _picture_url(value: Any) -> str | None:
    """LINE's profile picture URL when it is one (https, printable ASCII, short); else none."""
    if not isinstance(value, str) or len(value) > MAX_PICTURE_URL or not value.startswith("https://"):
        return None
    return value if value.isascii() and value.isprintable() and not any(c in value for c in " \"'<>`") else None


def _short_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = "".join(c if c.isprintable() else " " for c in value)
    return text if len(text) <= MAX_SHOWN_TEXT else text[:MAX_SHOWN_TEXT] + "…"


async def test_credentials_at(
    api_url: str, credentials: Credentials, clock: Clock, timeouts: Timeouts, hosts: ApiHosts
) -> BotInfo:
    """:func:`test_credentials` over a transport of its own, closed afterwards; ``api_url`` must be allowed."""
    api_url = hosts.check(api_url)
    transport = AiohttpTransport(timeouts)
    try:
        return await test_credentials(LineClient(transport, api_url), credentials, clock)
    finally:
        await transport.close()
