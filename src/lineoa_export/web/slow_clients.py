"""How ``serve`` bounds what a slow or silent client can hold: uvicorn's settings, plus a header
deadline uvicorn does not have.

=============================  =====================================================================
bound                          value and where it is set
=============================  =====================================================================
request line and headers       :data:`HEADER_TIMEOUT` s from the connection (or the end of the
                               previous answer) to the last header line, else the connection is
                               closed (:class:`HeaderDeadlineH11Protocol`); a head still
                               unfinished at :data:`MAX_HEADER_BYTES` answers 400 (h11's limit)
idle keep-alive connection     :data:`KEEP_ALIVE_TIMEOUT` s (uvicorn ``timeout_keep_alive``)
request body                   :data:`~lineoa_export.web.app.BODY_READ_TIMEOUT` s without a
                               chunk answers 408; over 16 MB answers 413 (web/request_guard.py)
connections at once            :data:`MAX_CONNECTIONS` (uvicorn ``limit_concurrency``: 503 beyond)
=============================  =====================================================================

uvicorn times out only an idle connection *between* requests: a client that connects and
then sends half a request line, or a header a minute, holds its connection forever (the
"slowloris" pattern). The subclass below arms one timer per request head and closes the
connection when the head has not arrived in time. It relies on two hooks of uvicorn's h11
protocol (``handle_events`` and ``on_response_complete``) and its ``cycle`` attribute;
``tests/acceptance/test_slow_clients.py`` drives a real server, so an uvicorn that changes
them fails there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 1000


class HeaderDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not complete in time."""

    header_timeout = HEADER_TIMEOUT
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_head_deadline()  # a whole request head arrived: the app has it now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        waiting_for_head = self.cycle is None or self.cycle.response_complete
        if waiting_for_head and not self.transport.is_closing():
            self.transport.close()


def server_limits() -> dict[str, Any]:
    """The uvicorn.Config arguments that bound slow clients (see the table above)."""
    return {
        "http": HeaderDeadlineH11Protocol,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": MAX_CONNECTIONS,
    }
