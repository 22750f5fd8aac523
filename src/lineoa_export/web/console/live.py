"""What keeps a page that refreshes itself cheap for the server, however many tabs are open.

``static/live.js`` fetches a page's ``…/live`` twin every :data:`EVERY_MS` while the tab is
visible. For the activation table each fetch reads the newest page of rows (an index walk of 50
rows) but not the counts by state, which read every event of the activation: those come from
:class:`SharedCounts`, computed at most once per :data:`COUNTS_SECONDS` per activation for all
the tabs of this process (a page load computes them afresh). A page with a cursor (an older page)
is not refreshed at all. And every live answer says when to ask next (:data:`NEXT_HEADER`):
:func:`next_every_ms`, ten times what the answer cost the server, 2 s at the least, so a slow
activation (a filter no index serves) is asked less often instead of keeping a core busy.

The one rule: a live answer's cost to the server is bounded by what it says about the next one;
anything that reads a whole activation goes through :class:`SharedCounts`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ...clock import Clock

EVERY_MS = 2000  # the shortest interval between two refreshes of a tab
SLOWER = 10  # the next refresh waits this many times what the last one cost the server
COUNTS_SECONDS = 10.0  # how long an activation's counts serve every tab
NEXT_HEADER = "X-Live-Every"  # milliseconds until the page should ask again (live.js reads it)


def next_every_ms(spent: float) -> int:
    """The interval before the next refresh, in ms, for one that cost the server ``spent`` seconds."""
    return max(EVERY_MS, round(spent * 1000 * SLOWER))


class SharedCounts:
    """An activation's counts by state, shared by every tab of this process for a few seconds."""

    def __init__(self, count: Callable[[str], dict[str, int]], clock: Clock, seconds: float = COUNTS_SECONDS) -> None:
        self._count = count
        self._clock = clock
        self.seconds = seconds
        self._held: dict[str, tuple[float, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, fresh: bool = False) -> dict[str, int]:
        """The counts of ``name``: as held when younger than ``seconds`` (unless ``fresh``), else counted now."""
        now = self._clock.now()
        with self._lock:
            held = self._held.get(name)
        if held is not None and not fresh and now - held[0] < self.seconds:
            return held[1]
        counts = self._count(name)
        with self._lock:
            # only the activations someone watches now are held
            self._held = {k: v for k, v in self._held.items() if now - v[0] < self.seconds}
            self._held[name] = (now, counts)
        return counts
