"""Where the console's routers are put together on the app: :func:`mount_console`.

The one rule: the order is the routing: the stylesheets and the routers with fixed paths come
before :mod:`.routes`, whose last route is the catch-all 404 page (it would answer for anything
mounted after it).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ...operations import Operations
from . import catalog, overview, routes
from .pages import HERE, PREFIX, Console


def mount_console(app: FastAPI, ops: Operations) -> Console:
    """Add the console (``/console``: its pages and stylesheets) to ``app``; its actions go through ``ops``."""
    console = Console(ops)
    app.state.console = console
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console_static")
    app.include_router(catalog.router)
    app.include_router(overview.router)
    app.include_router(routes.router)  # last: its catch-all 404 page
    return console
