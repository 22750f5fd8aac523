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

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import activation_table, activations, authentications
from .clock import Clock, FakeClock
from .context import Context, open_context
from .delivery import triggers
from .delivery.outcomes import Answer, NoAnswer
from .delivery.worker import Worker, WorkerStats
from .settings import Settings
from .simulator import RunningSimulator, SimulatorOptions, running_simulator
from .simulator.options import DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_SECRET, ChannelConfig

TEST_SECRET_KEY = "lineoa-export-test-key, never for production"
#: Where the simulator listens: tests allow it as an API host (``LINEOA_EXPORT_ALLOWED_API_HOSTS``).
SIMULATOR_HOST = "127.0.0.1"


def wait_until(predicate: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until ``predicate()`` held, asked every 50 ms; fails the test after ``timeout``.

    For process tests only, where another process's progress can be watched but not driven; a test
    of this process's code travels in time with a :class:`~lineoa_export.clock.FakeClock` instead.
    """
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def user_id(n: int) -> str:
    """A valid, stable LINE user ID for test number ``n``."""
    return "U" + uuid.uuid5(uuid.NAMESPACE_OID, f"user-{n}").hex


@dataclass
class Pipeline:
    ctx: Context
    sim: RunningSimulator
    clock: Clock
    auth: str = "line"
    activation: str = "welcome"
    workers: list[Worker] = field(default_factory=list)

    def create_auth(
        self, *, minted: bool = False, name: str | None = None, token: str = DEFAULT_ACCESS_TOKEN
    ) -> authentications.Authentication:
        creds = (
            authentications.Credentials.from_options(None, DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_SECRET)
            if minted
            else authentications.Credentials.from_options(token, None, None)
        )
        return authentications.create(
            self.ctx.db,
            self.ctx.vault,
            name=name or self.auth,
            credentials=creds,
            api_url=self.sim.url,
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

    def worker(self, *, inline_sqlite: bool = True, **settings: Any) -> Worker:
        merged = self.ctx.settings.model_copy(update=settings)
        worker = Worker(self.ctx.db, self.ctx.vault, merged, clock=self.clock, inline_sqlite=inline_sqlite)
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


#: The PostgreSQL server the tests use (trust authentication, as on the CI machine).
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def postgres_schema(server: str = POSTGRES_URL) -> Iterator[str]:
    """A database URL whose tables live in a fresh schema of their own, dropped afterwards (safe in parallel)."""
    import psycopg

    schema = "test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{server}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def channel(n: int, **fields: Any) -> ChannelConfig:
    """Simulator channel number ``n`` (an OA of its own: id, token, bot); its token is ``token(n)``."""
    return ChannelConfig(
        channel_id=str(2_000_000_000 + n),
        access_tokens=[token(n)],
        bot_user_id="U" + uuid.uuid5(uuid.NAMESPACE_OID, f"bot-{n}").hex,
        display_name=f"OA {n}",
        **fields,
    )


def token(n: int) -> str:
    """The channel access token of :func:`channel` ``n``."""
    return f"token-of-channel-{n}"


@contextlib.asynccontextmanager
async def pipeline(
    tmp_path: Path,
    options: SimulatorOptions | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[Pipeline]:
    """A simulator, a fresh database with one authentication, and a clock (fake unless given).

    A fake clock jumps through a worker's idle waits; give a real one to run several
    workers at once, since one worker's jump would expire the leases of another's pushes.
    """
    clock = clock or FakeClock()
    base = Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'lineoa.db'}",
        secret_key=TEST_SECRET_KEY,
        **{"timeout": 2.0, "connect_timeout": 1.0, "concurrency": 16, "allowed_api_hosts": SIMULATOR_HOST, **settings},
    )
    ctx = open_context(base, clock=clock)
    try:
        async with running_simulator(options or SimulatorOptions(), clock=clock.now) as sim:
            p = Pipeline(ctx, sim, clock)
            p.create_auth()
            yield p
    finally:
        ctx.close()


# -- a fake transport: the seam of line_client, no monkeypatching -------------------------------


@dataclass
class Call:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@dataclass
class FakeTransport:
    """A :class:`~lineoa_export.delivery.line_client.Transport` that answers by URL path, in order (the
    last answer repeats), and records every request. It yields to the loop a few times per
    request, like real I/O, so concurrent callers interleave."""

    answers: dict[str, list[Answer | NoAnswer]] = field(default_factory=dict)
    api_url: str = "https://api.line.test"
    calls: list[Call] = field(default_factory=list)
    closed: bool = False

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer | NoAnswer:
        self.calls.append(Call(method, url, dict(headers), body))
        for _ in range(3):
            await asyncio.sleep(0)
        queue = self.answers[url.removeprefix(self.api_url)]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def close(self) -> None:
        self.closed = True

    def paths(self) -> list[str]:
        return [c.url.removeprefix(self.api_url) for c in self.calls]

    def to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.url == self.api_url + path]


# -- a simulator for synchronous tests (ASGI clients, browsers) ----------------------------------


class ThreadedSimulator:
    """A LINE simulator serving from its own event loop on a daemon thread."""

    def __init__(self, options: SimulatorOptions | None = None, *, clock: Clock | None = None) -> None:
        """``clock``: the simulator's wall clock (days and months of its counts), e.g. a test's FakeClock."""
        self._clock = clock
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.sim: RunningSimulator | None = None
        self._thread = threading.Thread(target=self._run, args=(options,), daemon=True, name="line-simulator")
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None or self.sim is None:
            raise RuntimeError("the simulator did not start") from self._error

    def _run(self, options: SimulatorOptions | None) -> None:
        async def serve() -> None:
            self._stop = asyncio.Event()
            wall = time.time if self._clock is None else self._clock.now
            async with running_simulator(options, clock=wall) as sim:
                self.sim = sim
                self._ready.set()
                await self._stop.wait()

        try:
            self._loop.run_until_complete(serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    @property
    def url(self) -> str:
        assert self.sim is not None
        return self.sim.url

    @property
    def options(self) -> SimulatorOptions:
        assert self.sim is not None
        return self.sim.options

    def _call(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def patch(self, patch: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /__sim/options`` (a JSON merge patch)."""
        return self._call("PATCH", "/__sim/options", patch)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/__sim/stats?recipients=1")

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


# -- an ASGI app on a real port (for what must reach it over HTTP: LINE's webhooks) ---------------


@contextlib.asynccontextmanager
async def serving(app: Any, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port of ``host`` in this loop; yields its base URL.

    The socket is bound and listening before uvicorn starts, so a client may connect at once
    (its connection waits in the backlog): nothing polls for the server to come up.
    """
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
