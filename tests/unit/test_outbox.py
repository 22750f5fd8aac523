"""The outbox on a real SQLite database: enqueue, claim under a lease, record, pause and resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet

from lineoa_export import activations, authentications
from lineoa_export.activations import parse_spec
from lineoa_export.authentications import Credentials
from lineoa_export.delivery import outbox, pauses
from lineoa_export.delivery.liveness import DEAD_AFTER
from lineoa_export.delivery.outbox import NewEvent, Result
from lineoa_export.delivery.pauses import PauseKind
from lineoa_export.delivery.states import EventState
from lineoa_export.store.database import Database, open_database
from lineoa_export.vault import Vault

T0 = 1_800_000_000.0
LEASE = 35.0
CHANNEL = "1234567890"
OTHER_CHANNEL = "9876543210"
USER = "U" + "0123456789abcdef" * 2


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database("sqlite:///" + str(tmp_path / "t.db"))
    vault = Vault(Fernet.generate_key())
    for name, channel_id in [("main", CHANNEL), ("other", OTHER_CHANNEL)]:
        authentications.create(
            database, vault, name=name, credentials=Credentials.from_options(None, channel_id, "s" * 32), now=T0
        )
    for name, auth, retries in [("welcome", "main", 3), ("promo", "main", 0), ("elsewhere", "other", 3)]:
        spec = parse_spec(
            {
                "name": name,
                "authentication": auth,
                "recipient": "{{line_user_id}}",
                "messages": [{"type": "text", "text": "Hi {{first_name}}"}],
                "max_retries": retries,
                "initial_retry_delay": 0.5,
                "retry_delay_multiple": 3,
            }
        )
        activations.create(database, spec, now=T0)
    yield database
    database.close()


def event(event_id: str, activation: str = "welcome", **over: Any) -> NewEvent:
    channel = OTHER_CHANNEL if activation == "elsewhere" else CHANNEL
    fields: dict[str, Any] = {
        "activation": activation,
        "event_id": event_id,
        "channel_key": channel,
        "recipient": USER,
        "body": orjson.dumps({"to": USER, "messages": [{"type": "text", "text": f"Hi {event_id}"}]}),
        "retry_key": f"key-{activation}-{event_id}",
    }
    fields.update(over)
    return NewEvent(**fields)


def stored(db: Database, event_id: str, activation: str = "welcome") -> dict[str, Any]:
    (row,) = db.run("log_event", {"activation": activation, "event_id": event_id})
    return row


def states(db: Database, activation: str = "welcome") -> dict[str, int]:
    return activations.counts(db, activation)


def result(claimed: outbox.Claimed, state: EventState, *, now: float, **over: Any) -> Result:
    fields: dict[str, Any] = {
        "event_id": claimed.id,
        "state": state,
        "attempt": claimed.attempts + 1,
        "retries": claimed.retries,
        "started_at": now,
        "duration_ms": 12.5,
        "status_code": 200,
        "error": None,
        "line_request_id": "req-1",
        "accepted_request_id": None,
        "sent_message_ids": '["4612"]',
        "next_attempt_at": None,
        "finished_at": now if state.is_final else None,
    }
    fields.update(over)
    return Result(**fields)


def claim(db: Database, now: float, worker: str = "w1", limit: int = 100) -> list[outbox.Claimed]:
    wants = [(CHANNEL, limit), (OTHER_CHANNEL, limit)]
    return outbox.claim(db, worker=worker, now=now, lease_seconds=LEASE, wants=wants, alive_since=now - DEAD_AFTER)


# -- enqueue -----------------------------------------------------------------------------------


def test_enqueue_stores_events_queued_with_body_and_key(db: Database) -> None:
    events = [event("e1"), event("e2")]

    assert outbox.enqueue(db, events, now=T0) == ["queued", "queued"]

    row = stored(db, "e1")
    assert row["state"] == "queued"
    assert bytes(row["body"]) == events[0].body
    assert row["retry_key"] == "key-welcome-e1"
    assert row["recipient"] == USER
    assert row["accepted_at"] == T0
    assert row["next_attempt_at"] == T0
    assert row["attempts"] == 0


def test_a_duplicate_event_id_in_one_batch_is_none(db: Database) -> None:
    got = outbox.enqueue(db, [event("e1"), event("e1", retry_key="another"), event("e2")], now=T0)

    assert got == ["queued", None, "queued"]
    assert stored(db, "e1")["retry_key"] == "key-welcome-e1"  # the first one stands
    assert states(db) == {"queued": 2}


def test_a_duplicate_event_id_across_batches_is_none(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)

    got = outbox.enqueue(db, [event("e1", body=b"{}"), event("e2")], now=T0 + 5)

    assert got == [None, "queued"]
    row = stored(db, "e1")
    assert row["accepted_at"] == T0
    assert bytes(row["body"]) == event("e1").body


def test_the_same_event_id_in_two_activations_is_two_events(db: Database) -> None:
    got = outbox.enqueue(db, [event("e1", "welcome"), event("e1", "promo")], now=T0)

    assert got == ["queued", "queued"]


def test_a_render_failure_is_stored_failed_at_once(db: Database) -> None:
    bad = event("e1", recipient=None, body=None, error="Variable not found: line_user_id")

    assert outbox.enqueue(db, [bad], now=T0) == ["failed"]

    row = stored(db, "e1")
    assert row["error"] == "Variable not found: line_user_id"
    assert row["finished_at"] == T0
    assert row["next_attempt_at"] is None
    assert claim(db, T0 + 3600) == []


def test_an_event_of_a_paused_activation_is_stored_paused(db: Database) -> None:
    activations.pause(db, "welcome", "by hand", now=T0)

    assert outbox.enqueue(db, [event("e1"), event("e2", "promo")], now=T0) == ["paused", "queued"]


# -- claim -------------------------------------------------------------------------------------


def test_claim_leases_due_events_with_their_key_body_and_policy(db: Database) -> None:
    outbox.enqueue(db, [event("e1"), event("e2", "promo")], now=T0)

    claimed = claim(db, T0)

    assert [(c.activation, c.retry_key) for c in claimed] == [("welcome", "key-welcome-e1"), ("promo", "key-promo-e2")]
    first = claimed[0]
    assert first.body == event("e1").body
    assert first.authentication == "main"
    assert first.channel_key == CHANNEL
    assert (first.attempts, first.retries, first.first_attempt_at) == (0, 0, None)
    assert first.accepted_at == T0
    assert first.policy == activations.get(db, "welcome").spec.policy
    assert (first.policy.max_retries, first.policy.initial_retry_delay, first.policy.retry_delay_multiple) == (
        3,
        0.5,
        3.0,
    )
    assert claimed[1].policy.max_retries == 0


def test_a_leased_event_is_not_claimed_twice(db: Database) -> None:
    outbox.enqueue(db, [event("e1"), event("e2")], now=T0)

    first = claim(db, T0, worker="w1")

    assert len(first) == 2
    assert claim(db, T0, worker="w2") == []
    assert claim(db, T0 + LEASE - 0.001, worker="w2") == []


def test_an_expired_lease_is_claimable_again_with_the_same_key_and_body(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (first,) = claim(db, T0, worker="w1")

    (again,) = claim(db, T0 + LEASE, worker="w2")

    assert again.id == first.id
    assert again.retry_key == first.retry_key
    assert again.body == first.body
    assert again.attempts == first.attempts


def test_claim_takes_the_most_overdue_first_up_to_the_limit(db: Database) -> None:
    outbox.enqueue(db, [event("late")], now=T0 + 10)
    outbox.enqueue(db, [event("early")], now=T0)
    outbox.enqueue(db, [event("middle")], now=T0 + 5)

    first = claim(db, T0 + 10, limit=2)
    rest = claim(db, T0 + 10, limit=2)

    assert [c.retry_key for c in first] == ["key-welcome-early", "key-welcome-middle"]
    assert [c.retry_key for c in rest] == ["key-welcome-late"]


def test_an_event_not_yet_due_is_not_claimed(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0 + 60)

    assert claim(db, T0 + 59.999) == []
    assert len(claim(db, T0 + 60)) == 1


def test_release_makes_events_claimable_at_once(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (c,) = claim(db, T0, worker="w1")

    outbox.release(db, [c.id], worker="w2")  # not w2's lease: nothing happens
    assert claim(db, T0, worker="w2") == []

    outbox.release(db, [c.id], worker="w1")
    (again,) = claim(db, T0, worker="w2")
    assert (again.id, again.retry_key, again.body) == (c.id, c.retry_key, c.body)


# -- record ------------------------------------------------------------------------------------


def test_record_writes_the_state_and_an_attempt_row(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (c,) = claim(db, T0 + 1)

    outbox.record(db, [result(c, EventState.DELIVERED, now=T0 + 1)], worker="w1")

    row = stored(db, "e1")
    assert row["state"] == "delivered"
    assert row["attempts"] == 1
    assert row["status_code"] == 200
    assert row["line_request_id"] == "req-1"
    assert row["sent_message_ids"] == '["4612"]'
    assert row["finished_at"] == T0 + 1
    attempts = db.run("log_attempts", {"activation": "welcome", "lo": c.id, "hi": c.id})
    assert [(a["number"], a["status_code"], a["started_at"], a["duration_ms"]) for a in attempts] == [
        (1, 200, T0 + 1, 12.5)
    ]
    assert claim(db, T0 + 3600) == []


def test_a_retry_is_recorded_then_claimed_when_due_and_keeps_history(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (c,) = claim(db, T0)
    outbox.record(
        db,
        [
            result(
                c,
                EventState.RETRYING,
                now=T0,
                retries=1,
                status_code=503,
                error="HTTP 503",
                line_request_id="req-a",
                sent_message_ids=None,
                next_attempt_at=T0 + 0.5,
            )
        ],
        worker="w1",
    )

    assert claim(db, T0 + 0.499) == []
    (again,) = claim(db, T0 + 0.5)
    assert (again.attempts, again.retries, again.first_attempt_at) == (1, 1, T0)
    assert again.retry_key == c.retry_key and again.body == c.body

    outbox.record(db, [result(again, EventState.DELIVERED, now=T0 + 0.5, line_request_id=None)], worker="w1")

    row = stored(db, "e1")
    assert (row["state"], row["attempts"], row["error"]) == ("delivered", 2, None)
    assert row["line_request_id"] == "req-a"  # an answer without an id keeps the last one known
    attempts = db.run("log_attempts", {"activation": "welcome", "lo": c.id, "hi": c.id})
    assert [(a["number"], a["status_code"], a["error"]) for a in attempts] == [(1, 503, "HTTP 503"), (2, 200, None)]


def test_record_by_a_worker_that_lost_its_lease_does_not_change_the_event(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (stale,) = claim(db, T0, worker="w1")
    (fresh,) = claim(db, T0 + LEASE, worker="w2")

    outbox.record(db, [result(stale, EventState.FAILED, now=T0 + LEASE, status_code=400)], worker="w1")

    assert stored(db, "e1")["state"] == "queued"
    outbox.record(db, [result(fresh, EventState.DELIVERED, now=T0 + LEASE)], worker="w2")
    assert stored(db, "e1")["state"] == "delivered"


def test_a_settled_result_writes_no_attempt_row(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (c,) = claim(db, T0)

    outbox.record(
        db,
        [
            result(
                c,
                EventState.FAILED,
                now=T0,
                attempt=0,
                status_code=None,
                error="retry key expired",
                attempted=False,
                line_request_id=None,
                sent_message_ids=None,
            )
        ],
        worker="w1",
    )

    assert stored(db, "e1")["state"] == "failed"
    assert db.run("log_attempts", {"activation": "welcome", "lo": c.id, "hi": c.id}) == []


def test_an_event_settled_without_sending_keeps_no_first_attempt_time(db: Database) -> None:
    # Regression: an unsent event held by a pause once got first_attempt_at, so after a pause
    # longer than 24 h it failed as "retry key expired" though LINE never saw its key.
    outbox.enqueue(db, [event("e1")], now=T0)
    (c,) = claim(db, T0)
    pauses.pause_channel(db, CHANNEL, reason="monthly limit", kind=PauseKind.QUOTA, now=T0)
    held = result(
        c,
        EventState.PAUSED,
        now=T0,
        attempt=0,
        status_code=None,
        attempted=False,
        line_request_id=None,
        sent_message_ids=None,
        next_attempt_at=T0,
    )
    outbox.record(db, [held], worker="w1")

    pauses.resume_channel(db, CHANNEL, now=T0 + 3 * 86400)
    (again,) = claim(db, T0 + 3 * 86400)

    assert again.attempts == 0
    assert again.first_attempt_at is None


# -- pause and resume a channel ----------------------------------------------------------------


def test_pause_channel_holds_queued_and_retrying_events_of_every_activation_on_it(db: Database) -> None:
    outbox.enqueue(db, [event("q1"), event("r1"), event("d1"), event("p1", "promo"), event("o1", "elsewhere")], now=T0)
    by_key = {c.retry_key: c for c in claim(db, T0)}
    outbox.record(
        db,
        [
            result(
                by_key["key-welcome-r1"],
                EventState.RETRYING,
                now=T0,
                retries=1,
                status_code=500,
                next_attempt_at=T0 + 0.5,
            ),
            result(by_key["key-welcome-d1"], EventState.DELIVERED, now=T0),
        ],
        worker="w1",
    )
    outbox.release(db, [by_key[k].id for k in ("key-welcome-q1", "key-promo-p1", "key-elsewhere-o1")], worker="w1")

    pauses.pause_channel(db, CHANNEL, reason="monthly limit reached", kind=PauseKind.QUOTA, now=T0 + 1)

    assert states(db, "welcome") == {"paused": 2, "delivered": 1}
    assert states(db, "promo") == {"paused": 1}
    assert states(db, "elsewhere") == {"queued": 1}  # another channel is not touched
    assert [c.retry_key for c in claim(db, T0 + 100)] == ["key-elsewhere-o1"]
    assert pauses.channels_paused_for(db, PauseKind.QUOTA) == [
        {"channel_key": CHANNEL, "reason": "monthly limit reached", "since": T0 + 1, "authentication": "main"}
    ]
    assert pauses.channels_paused_for(db, PauseKind.CREDENTIALS) == []
    assert authentications.get(db, "main").paused_reason == "monthly limit reached"
    reason = activations.get(db, "welcome").pause_reason
    assert reason == "channel paused since 2027-01-15T08:00:01Z: monthly limit reached"


def test_events_enqueued_while_the_channel_is_paused_are_stored_paused(db: Database) -> None:
    pauses.pause_channel(db, CHANNEL, reason="token refused", kind=PauseKind.CREDENTIALS, now=T0)

    got = outbox.enqueue(db, [event("n1"), event("n2", "promo"), event("n3", "elsewhere")], now=T0 + 1)

    assert got == ["paused", "paused", "queued"]
    assert [c.retry_key for c in claim(db, T0 + 1)] == ["key-elsewhere-n3"]


def test_a_retry_recorded_while_the_channel_is_paused_is_held(db: Database) -> None:
    outbox.enqueue(db, [event("e1")], now=T0)
    (c,) = claim(db, T0)
    pauses.pause_channel(db, CHANNEL, reason="monthly limit", kind=PauseKind.QUOTA, now=T0)

    outbox.record(
        db, [result(c, EventState.RETRYING, now=T0, retries=1, status_code=429, next_attempt_at=T0 + 0.5)], worker="w1"
    )

    assert stored(db, "e1")["state"] == "paused"
    assert claim(db, T0 + 100) == []


def test_resume_channel_releases_held_events_keeping_their_retries_and_due_times(db: Database) -> None:
    outbox.enqueue(db, [event("q1"), event("r1")], now=T0)
    by_key = {c.retry_key: c for c in claim(db, T0)}
    outbox.record(
        db,
        [
            result(
                by_key["key-welcome-r1"],
                EventState.RETRYING,
                now=T0,
                retries=2,
                status_code=503,
                next_attempt_at=T0 + 500,
            )
        ],
        worker="w1",
    )
    outbox.release(db, [by_key["key-welcome-q1"].id], worker="w1")
    pauses.pause_channel(db, CHANNEL, reason="quota", kind=PauseKind.QUOTA, now=T0 + 1)

    pauses.resume_channel(db, CHANNEL, now=T0 + 100)

    assert stored(db, "q1")["state"] == "queued"
    assert stored(db, "q1")["next_attempt_at"] == T0 + 100
    assert stored(db, "r1")["state"] == "retrying"
    assert stored(db, "r1")["next_attempt_at"] == T0 + 500  # a later due time is kept
    assert pauses.channels_paused_for(db, PauseKind.QUOTA) == []
    assert [c.retry_key for c in claim(db, T0 + 100)] == ["key-welcome-q1"]
    (r1,) = [c for c in claim(db, T0 + 500) if c.retry_key == "key-welcome-r1"]
    assert (r1.retry_key, r1.retries, r1.body) == ("key-welcome-r1", 2, by_key["key-welcome-r1"].body)
    assert outbox.enqueue(db, [event("n1")], now=T0 + 600) == ["queued"]


def test_resume_channel_leaves_a_hand_paused_activation_paused(db: Database) -> None:
    outbox.enqueue(db, [event("w1"), event("p1", "promo")], now=T0)
    pauses.pause_channel(db, CHANNEL, reason="quota", kind=PauseKind.QUOTA, now=T0)
    activations.pause(db, "promo", "by hand", now=T0)

    pauses.resume_channel(db, CHANNEL, now=T0 + 10)

    assert states(db, "welcome") == {"queued": 1}
    assert states(db, "promo") == {"paused": 1}


def test_pausing_twice_updates_the_reason(db: Database) -> None:
    pauses.pause_channel(db, CHANNEL, reason="first", kind=PauseKind.QUOTA, now=T0)
    pauses.pause_channel(db, CHANNEL, reason="second", kind=PauseKind.CREDENTIALS, now=T0 + 5)

    assert pauses.channels_paused_for(db, PauseKind.QUOTA) == []
    (row,) = pauses.channels_paused_for(db, PauseKind.CREDENTIALS)
    assert row["reason"] == "second"


# -- pending -----------------------------------------------------------------------------------


def test_pending_of_an_empty_outbox(db: Database) -> None:
    assert outbox.pending(db, now=T0) == outbox.Pending(0, None)


def test_pending_counts_unfinished_events_and_the_next_due_time(db: Database) -> None:
    outbox.enqueue(db, [event("a")], now=T0 + 30)
    outbox.enqueue(db, [event("b")], now=T0 + 10)
    outbox.enqueue(db, [event("f", recipient=None, body=None, error="Variable not found: x")], now=T0)

    assert outbox.pending(db, now=T0) == outbox.Pending(2, T0 + 10)


def test_pending_next_due_of_a_leased_event_is_its_lease_end(db: Database) -> None:
    outbox.enqueue(db, [event("a")], now=T0)
    claim(db, T0)

    assert outbox.pending(db, now=T0) == outbox.Pending(1, T0 + LEASE)
    assert outbox.pending(db, now=T0 + LEASE) == outbox.Pending(1, T0)


def test_pending_leaves_out_paused_and_finished_events(db: Database) -> None:
    outbox.enqueue(db, [event("a"), event("b"), event("c", "elsewhere")], now=T0)
    by_key = {c.retry_key: c for c in claim(db, T0)}
    outbox.record(db, [result(by_key["key-welcome-a"], EventState.DELIVERED, now=T0)], worker="w1")
    outbox.release(db, [by_key["key-welcome-b"].id, by_key["key-elsewhere-c"].id], worker="w1")
    pauses.pause_channel(db, CHANNEL, reason="quota", kind=PauseKind.QUOTA, now=T0)

    assert outbox.pending(db, now=T0) == outbox.Pending(1, T0)
