"""The life of an event, as one enum mirrored by the CHECK on ``events.state`` (store/migrations).

::

    queued ──► delivered
      │  ▲
      ▼  │ (due again)
    retrying ──► failed          (retry budget spent, 4xx, or retry key older than 24 h)
      │
      ▼
    paused ──► queued            (activation or channel resumed)

    queued ──► suppressed        (not sent on purpose: the recipient blocked the account, the
                                  activation's frequency cap, quiet hours with ``drop``)
    queued ──► deferred ──► queued   (quiet hours, or over the cap with ``defer``: waits for
                                      ``next_attempt_at``, then back in line; no retry spent)

An event is checked for these just before it would be sent (see :mod:`.audience_gate`).

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
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"

    @property
    def is_final(self) -> bool:
        return self in (EventState.DELIVERED, EventState.FAILED, EventState.SUPPRESSED)
