"""Helpers for the console tests: an app on a fresh database, a logged-in client, a threaded simulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from fastapi import FastAPI
from schemathesis.python.asgi import ASGIClient

from lineoa_export import apikeys
from lineoa_export.clock import Clock
from lineoa_export.context import Context, open_context
from lineoa_export.settings import Settings
from lineoa_export.testing import SIMULATOR_HOST, TEST_SECRET_KEY
from lineoa_export.web.app import create_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def img_src(response: requests.Response) -> str:
    """The answer's CSP for images: where the page may load pictures from."""
    match = re.search(r"img-src [^;]*", response.headers["Content-Security-Policy"])
    assert match, response.headers["Content-Security-Policy"]
    return match.group(0)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@dataclass
class Console:
    ctx: Context
    app: FastAPI
    key: str
    client: requests.Session

    def login(self, key: str | None = None) -> requests.Response:
        page = self.client.get("/console/login")
        return self.client.post(
            "/console/login", data={"csrf": csrf_of(page.text), "api_key": key or self.key}, allow_redirects=False
        )

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, page: str | None = None, follow: bool = True
    ) -> requests.Response:
        """POST a console form with the CSRF token read from ``page`` (default: the activations page)."""
        html = self.client.get(page or "/console/activations").text
        return self.client.post(path, data={"csrf": csrf_of(html), **(data or {})}, allow_redirects=follow)


@contextmanager
def console_app(
    tmp_path: Path, *, worker: Any = None, clock: Clock | None = None, database_url: str | None = None
) -> Iterator[Console]:
    """The app with the API key ``ops`` (not logged in); ``worker`` is what the console wakes."""
    settings = Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'console.db'}",
        secret_key=TEST_SECRET_KEY,
        allowed_api_hosts=(SIMULATOR_HOST,),
        timeout=2.0,
        connect_timeout=1.0,
    )
    ctx = open_context(settings, clock=clock)
    try:
        key = apikeys.create(ctx.db, "ops", now=ctx.clock.now())
        app = create_app(ctx, worker=worker)
        with ASGIClient(app) as client:
            yield Console(ctx, app, key, client)
    finally:
        ctx.close()
