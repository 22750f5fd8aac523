"""The console's login throttle: failed logins counted per client address.

After ``limit`` failures within ``window`` seconds an address must wait until the oldest of
them ages out; a successful login clears its count. Behind a reverse proxy every client shares
the proxy's address (run uvicorn with ``--proxy-headers`` so the real one is used).

The one rule: the throttle is checked *before* the key, and a throttled attempt is refused
whatever it sends, so guessing learns nothing while it waits.

Hand-written rather than ``limits``/``slowapi``: those read the system clock, and the tests
must move time with :class:`~lineoa_export.clock.FakeClock` instead of sleeping.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque

from ...clock import Clock

LIMIT = 5
WINDOW = 300.0
# Addresses remembered at most: a spray from many addresses cannot grow memory without bound
# (the oldest-touched address is forgotten first).
MAX_CLIENTS = 10_000


class LoginThrottle:
    def __init__(self, clock: Clock, *, limit: int = LIMIT, window: float = WINDOW) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str) -> int:
        """Whole seconds ``client`` must still wait before its next try (0: it may try now)."""
        now = self.clock.now()
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.limit:
                return 0
            return max(1, math.ceil(failures[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        now = self.clock.now()
        with self._lock:
            self._recent(client, now).append(now)
            self._failures.move_to_end(client)
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque(maxlen=self.limit))
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
