"""The one web app of ``serve``: the JSON API (:mod:`.api`) and the console (:mod:`.console`),
both on one :class:`~lineoa_export.operations.Operations` bound to the running worker.

The one rule: this module is the only one that builds a ``FastAPI`` app; the API and the console
only add their routes to it, and neither imports the other.
"""

from __future__ import annotations

import time

from fastapi import FastAPI

from .. import __version__, apikeys
from ..context import Context
from ..operations import Operations, WorkerHandle
from ..webhook_forward import Forwarder
from .api import include_api
from .api.errors import ERRORS, error_response
from .console import mount_console
from .metrics import Metrics
from .request_guard import RequestGuard

# 1,000 events of a few hundred bytes each fit many times over; anything bigger is refused
# as it streams in, so one request cannot fill the memory of the process.
MAX_BODY_BYTES = 16 * 1024 * 1024
# A client that stops sending its body mid-way gives its connection back after this long.
BODY_READ_TIMEOUT = 30.0


def create_app(ctx: Context, *, worker: WorkerHandle | None = None, metrics: Metrics | None = None) -> FastAPI:
    """The API and the console on ``ctx``; ``worker`` is told of triggers, pauses, resumes and replays."""
    app = FastAPI(
        title="lineoa-export",
        version=__version__,
        description="Triggered activations pushed to LINE exactly once, and their activation table.",
        responses=ERRORS,
        docs_url=None,
        redoc_url=None,
    )
    metrics = metrics or Metrics(ctx.db, rate_limit=ctx.settings.rate_limit)
    ops = Operations(ctx, worker, on_accepted=metrics.on_accepted)
    app.state.ctx = ctx
    app.state.ops = ops
    app.state.metrics = metrics
    app.state.started_at = time.time()
    # Verified LINE webhooks are re-sent to the customer's bot, if its authentication says where.
    app.state.forwarder = Forwarder(ctx.db, ctx.clock, ctx.settings.forward_hosts)
    app.state.on_webhook = app.state.forwarder.on_verified
    app.add_middleware(
        RequestGuard,
        verify_key=lambda token: apikeys.verify(ctx.db, token),
        error=error_response,
        max_body_bytes=MAX_BODY_BYTES,
        body_timeout=BODY_READ_TIMEOUT,
    )
    include_api(app)
    mount_console(app, ops)
    return app
