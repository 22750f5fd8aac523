"""``POST /line/webhook/{authentication}``: where LINE sends a channel's webhooks.

The one route without an API key (LINE cannot send one), and so the one exception to the rule of
:mod:`.deps`: the request is authenticated by ``x-line-signature``, checked with the channel secret
over the raw body before anything is parsed (:mod:`lineoa_export.followers`). A refused request
changes nothing and is answered 401 with the same words whatever the cause, so the endpoint tells
a caller without the secret nothing about which authentications exist. A verified one is stored
(one transaction) before the 200; LINE's empty probe ``{"events": []}`` is verified and answered
200 like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ... import followers
from ...context import Context
from ...followers import Received, WebhookRefused
from .errors import error_response

log = logging.getLogger(__name__)

#: Told of every verified request once it is stored (``app.state.on_webhook``: forwarding).
OnVerified = Callable[[Received, bytes, str], None]

router = APIRouter(tags=["webhooks"])


@router.post(
    "/line/webhook/{authentication}",
    responses={401: {"description": "missing or wrong x-line-signature"}},
    summary="LINE's webhook for one authentication (signed with its channel secret; no API key)",
)
async def line_webhook(authentication: str, request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    body = await request.body()
    signature = request.headers.get("x-line-signature")
    try:
        received = await run_in_threadpool(
            followers.receive, ctx.db, ctx.vault, authentication, body, signature, now=ctx.clock.now()
        )
    except WebhookRefused as refused:
        log.warning("webhook refused: %s", refused.why)
        return error_response(401, "unauthorized", str(refused))
    on_verified: OnVerified | None = getattr(request.app.state, "on_webhook", None)
    if on_verified is not None and signature is not None:
        on_verified(received, body, signature)
    return JSONResponse({})
