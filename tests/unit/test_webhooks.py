"""Webhook signatures, parsing into follow facts, deduplication and reordering."""

from __future__ import annotations

import json

import pytest

from lineoa_export.webhooks import (
    FollowerState,
    WebhookBodyError,
    fold,
    follow_facts,
    signature_for,
    signature_is_valid,
)

SECRET = "8c570fa6dd201bb328f1c1eac23a96d8"


def event(kind: str, user: str, stamp: int, event_id: str, redelivery: bool = False) -> dict:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": stamp,
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": redelivery},
        "source": {"type": "user", "userId": user},
    }


def body(*events: dict) -> bytes:
    return json.dumps({"destination": "Ubot", "events": list(events)}).encode()


def test_good_signature_accepted() -> None:
    raw = body(event("follow", "U1", 1, "E1"))
    assert signature_is_valid(SECRET, raw, signature_for(SECRET, raw))


def test_known_vector() -> None:
    # Base64(HMAC-SHA256("secret", b"{}")) computed independently:
    # printf '{}' | openssl dgst -sha256 -hmac secret -binary | base64
    assert signature_for("secret", b"{}") == "dzJZAsrKgS3CWXM6rNBGtzgXNyx3e42VtAJkdHRRbhM="


@pytest.mark.parametrize("header", [None, "", "not-base64!", "dzJZAsrKgS3CWXM6rNBGtzgXNyx3e42VtAJkdHRRbhM="])
def test_missing_or_wrong_signature_refused(header: str | None) -> None:
    assert not signature_is_valid(SECRET, b"{}", header)


def test_body_altered_by_one_byte_refused() -> None:
    raw = body(event("unfollow", "U1", 1, "E1"))
    signature = signature_for(SECRET, raw)
    assert not signature_is_valid(SECRET, raw[:-1] + b" ", signature)


def test_non_ascii_header_refused_not_crashing() -> None:
    assert not signature_is_valid(SECRET, b"{}", "é")


def test_facts_from_follow_and_unfollow_only() -> None:
    message = {"type": "message", "timestamp": 5, "webhookEventId": "E9", "source": {"type": "user", "userId": "U1"}}
    group = event("follow", "U2", 6, "E8") | {"source": {"type": "group", "groupId": "C1"}}
    facts = follow_facts(body(event("unfollow", "U1", 7, "E1", redelivery=True), message, group))
    assert [(f.user_id, f.following, f.timestamp_ms, f.redelivery) for f in facts] == [("U1", False, 7, True)]


def test_empty_probe_has_no_facts() -> None:
    assert follow_facts(b'{"events": []}') == []


@pytest.mark.parametrize(("raw", "field"), [(b"nope", "body"), (b"[]", "events"), (b'{"events": 3}', "events")])
def test_bad_bodies_name_the_problem(raw: bytes, field: str) -> None:
    with pytest.raises(WebhookBodyError, match=f"^{field}:"):
        follow_facts(raw)


def test_duplicate_event_ids_apply_once() -> None:
    state: dict[str, FollowerState] = {}
    seen: set[str] = set()
    facts = follow_facts(body(event("unfollow", "U1", 10, "E1")))
    assert len(fold(state, seen, facts)) == 1
    assert fold(state, seen, facts) == []
    assert state["U1"] == FollowerState(False, 10)


def test_older_event_arriving_late_does_not_win() -> None:
    state: dict[str, FollowerState] = {}
    seen: set[str] = set()
    fold(state, seen, follow_facts(body(event("follow", "U1", 20, "E2"))))
    late = follow_facts(body(event("unfollow", "U1", 10, "E1", redelivery=True)))
    assert fold(state, seen, late) == []
    assert state["U1"] == FollowerState(True, 20)


def test_follow_after_unfollow_makes_user_reachable_again() -> None:
    state: dict[str, FollowerState] = {}
    seen: set[str] = set()
    facts = follow_facts(body(event("unfollow", "U1", 10, "E1"), event("follow", "U1", 11, "E2")))
    fold(state, seen, facts)
    assert state["U1"].following is True
