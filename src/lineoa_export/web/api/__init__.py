"""The JSON API (``/v1``) of ``lineoa-export serve``, described by ``/openapi.json``.

Every endpoint but the health checks and ``/openapi.json`` needs ``Authorization: Bearer
<API key>``, checked before a request's body is read (see :mod:`..request_guard`, which also
bounds bodies in size and time), and a key whose role allows what the route does
(:mod:`.deps`). The OpenAPI document is public: it describes the API and holds no data. No
docs page is served (FastAPI's loads its scripts from a third-party CDN); load
``/openapi.json`` into any OpenAPI viewer. Errors have one shape, naming each bad field
(:mod:`.errors`).

- :mod:`.bodies`: what routes read and answer; :mod:`.errors`: how they say no;
  :mod:`.deps`: the caller's key and role, and the operations;
- one router per resource: :mod:`.health`, :mod:`.authentications`, :mod:`.apikeys`,
  :mod:`.activations`, :mod:`.triggers`, :mod:`.events`, :mod:`.reconciliations`, :mod:`.overview`; and
  :mod:`.line_webhook`, LINE's webhook, the one route authenticated by a signature instead of a key.

The one rule: routers hold no app and no state; they reach the product through
:class:`~lineoa_export.operations.Operations` (``app.state.ops``), which :mod:`..app` sets up.
Database work runs on the thread pool (sync routes; the store is synchronous).
"""

from __future__ import annotations

from fastapi import FastAPI

from . import activations, apikeys, authentications, events, health, line_webhook, overview, reconciliations, triggers
from .errors import install_error_handlers

ROUTERS = (
    health.router,
    authentications.router,
    apikeys.router,
    activations.router,
    triggers.router,
    events.router,
    reconciliations.router,
    overview.router,
    line_webhook.router,
)


def include_api(app: FastAPI) -> None:
    """Add the API's routes and its error mapping to ``app``."""
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
