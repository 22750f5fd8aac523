"""Helpers for the API tests: a threaded simulator and the app with its database and key."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from schemathesis.python.asgi import ASGIClient

from lineoa_export import activations, apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.context import Context, open_context
from lineoa_export.delivery.worker import Worker, WorkerStats
from lineoa_export.settings import Settings
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import SIMULATOR_HOST, ThreadedSimulator
from lineoa_export.web.app import create_app

SECRET_KEY = "an API test passphrase of 32+ characters"
START = 1_800_000_000.0


@dataclass
class Api:
    """The app in process on a fresh database, with a valid API key sent by default."""

    ctx: Context
    clock: FakeClock
    key: str
    client: ASGIClient
    sim: ThreadedSimulator | None
    db_path: Path
    auth: str = "line"
    workers: list[Worker] = field(default_factory=list)

    # -- requests ---------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.client.post(path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.client.patch(path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.client.delete(path, **kwargs)

    # -- set-up shortcuts -------------------------------------------------------------------

    def create_activation(self, name: str = "welcome", **fields: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "authentication": self.auth,
            "recipient": "{{line_user_id}}",
            "messages": [{"type": "text", "text": "Hello {{name}}"}],
            **fields,
        }
        response = self.post("/v1/activations", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def trigger(self, events: list[dict[str, Any]], activation: str = "welcome") -> dict[str, Any]:
        response = self.post(f"/v1/activations/{activation}/triggers", json={"events": events})
        assert response.status_code == 202, response.text
        result: dict[str, Any] = response.json()
        return result

    def log(self, activation: str = "welcome", **params: Any) -> list[dict[str, Any]]:
        """Every log entry (all pages), newest first."""
        entries: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            response = self.get(f"/v1/activations/{activation}/log", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            entries += page["events"]
            cursor = page["next_cursor"]
            if cursor is None:
                return entries

    def deliver(self, **settings: Any) -> WorkerStats:
        """Run a worker until nothing is left to do (retry waits pass on the fake clock)."""
        merged = self.ctx.settings.model_copy(update=settings)
        worker = Worker(self.ctx.db, self.ctx.vault, merged, clock=self.clock)
        self.workers.append(worker)
        return asyncio.run(worker.run(until_idle=True))

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database directly (what the API does not show, e.g. ``retries``)."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute(query, params).fetchall()


@contextlib.contextmanager
def make_api(
    tmp_path: Path, sim: ThreadedSimulator | None, *, api_url: str | None = None, clock: FakeClock | None = None
) -> Iterator[Api]:
    """The app on ``tmp_path/api.db``; the authentication ``line`` points at ``sim`` (or ``api_url``)."""
    clock = clock or FakeClock(START)
    db_path = tmp_path / "api.db"
    settings = Settings(
        database_url=f"sqlite:///{db_path}",
        secret_key=SECRET_KEY,
        allowed_api_hosts=(SIMULATOR_HOST,),
        timeout=2.0,
        connect_timeout=1.0,
        concurrency=8,
    )
    ctx = open_context(settings, clock=clock)
    try:
        key = apikeys.create(ctx.db, "t", now=clock.now())
        url = api_url or (sim.url if sim is not None else "http://127.0.0.1:9")
        authentications.create(
            ctx.db,
            ctx.vault,
            name="line",
            credentials=authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None),
            api_url=url,
            now=clock.now(),
        )
        client = ASGIClient(create_app(ctx))
        client.trust_env = False
        client.headers["Authorization"] = f"Bearer {key}"
        try:
            yield Api(ctx=ctx, clock=clock, key=key, client=client, sim=sim, db_path=db_path)
        finally:
            client.close()
    finally:
        ctx.close()


def add_activation(ctx: Context, name: str = "welcome", **fields: Any) -> activations.Activation:
    spec = {
        "name": name,
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": [{"type": "text", "text": "Hello {{name}}"}],
        **fields,
    }
    return activations.create(ctx.db, activations.parse_spec(spec), now=ctx.clock.now())
