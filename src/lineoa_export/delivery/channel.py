"""A LINE channel at run time: one authentication's client and tokens, speaking in outcomes."""

from __future__ import annotations

from ..authentications import Authentication, TokenSource, TokenUnavailable
from .line_client import LineClient
from .outcomes import Outcome, OutcomeKind, classify, success_json


class LineChannel:
    def __init__(self, auth: Authentication, client: LineClient, tokens: TokenSource) -> None:
        self.auth = auth
        self.client = client
        self.tokens = tokens

    async def push(self, body: bytes, retry_key: str) -> Outcome:
        """Send one push; a 401 on a minted token earns one re-mint and one resend (same key, same body)."""
        token = self.tokens.cached()
        if token is None:
            try:
                token = await self.tokens.token()
            except TokenUnavailable as exc:
                return exc.outcome
        outcome = classify(await self.client.push(token, body, retry_key))
        if outcome.kind is OutcomeKind.UNAUTHORIZED and self.tokens.renewable:
            # A 401 does not use the retry key up, so resending with it stays duplicate-free.
            try:
                await self.tokens.renew(token)
                token = await self.tokens.token()
            except TokenUnavailable as exc:
                return exc.outcome
            outcome = classify(await self.client.push(token, body, retry_key))
        return outcome

    async def quota_has_room(self) -> bool | None:
        """True when the monthly quota has room again; None when LINE could not tell us."""
        try:
            token = await self.tokens.token()
        except TokenUnavailable:
            return None
        quota = success_json(await self.client.quota(token))
        if quota is None:
            return None
        if quota.get("type") == "none":
            return True
        used = success_json(await self.client.quota_consumption(token))
        if used is None or not isinstance(quota.get("value"), int):
            return None
        return int(used.get("totalUsage", 0)) < int(quota["value"])
