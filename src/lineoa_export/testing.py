"""Test helpers shipped with the package (as procrastinate does): a whole pipeline on a
temporary database, an in-process LINE simulator and a :class:`~lineoa_export.clock.FakeClock`.

::

    async with pipeline(tmp_path) as p:
        p.create_activation(messages=[{"type": "text", "text": "Hi {{name}}"}])
        p.trigger([{"line_user_id": user_id(1), "name": "Ann"}])
        await p.run_worker()
        assert p.log()[0]["state"] == "delivered"
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import activation_table, activations, authentications, triggers
from .clock import FakeClock
from .context import Context, open_context
from .settings import Settings
from .simulator import RunningSimulator, SimulatorOptions, running_simulator
from .simulator.options import DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_SECRET
from .worker import Worker, WorkerStats

TEST_SECRET_KEY = "lineoa-export-test-key"


def user_id(n: int) -> str:
    """A valid, stable LINE user ID for test number ``n``."""
    return "U" + uuid.uuid5(uuid.NAMESPACE_OID, f"user-{n}").hex


@dataclass
class Pipeline:
    ctx: Context
    sim: RunningSimulator
    clock: FakeClock
    auth: str = "line"
    activation: str = "welcome"
    workers: list[Worker] = field(default_factory=list)

    def create_auth(self, *, minted: bool = False, name: str | None = None) -> authentications.Authentication:
        creds = (
            authentications.Credentials.from_options(None, DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_SECRET)
            if minted
            else authentications.Credentials.from_options(DEFAULT_ACCESS_TOKEN, None, None)
        )
        return authentications.create(
            self.ctx.db, self.ctx.vault, name=name or self.auth, credentials=creds, api_url=self.sim.url,
            now=self.clock.now(),
        )

    def create_activation(self, name: str | None = None, **fields: Any) -> activations.Activation:
        spec = {
            "name": name or self.activation,
            "authentication": self.auth,
            "recipient": "{{line_user_id}}",
            "messages": [{"type": "text", "text": "Hello {{name}}"}],
            **fields,
        }
        return activations.create(self.ctx.db, activations.parse_spec(spec), now=self.clock.now())

    def trigger(self, events: Sequence[dict[str, Any]], activation: str | None = None) -> list[triggers.TriggerResult]:
        return triggers.accept(self.ctx.db, activation or self.activation, list(events), now=self.clock.now())

    def worker(self, **settings: Any) -> Worker:
        merged = self.ctx.settings.model_copy(update=settings)
        worker = Worker(self.ctx.db, self.ctx.vault, merged, clock=self.clock)
        self.workers.append(worker)
        return worker

    async def run_worker(self, **settings: Any) -> WorkerStats:
        """Deliver until idle; retry waits pass on the fake clock, not in real time."""
        return await self.worker(**settings).run(until_idle=True)

    def log(self, activation: str | None = None) -> list[dict[str, Any]]:
        entries = list(activation_table.iterate(self.ctx.db, activation or self.activation))
        entries.reverse()
        return entries

    def event(self, event_id: str, activation: str | None = None) -> dict[str, Any]:
        return activation_table.event(self.ctx.db, activation or self.activation, event_id)


@contextlib.asynccontextmanager
async def pipeline(
    tmp_path: Path,
    options: SimulatorOptions | None = None,
    *,
    database_url: str | None = None,
    **settings: Any,
) -> AsyncIterator[Pipeline]:
    """A simulator, a fresh database with one authentication, and a fake clock."""
    clock = FakeClock()
    base = Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'lineoa.db'}",
        secret_key=TEST_SECRET_KEY,
        **{"timeout": 2.0, "connect_timeout": 1.0, "concurrency": 16, **settings},
    )
    ctx = open_context(base, clock=clock)
    try:
        async with running_simulator(options or SimulatorOptions(), clock=clock.now) as sim:
            p = Pipeline(ctx, sim, clock)
            p.create_auth()
            yield p
    finally:
        ctx.close()
