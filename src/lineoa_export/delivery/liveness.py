"""How workers know that one of them is dead, and how a live one makes sure it is not taken for dead.

Every worker writes a heartbeat (``workers.heartbeat_at``) every :data:`HEARTBEAT_EVERY`
seconds. An event leased by a worker whose heartbeat is older than :data:`DEAD_AFTER` is
claimable by the others at once, whatever its lease says: a worker killed with ``kill -9``
(or lost with its machine) has its events back in line within ``DEAD_AFTER`` plus one poll.

The rule that keeps two attempts with one retry key from ever being in flight together:
a worker that could not write a heartbeat for :data:`FENCE_AFTER` seconds (cut off from
the database, its process stalled) **fences itself**: it starts no push, and aborts the
pushes it has in flight, well before the others may take its events over. The gap between
``FENCE_AFTER`` and ``DEAD_AFTER`` must cover clock skew between hosts (keep them on NTP).

The fence is measured on the monotonic clock of the worker itself (a real elapsed time
since its last successful write); the heartbeat value is the injected clock's time, which
is what every worker compares it with.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..store.database import Database

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 1.0
FENCE_AFTER = 2.0
DEAD_AFTER = 4.0
#: Rows of workers gone this long are deleted (they only serve the takeover above).
FORGET_AFTER = 3600.0

DbCall = Callable[..., Awaitable[Any]]


class Liveness:
    """One worker's heartbeat and its fence."""

    def __init__(
        self, db: Database, worker_id: str, now: Callable[[], float], *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self._now = now
        self._monotonic = monotonic
        self._last_ok = monotonic()
        self.alive_workers = 1
        self._on_fence: list[Callable[[], None]] = []

    @property
    def fenced(self) -> bool:
        """True while this worker must not send: its last heartbeat is too long ago."""
        return self._monotonic() - self._last_ok > FENCE_AFTER

    def on_fence(self, callback: Callable[[], None]) -> None:
        self._on_fence.append(callback)

    def register(self) -> None:
        self.db.run(
            "worker_register",
            {"id": self.worker_id, "host": socket.gethostname(), "pid": os.getpid(), "now": self._now()},
        )
        self._last_ok = self._monotonic()

    def beat(self) -> None:
        """One heartbeat (a blocking call: run it where database calls run)."""
        now = self._now()
        if not self.db.run("worker_heartbeat", {"id": self.worker_id, "now": now}):
            self.register()  # forgotten (a long stall): come back under the same id
        self.alive_workers = max(1, self.db.run("workers_alive", {"alive_since": now - DEAD_AFTER})[0]["n"])
        self._last_ok = self._monotonic()

    def forget(self) -> None:
        """A clean stop: leave the table (and clear out workers long gone)."""
        self.db.run("worker_forget", {"id": self.worker_id, "forget_before": self._now() - FORGET_AFTER})

    async def run(self, db_call: DbCall) -> None:
        """Beat every second; fence as soon as the last good beat is too old (never returns)."""
        next_beat = self._monotonic()
        was_fenced = False
        while True:
            if self._monotonic() >= next_beat:
                next_beat = self._monotonic() + HEARTBEAT_EVERY
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                    async with asyncio.timeout(FENCE_AFTER):
                        await db_call(self.beat)
                except Exception as exc:
                    log.warning("heartbeat failed (%s): %s", type(exc).__name__, exc)
            if self.fenced and not was_fenced:
                log.error(
                    "no heartbeat for %.1f s: this worker stops sending until the database answers",
                    self._monotonic() - self._last_ok,
                )
                for callback in self._on_fence:
                    callback()
            was_fenced = self.fenced
            await asyncio.sleep(0.2)  # real time on purpose: the fence is about real time
