"""The life of an event, as one enum mirrored by the CHECK on ``events.state`` (store/migrations).

::

    queued ──► delivered
      │  ▲
      ▼  │ (due again)
    retrying ──► failed          (retry budget spent, 4xx, or retry key older than 24 h)
      │
      ▼
    paused ──► queued            (activation or channel resumed)

An event being sent keeps its state and carries a lease (``leased_until``) instead:
if the worker dies, the lease runs out and the event is claimed again with the same
retry key and the byte-identical body.
"""

from __future__ import annotations

from enum import StrEnum


class EventState(StrEnum):
    QUEUED = "queued"
    RETRYING = "retrying"
    PAUSED = "paused"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (EventState.DELIVERED, EventState.FAILED)
