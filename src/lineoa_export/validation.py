"""Checking an activation's payload with LINE itself (``POST /v2/bot/message/validate/push``).

Local checks (messages.py) run on every save; this asks LINE too, without sending
anything. A templated payload is rendered for a sample event first, because LINE can
only judge real values.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import activations, authentications
from .context import Context
from .delivery.line_client import AiohttpTransport, LineClient
from .delivery.outcomes import OutcomeKind, classify
from .errors import InvalidInput


async def validate_with_line(
    ctx: Context, activation: activations.Activation, sample_event: dict[str, Any] | None = None
) -> str | None:
    """None when LINE accepts the payload, else LINE's reason."""
    compiled = activations.compile_spec(activation.spec)
    if compiled.messages.has_placeholders and sample_event is None:
        raise InvalidInput.single(
            "event", "the payload has placeholders: give a sample event so LINE can check real values"
        )
    if sample_event is None:
        messages = activation.spec.messages
    else:
        # The same rendering and local checks a trigger gets, before LINE sees anything.
        try:
            _, body = compiled.render(sample_event)
        except activations.RenderError as exc:
            raise InvalidInput.single("event", str(exc)) from None
        messages = orjson.loads(body)["messages"]
    auth = authentications.get(ctx.db, activation.spec.authentication)
    creds = authentications.load_credentials(ctx.db, ctx.vault, auth)
    transport = AiohttpTransport(ctx.timeouts)
    try:
        client = LineClient(transport, auth.api_url)
        tokens = authentications.TokenSource(client, creds, ctx.clock)
        try:
            token = await tokens.token()
        except authentications.TokenUnavailable as exc:
            return authentications.shown_reason(exc.outcome)
        outcome = classify(await client.validate_push(token, messages))
    finally:
        await transport.close()
    return None if outcome.kind is OutcomeKind.DELIVERED else authentications.shown_reason(outcome)
