"""Running the simulator: in-process for tests and demos, or blocking for the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from lineoa_export.simulator.app import SimState, create_app, get_state
from lineoa_export.simulator.options import SimulatorOptions, apply_in_place, merge_patch
from lineoa_export.simulator.record import Record

__all__ = ["RunningSimulator", "running_simulator", "serve_forever"]

#: How long shutdown waits for requests still in flight (a hanging request ends at once).
_SHUTDOWN_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on ``url``; ``record`` and ``options`` are the live objects."""

    url: str
    host: str
    port: int
    app: web.Application

    @property
    def state(self) -> SimState:
        return get_state(self.app)

    @property
    def record(self) -> Record:
        return self.state.record

    @property
    def options(self) -> SimulatorOptions:
        return self.state.options

    def update_options(self, patch: dict[str, Any]) -> SimulatorOptions:
        """Merge ``patch`` into the options, as ``PATCH /__sim/options`` does."""
        apply_in_place(self.options, merge_patch(self.options, patch))
        return self.options

    def revoke_tokens(self) -> None:
        """Invalidate every minted token (``POST /__sim/revoke``)."""
        self.state.minted.clear()

    def reset(self) -> None:
        """``POST /__sim/reset``: forget the record, refill buckets, forget minted tokens."""
        self.state.reset()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the simulator's site has no bound TCP socket")


@contextlib.asynccontextmanager
async def running_simulator(
    options: SimulatorOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator on ``host:port`` (port 0: a free one) for the duration of the block."""
    app = create_app(options, clock=clock, monotonic=monotonic)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = _bound_port(runner)
        url_host = f"[{host}]" if ":" in host else host
        yield RunningSimulator(url=f"http://{url_host}:{bound}", host=host, port=bound, app=app)
    finally:
        await runner.cleanup()


async def _serve(options: SimulatorOptions | None, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with running_simulator(options, host, port) as sim:
        print(sim.url, flush=True)
        await stop.wait()


def serve_forever(options: SimulatorOptions | None = None, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until Ctrl-C or SIGTERM. Prints one line, the simulator's URL, and nothing else."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(options, host, port))
