"""``lineoa-export serve``: the API and the delivery worker in one process, one event loop.

Shutdown on SIGTERM or Ctrl-C drains: uvicorn stops accepting and finishes the requests
in flight (an accepted trigger is already on disk before its 202), then the worker stops
claiming, lets in-flight pushes finish, and gives back the leases of events it had not
started, keys intact.

With the worker, the process also does what it should about LINE by itself (refreshing recent
units' statistics, the daily reconciliation: insight/background.py); ``serve --no-worker`` does
not, so an API-only node never calls LINE on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import uvicorn

from ..context import Context
from ..delivery.worker import Worker
from ..insight.background import Background
from ..operations import WorkerHandle
from .app import create_app
from .metrics import Metrics
from .slow_clients import server_limits

log = logging.getLogger(__name__)


async def serve(ctx: Context, *, host: str, port: int, log_level: str = "info", with_worker: bool = True) -> None:
    """Serve until SIGTERM / Ctrl-C. ``with_worker=False`` (``serve --no-worker``): an API-only node;
    triggers are stored and the ``worker`` processes elsewhere deliver them."""
    metrics = Metrics(ctx.db, rate_limit=ctx.settings.rate_limit)
    # The API's own database work runs on the thread pool; the worker's goes to its database
    # thread too, so a trigger holding SQLite's write lock never stalls the event loop.
    worker = (
        Worker(ctx.db, ctx.vault, ctx.settings, clock=ctx.clock, listener=metrics.on_result, inline_sqlite=False)
        if with_worker
        else None
    )
    if worker is not None:
        metrics.watch(worker)
    handle = WorkerHandle.on_running_loop(worker) if worker is not None else None
    app = create_app(ctx, worker=handle, metrics=metrics)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off", **server_limits())
    )

    def request_stop(*_: Any) -> None:
        server.should_exit = True
        if worker is not None:
            worker.stop()

    # uvicorn re-raises the signals it captured once it has stopped; with these handlers in
    # place that lands here instead of killing the process before the worker has drained.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    worker_task = asyncio.create_task(worker.run()) if worker is not None else None
    background = asyncio.create_task(Background(ctx).run()) if worker is not None else None
    log.info(
        "this process refreshes recent units' statistics and reconciles every channel daily"
        if background is not None
        else "API only (--no-worker): this process never calls LINE by itself"
    )
    try:
        await server.serve()
    finally:
        if background is not None:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background
        if worker is not None and worker_task is not None:
            worker.stop()
            await worker_task
            log.info("stopped: worker drained")
