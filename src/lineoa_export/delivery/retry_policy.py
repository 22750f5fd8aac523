"""An :class:`~lineoa_export.delivery.outcomes.Outcome` plus where the event stands → a :class:`Decision`.

The only module that knows the product page's retry contract:

* retried outcomes: 429 (rate limit), 500, 502, 503, 504, timeouts, connection errors;
* the wait before retry *n* (n = 1, 2, …) is exactly::

      delay(n) = initial_retry_delay × retry_delay_multiple ** (n − 1)

  so 2, 4, 8 seconds with the defaults (2 s, ×2);
* after ``max_retries`` retries the event stops for good ("stop the job");
* LINE remembers an ``X-Line-Retry-Key`` for 24 hours, so an event whose first attempt
  is older than that is never sent again (it could be delivered twice);
* a monthly-limit 429, a 401 or a 403 pauses the channel instead: those attempts do not
  spend the retry budget, because waiting, not retrying, is what fixes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .outcomes import Outcome, OutcomeKind

KEY_LIFETIME_SECONDS = 24 * 3600.0
KEY_EXPIRED_ERROR = (
    "retry key expired: the first attempt is more than 24 hours old and LINE no longer "
    "recognises its X-Line-Retry-Key, so sending again could deliver twice"
)

_RETRIED = frozenset({OutcomeKind.RATE_LIMITED, OutcomeKind.TRANSIENT})
_PAUSING = {
    OutcomeKind.MONTHLY_LIMIT: "quota",
    OutcomeKind.UNAUTHORIZED: "credentials",
    OutcomeKind.FORBIDDEN: "credentials",
}


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PAUSE = "pause"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    initial_retry_delay: float = 2.0
    retry_delay_multiple: float = 2.0

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        return self.initial_retry_delay * self.retry_delay_multiple ** (retry_number - 1)


# Not frozen: one is made for every push, and frozen fields cost ≈3× to set. Never changed once made.
@dataclass(slots=True)
class Decision:
    verdict: Verdict
    retries: int  # retries used of the budget after this decision
    next_attempt_at: float | None = None
    pause_kind: str | None = None  # 'quota' or 'credentials' when pausing
    error: str | None = None  # overrides the outcome's error (e.g. key expiry)


def key_expired(first_attempt_at: float | None, now: float) -> bool:
    return first_attempt_at is not None and now - first_attempt_at >= KEY_LIFETIME_SECONDS


def decide(
    outcome: Outcome,
    policy: RetryPolicy,
    *,
    retries_used: int,
    first_attempt_at: float,
    now: float,
    breaker_probe_at: float | None = None,
) -> Decision:
    """What to do after an attempt that ended in ``outcome``.

    ``retries_used`` counts retries already spent before this attempt's answer;
    ``first_attempt_at`` is when the event was first sent (this attempt, if it was the first).
    ``breaker_probe_at`` is set when the channel's breaker is tripped: a push that got no
    answer then waits for the probe without spending a retry (waiting fixes it, not retrying).
    """
    kind = outcome.kind
    if kind.delivered:
        return Decision(Verdict.DELIVERED, retries_used)
    if kind in _PAUSING:
        return Decision(Verdict.PAUSE, retries_used, pause_kind=_PAUSING[kind])
    if kind not in _RETRIED:
        return Decision(Verdict.FAIL, retries_used)
    if breaker_probe_at is not None and outcome.status_code is None:
        if key_expired(first_attempt_at, breaker_probe_at):
            return Decision(Verdict.FAIL, retries_used, error=KEY_EXPIRED_ERROR)
        return Decision(Verdict.RETRY, retries_used, next_attempt_at=breaker_probe_at)
    if retries_used >= policy.max_retries:
        gave_up = f"gave up after {retries_used} {'retry' if retries_used == 1 else 'retries'}"
        return Decision(Verdict.FAIL, retries_used, error=f"{outcome.error} ({gave_up})")
    retry_number = retries_used + 1
    retry_at = now + policy.delay(retry_number)
    if key_expired(first_attempt_at, retry_at):
        return Decision(Verdict.FAIL, retries_used, error=KEY_EXPIRED_ERROR)
    return Decision(Verdict.RETRY, retry_number, next_attempt_at=retry_at)
