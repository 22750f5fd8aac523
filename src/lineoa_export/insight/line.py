"""One authentication's LINE client and bearer token, for the insight calls (not pushes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .. import authentications
from ..context import Context
from ..delivery.line_client import AiohttpTransport, LineClient
from ..delivery.outcomes import Answer, NoAnswer, classify
from ..errors import LineoaExportError


class LineUnavailable(LineoaExportError):
    """LINE could not be asked, or refused: the message is what a caller may see of why."""


@dataclass(frozen=True, slots=True)
class Session:
    auth: authentications.Authentication
    client: LineClient
    token: str


@contextlib.asynccontextmanager
async def session(ctx: Context, auth: authentications.Authentication) -> AsyncIterator[Session]:
    """A client on ``auth``'s API URL with a usable token; the transport is closed afterwards."""
    creds = await asyncio.to_thread(authentications.load_credentials, ctx.db, ctx.vault, auth)
    transport = AiohttpTransport(ctx.timeouts)
    try:
        client = LineClient(transport, auth.api_url)
        try:
            token = await authentications.TokenSource(client, creds, ctx.clock).token()
        except authentications.TokenUnavailable as exc:
            raise LineUnavailable(f"no token for {auth.name}: {authentications.shown_reason(exc.outcome)}") from None
        yield Session(auth, client, token)
    finally:
        await transport.close()


def reason(answer: Answer | NoAnswer) -> str:
    """Why an answer is not the one hoped for, as a caller may see it (never a foreign body)."""
    return authentications.shown_reason(classify(answer))
