"""LINE's answer to one push, turned into one :class:`Outcome`.

This is the only module that reads LINE's status codes and error messages
(see ``LINE-FACTS.md``, "Status codes and what a sender does"). Everything downstream
works with :class:`OutcomeKind`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

RATE_LIMIT_MESSAGE = "The API rate limit has been exceeded. Try again later."
MONTHLY_LIMIT_MESSAGE = "You have reached your monthly limit."
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class OutcomeKind(StrEnum):
    DELIVERED = "delivered"  # 2xx
    DUPLICATE = "duplicate"  # 409 + x-line-accepted-request-id: delivered earlier
    RATE_LIMITED = "rate_limited"  # 429 rate limit: retry, and slow the channel down
    MONTHLY_LIMIT = "monthly_limit"  # 429 monthly limit: pause the channel
    TRANSIENT = "transient"  # 5xx, timeout, connection error: retry
    UNAUTHORIZED = "unauthorized"  # 401: re-mint once, else pause the channel
    FORBIDDEN = "forbidden"  # 403: pause the channel
    REJECTED = "rejected"  # other 4xx: fail, no retry

    @property
    def delivered(self) -> bool:
        return self in (OutcomeKind.DELIVERED, OutcomeKind.DUPLICATE)


# Not frozen: one is made for every push, and frozen fields cost ≈3× to set. Never changed once made.
@dataclass(slots=True)
class Answer:
    """What came back over HTTP (line_client fills it; nothing here knows aiohttp)."""

    status: int
    body: bytes
    request_id: str | None = None
    accepted_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The request got no HTTP answer: a timeout or a connection failure."""

    error: str


# Not frozen: one is made for every push, and frozen fields cost ≈3× to set. Never changed once made.
@dataclass(slots=True)
class Outcome:
    kind: OutcomeKind
    status_code: int | None = None
    error: str | None = None
    request_id: str | None = None
    accepted_request_id: str | None = None
    sent_message_ids: tuple[str, ...] = ()


def classify(answer: Answer | NoAnswer) -> Outcome:
    if isinstance(answer, NoAnswer):
        return Outcome(OutcomeKind.TRANSIENT, error=answer.error)
    status = answer.status
    if 200 <= status < 300:
        return Outcome(
            OutcomeKind.DELIVERED,
            status,
            request_id=answer.request_id,
            sent_message_ids=_sent_message_ids(answer.body),
        )
    message = error_message(answer.body, status)
    if status == 409 and answer.accepted_request_id:
        return Outcome(
            OutcomeKind.DUPLICATE,
            status,
            request_id=answer.request_id,
            accepted_request_id=answer.accepted_request_id,
            sent_message_ids=_sent_message_ids(answer.body),
        )
    kind = _kind_of_failure(status, message)
    return Outcome(kind, status, error=message, request_id=answer.request_id)


def _kind_of_failure(status: int, message: str) -> OutcomeKind:
    if status == 429:
        # LINE sends no error code: the message text is the only way to tell them apart.
        # Anything that is not the monthly-limit text is treated as a rate limit, which
        # is the safe reading: it is retried with backoff rather than pausing a channel.
        return OutcomeKind.MONTHLY_LIMIT if message.strip() == MONTHLY_LIMIT_MESSAGE else OutcomeKind.RATE_LIMITED
    if status in TRANSIENT_STATUSES:
        return OutcomeKind.TRANSIENT
    if status == 401:
        return OutcomeKind.UNAUTHORIZED
    if status == 403:
        return OutcomeKind.FORBIDDEN
    return OutcomeKind.REJECTED


def success_json(answer: Answer | NoAnswer) -> dict[str, Any] | None:
    """The JSON object a 2xx answer carries (bot info, quota, a minted token); None otherwise."""
    if not isinstance(answer, Answer) or not 200 <= answer.status < 300:
        return None
    try:
        data = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def error_message(body: bytes, status: int) -> str:
    """LINE's error text, with its ``details[]`` folded in; never the raw body of a proxy page."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP {status}"
    if not isinstance(data, dict):
        return f"HTTP {status}"
    message = data.get("message") or data.get("error_description") or data.get("error")
    text = str(message) if message else f"HTTP {status}"
    details = data.get("details")
    if isinstance(details, list) and details:
        parts = [
            f"{d.get('property')}: {d.get('message')}" if d.get("property") else str(d.get("message"))
            for d in details[:10]
            if isinstance(d, dict)
        ]
        text = f"{text} ({'; '.join(parts)})"
    return text


def _sent_message_ids(body: bytes) -> tuple[str, ...]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ()
    sent = data.get("sentMessages") if isinstance(data, dict) else None
    if not isinstance(sent, list):
        return ()
    return tuple([str(m["id"]) for m in sent if isinstance(m, dict) and "id" in m])


def classify_token_answer(answer: Answer | NoAnswer) -> Outcome:
    """An answer of ``/oauth2/v3/token`` that did not yield a token.

    A refusal there (4xx other than 429) means the channel ID or secret is wrong, which
    is a credentials problem (pause the channel), not a bad message (fail the event).
    """
    outcome = classify(answer)
    if outcome.kind is OutcomeKind.DELIVERED:
        # Only called when the answer held no usable token: never let that read as a delivery.
        return Outcome(
            OutcomeKind.TRANSIENT,
            outcome.status_code,
            error="channel token request answered without an access_token",
            request_id=outcome.request_id,
        )
    if outcome.kind is OutcomeKind.REJECTED:
        return Outcome(
            OutcomeKind.UNAUTHORIZED,
            outcome.status_code,
            error=f"channel token request refused: {outcome.error}",
            request_id=outcome.request_id,
        )
    return outcome
