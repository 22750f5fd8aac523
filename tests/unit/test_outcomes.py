"""LINE's answers → OutcomeKind: every row of LINE-FACTS' status table."""

from __future__ import annotations

import orjson
import pytest

from lineoa_export.delivery.outcomes import (
    MONTHLY_LIMIT_MESSAGE,
    RATE_LIMIT_MESSAGE,
    Answer,
    NoAnswer,
    OutcomeKind,
    classify,
    classify_token_answer,
    error_message,
)


def body(**fields: object) -> bytes:
    return orjson.dumps(fields)


SENT = body(sentMessages=[{"id": "461230966842064897", "quoteToken": "q1"}, {"id": "461230966842064898"}])


def test_200_is_delivered_with_sent_message_ids_and_request_id() -> None:
    outcome = classify(Answer(200, SENT, request_id="req-1"))

    assert outcome.kind is OutcomeKind.DELIVERED
    assert outcome.kind.delivered
    assert outcome.status_code == 200
    assert outcome.request_id == "req-1"
    assert outcome.sent_message_ids == ("461230966842064897", "461230966842064898")
    assert outcome.error is None


def test_409_with_accepted_request_id_is_a_duplicate_keeping_both_ids() -> None:
    answer = Answer(
        409,
        body(message="The retry key is already accepted", sentMessages=[{"id": "111"}]),
        request_id="req-new",
        accepted_request_id="req-original",
    )

    outcome = classify(answer)

    assert outcome.kind is OutcomeKind.DUPLICATE
    assert outcome.kind.delivered
    assert outcome.status_code == 409
    assert outcome.request_id == "req-new"
    assert outcome.accepted_request_id == "req-original"
    assert outcome.sent_message_ids == ("111",)


def test_409_without_accepted_request_id_is_rejected() -> None:
    outcome = classify(Answer(409, body(message="Conflict"), request_id="r"))

    assert outcome.kind is OutcomeKind.REJECTED
    assert not outcome.kind.delivered
    assert outcome.error == "Conflict"


@pytest.mark.parametrize(
    ("status", "payload", "kind"),
    [
        (429, body(message=RATE_LIMIT_MESSAGE), OutcomeKind.RATE_LIMITED),
        (429, body(message=MONTHLY_LIMIT_MESSAGE), OutcomeKind.MONTHLY_LIMIT),
        (500, body(message="Internal error"), OutcomeKind.TRANSIENT),
        (502, b"<html>Bad Gateway</html>", OutcomeKind.TRANSIENT),
        (503, body(message="Service unavailable"), OutcomeKind.TRANSIENT),
        (504, b"", OutcomeKind.TRANSIENT),
        (400, body(message="Failed to send messages"), OutcomeKind.REJECTED),
        (401, body(message="Authentication failed due to the expired access token"), OutcomeKind.UNAUTHORIZED),
        (403, body(message="Access to this API is not available for your account"), OutcomeKind.FORBIDDEN),
        (404, body(message="Not found"), OutcomeKind.REJECTED),
        (413, body(message="Request Entity Too Large"), OutcomeKind.REJECTED),
        (415, body(message="Unsupported Media Type"), OutcomeKind.REJECTED),
    ],
    ids=lambda v: str(v) if isinstance(v, int | OutcomeKind) else None,
)
def test_status_table(status: int, payload: bytes, kind: OutcomeKind) -> None:
    outcome = classify(Answer(status, payload, request_id="req"))

    assert outcome.kind is kind
    assert outcome.status_code == status
    assert outcome.request_id == "req"
    assert not outcome.kind.delivered
    assert outcome.error  # a failure always says something


def test_monthly_limit_text_is_matched_despite_surrounding_whitespace() -> None:
    outcome = classify(Answer(429, body(message=f"  {MONTHLY_LIMIT_MESSAGE}\n")))

    assert outcome.kind is OutcomeKind.MONTHLY_LIMIT


def test_unknown_429_text_is_read_as_a_rate_limit_not_a_pause() -> None:
    outcome = classify(Answer(429, body(message="Too many messages to one user")))

    assert outcome.kind is OutcomeKind.RATE_LIMITED


@pytest.mark.parametrize("error", ["timeout: no answer within 10 s", "connection error: ConnectionResetError"])
def test_no_answer_is_transient_and_keeps_its_reason(error: str) -> None:
    outcome = classify(NoAnswer(error))

    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.status_code is None
    assert outcome.error == error


def test_400_with_details_names_each_property() -> None:
    answer = Answer(
        400,
        body(
            message="The request body has 2 error(s)",
            details=[
                {"message": "Length must be between 0 and 5000", "property": "messages[0].text"},
                {"message": "May not be empty", "property": "to"},
            ],
        ),
    )

    outcome = classify(answer)

    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.error is not None
    assert outcome.error.startswith("The request body has 2 error(s)")
    assert "messages[0].text: Length must be between 0 and 5000" in outcome.error
    assert "to: May not be empty" in outcome.error


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (502, b"<html><body>502 Bad Gateway</body></html>", "HTTP 502"),
        (503, b"", "HTTP 503"),
        (500, b"[1, 2]", "HTTP 500"),
        (400, b"{}", "HTTP 400"),
        (400, body(message="Invalid reply token"), "Invalid reply token"),
        (400, body(error="invalid_client", error_description="bad secret"), "bad secret"),
        (400, body(error="invalid_request"), "invalid_request"),
        (400, body(message="x", details=[{"message": "no property"}]), "x (no property)"),
    ],
)
def test_error_message(status: int, raw: bytes, expected: str) -> None:
    assert error_message(raw, status) == expected


def test_non_json_error_body_never_leaks_the_proxy_page() -> None:
    outcome = classify(Answer(502, b"<html>secret internal hostname</html>"))

    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.error == "HTTP 502"


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", body(sentMessages="nope"), body(sentMessages=[{"quoteToken": "no id"}, "junk"]), b""],
)
def test_200_with_odd_body_is_still_delivered_without_ids(raw: bytes) -> None:
    outcome = classify(Answer(200, raw))

    assert outcome.kind is OutcomeKind.DELIVERED
    assert outcome.sent_message_ids == ()


# -- the token endpoint ------------------------------------------------------------------------


def test_token_refusal_is_unauthorized_and_carries_the_oauth_reason() -> None:
    answer = Answer(400, body(error="invalid_client", error_description="invalid client_secret"))

    outcome = classify_token_answer(answer)

    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert outcome.status_code == 400
    assert outcome.error == "channel token request refused: invalid client_secret"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(401, body(error="invalid_client")), OutcomeKind.UNAUTHORIZED),
        (Answer(403, body(message="forbidden")), OutcomeKind.FORBIDDEN),
        (Answer(429, body(message=RATE_LIMIT_MESSAGE)), OutcomeKind.RATE_LIMITED),
        (Answer(500, b""), OutcomeKind.TRANSIENT),
        (NoAnswer("timeout"), OutcomeKind.TRANSIENT),
    ],
)
def test_token_answers_other_than_a_refusal_keep_their_kind(answer: Answer | NoAnswer, kind: OutcomeKind) -> None:
    assert classify_token_answer(answer).kind is kind


@pytest.mark.parametrize("raw", [body(token_type="Bearer"), b"<html>proxy</html>", b""])
def test_a_2xx_token_answer_without_a_token_is_transient_never_delivered(raw: bytes) -> None:
    outcome = classify_token_answer(Answer(200, raw, request_id="r"))

    assert outcome.kind is OutcomeKind.TRANSIENT
    assert not outcome.kind.delivered
    assert outcome.status_code == 200
    assert outcome.error == "channel token request answered without an access_token"
