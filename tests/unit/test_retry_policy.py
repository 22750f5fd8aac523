"""The retry contract: delays, the retry budget, pauses and the 24-hour retry-key window."""

from __future__ import annotations

import pytest

from lineoa_export.delivery.outcomes import Outcome, OutcomeKind
from lineoa_export.delivery.retry_policy import (
    KEY_EXPIRED_ERROR,
    KEY_LIFETIME_SECONDS,
    RetryPolicy,
    Verdict,
    decide,
    key_expired,
)

T0 = 1_800_000_000.0
TRANSIENT = Outcome(OutcomeKind.TRANSIENT, 503, error="HTTP 503")
RATE_LIMITED = Outcome(OutcomeKind.RATE_LIMITED, 429, error="The API rate limit has been exceeded. Try again later.")


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (RetryPolicy(), [2.0, 4.0, 8.0]),
        (RetryPolicy(3, 0.5, 3.0), [0.5, 1.5, 4.5]),
        (RetryPolicy(4, 5.0, 1.0), [5.0, 5.0, 5.0, 5.0]),
        (RetryPolicy(3, 0.0, 2.0), [0.0, 0.0, 0.0]),
        (RetryPolicy(5, 1.0, 10.0), [1.0, 10.0, 100.0, 1000.0, 10000.0]),
    ],
)
def test_delay_before_retry_n(policy: RetryPolicy, delays: list[float]) -> None:
    assert [policy.delay(n) for n in range(1, len(delays) + 1)] == pytest.approx(delays)


def test_defaults_match_the_product_page() -> None:
    assert RetryPolicy() == RetryPolicy(max_retries=3, initial_retry_delay=2.0, retry_delay_multiple=2.0)


def run_until_final(policy: RetryPolicy, outcome: Outcome) -> list:
    """Feed ``outcome`` to decide() as a worker would, following each retry's time."""
    now = T0
    retries = 0
    decisions = []
    while True:
        d = decide(outcome, policy, retries_used=retries, first_attempt_at=T0, now=now)
        decisions.append(d)
        if d.verdict is not Verdict.RETRY:
            return decisions
        assert d.next_attempt_at is not None
        now = d.next_attempt_at
        retries = d.retries


@pytest.mark.parametrize("outcome", [TRANSIENT, RATE_LIMITED], ids=["transient", "rate_limited"])
def test_three_retries_then_the_fourth_failure_fails(outcome: Outcome) -> None:
    decisions = run_until_final(RetryPolicy(max_retries=3), outcome)

    assert [d.verdict for d in decisions] == [Verdict.RETRY] * 3 + [Verdict.FAIL]
    assert [d.retries for d in decisions] == [1, 2, 3, 3]
    assert [d.next_attempt_at for d in decisions[:3]] == [T0 + 2, T0 + 2 + 4, T0 + 2 + 4 + 8]
    final = decisions[-1]
    assert final.error == f"{outcome.error} (gave up after 3 retries)"
    assert final.error.endswith("(gave up after 3 retries)")
    assert final.next_attempt_at is None


def test_gave_up_after_one_retry_is_singular() -> None:
    decisions = run_until_final(RetryPolicy(max_retries=1), TRANSIENT)

    assert [d.verdict for d in decisions] == [Verdict.RETRY, Verdict.FAIL]
    assert decisions[-1].error == "HTTP 503 (gave up after 1 retry)"


def test_max_retries_zero_fails_at_once() -> None:
    d = decide(TRANSIENT, RetryPolicy(max_retries=0), retries_used=0, first_attempt_at=T0, now=T0)

    assert d.verdict is Verdict.FAIL
    assert d.retries == 0
    assert d.error == "HTTP 503 (gave up after 0 retries)"


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [
        (OutcomeKind.DELIVERED, Verdict.DELIVERED),
        (OutcomeKind.DUPLICATE, Verdict.DELIVERED),
        (OutcomeKind.RATE_LIMITED, Verdict.RETRY),
        (OutcomeKind.TRANSIENT, Verdict.RETRY),
        (OutcomeKind.REJECTED, Verdict.FAIL),
        (OutcomeKind.MONTHLY_LIMIT, Verdict.PAUSE),
        (OutcomeKind.UNAUTHORIZED, Verdict.PAUSE),
        (OutcomeKind.FORBIDDEN, Verdict.PAUSE),
    ],
)
def test_verdict_per_outcome_kind(kind: OutcomeKind, verdict: Verdict) -> None:
    d = decide(Outcome(kind, error="e"), RetryPolicy(), retries_used=0, first_attempt_at=T0, now=T0)

    assert d.verdict is verdict


def test_rejected_fails_without_retry_and_keeps_lines_error() -> None:
    d = decide(
        Outcome(OutcomeKind.REJECTED, 400, error="Failed to send messages"),
        RetryPolicy(),
        retries_used=1,
        first_attempt_at=T0,
        now=T0,
    )

    assert d.verdict is Verdict.FAIL
    assert d.retries == 1
    assert d.error is None  # the outcome's own error stands
    assert d.next_attempt_at is None


@pytest.mark.parametrize(
    ("kind", "pause_kind"),
    [
        (OutcomeKind.MONTHLY_LIMIT, "quota"),
        (OutcomeKind.UNAUTHORIZED, "credentials"),
        (OutcomeKind.FORBIDDEN, "credentials"),
    ],
)
@pytest.mark.parametrize("retries_used", [0, 2, 3])
def test_pausing_outcomes_do_not_spend_retries(kind: OutcomeKind, pause_kind: str, retries_used: int) -> None:
    d = decide(
        Outcome(kind, error="e"),
        RetryPolicy(max_retries=3),
        retries_used=retries_used,
        first_attempt_at=T0,
        now=T0 + 100,
    )

    assert d.verdict is Verdict.PAUSE
    assert d.pause_kind == pause_kind
    assert d.retries == retries_used  # even with the budget spent, a pause is not a failure


def test_delivered_keeps_retries_used() -> None:
    d = decide(Outcome(OutcomeKind.DELIVERED), RetryPolicy(), retries_used=2, first_attempt_at=T0, now=T0)

    assert d == type(d)(Verdict.DELIVERED, 2)


# -- 24 hours of retry key ----------------------------------------------------------------------


def test_a_retry_landing_past_the_key_window_fails_with_key_expired() -> None:
    policy = RetryPolicy(max_retries=3, initial_retry_delay=3600.0, retry_delay_multiple=1.0)
    now = T0 + KEY_LIFETIME_SECONDS - 1800  # retry would land 30 min past the window

    d = decide(TRANSIENT, policy, retries_used=0, first_attempt_at=T0, now=now)

    assert d.verdict is Verdict.FAIL
    assert d.error == KEY_EXPIRED_ERROR
    assert "24 hours" in d.error
    assert d.retries == 0


def test_a_retry_landing_just_inside_the_key_window_is_scheduled() -> None:
    policy = RetryPolicy(max_retries=3, initial_retry_delay=10.0, retry_delay_multiple=1.0)
    now = T0 + KEY_LIFETIME_SECONDS - 11

    d = decide(TRANSIENT, policy, retries_used=0, first_attempt_at=T0, now=now)

    assert d.verdict is Verdict.RETRY
    assert d.next_attempt_at == now + 10


def test_a_retry_landing_exactly_at_24_hours_is_refused() -> None:
    policy = RetryPolicy(max_retries=3, initial_retry_delay=10.0, retry_delay_multiple=1.0)

    d = decide(TRANSIENT, policy, retries_used=0, first_attempt_at=T0, now=T0 + KEY_LIFETIME_SECONDS - 10)

    assert d.verdict is Verdict.FAIL
    assert d.error == KEY_EXPIRED_ERROR


def test_long_exponential_backoff_runs_into_the_key_window() -> None:
    # 1 h, 2 h, 4 h, 8 h, 16 h: the fifth retry would land 31 h after the first attempt.
    decisions = run_until_final(RetryPolicy(10, 3600.0, 2.0), TRANSIENT)

    assert [d.verdict for d in decisions] == [Verdict.RETRY] * 4 + [Verdict.FAIL]
    assert decisions[-1].error == KEY_EXPIRED_ERROR
    assert decisions[-1].retries == 4


@pytest.mark.parametrize(
    ("first_attempt_at", "now", "expired"),
    [
        (None, T0 + 10 * KEY_LIFETIME_SECONDS, False),
        (T0, T0, False),
        (T0, T0 + KEY_LIFETIME_SECONDS - 0.001, False),
        (T0, T0 + KEY_LIFETIME_SECONDS, True),
        (T0, T0 + KEY_LIFETIME_SECONDS + 1, True),
    ],
)
def test_key_expired_boundaries(first_attempt_at: float | None, now: float, expired: bool) -> None:
    assert key_expired(first_attempt_at, now) is expired


def test_key_lifetime_is_24_hours() -> None:
    assert KEY_LIFETIME_SECONDS == 86_400
