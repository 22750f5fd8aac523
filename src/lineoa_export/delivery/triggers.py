"""A trigger: events for an activation, rendered and put in the outbox.

Each event is a JSON object of profile attributes. Its id is its ``event_id`` field when
present (the same id for the same activation is accepted once), else a new UUID. An
event that cannot be rendered is stored as failed at once, with the reason, so the
activation table shows it; only input that is not an event at all is refused, and so is an
``event_id`` over :data:`MAX_EVENT_ID_LENGTH` characters (cut short, it could be taken for
another event's id and dropped as a duplicate).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .. import activations
from ..errors import FieldProblem, InvalidInput
from ..naming import is_valid_unicode, storable
from ..store.database import Database
from .outbox import NewEvent, enqueue

MAX_EVENT_ID_LENGTH = 200
Status = Literal["accepted", "paused", "duplicate", "failed"]


@dataclass(frozen=True, slots=True)
class TriggerResult:
    event_id: str
    status: Status
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "status": self.status, "error": self.error}


def event_id_of(event: Mapping[str, Any]) -> str:
    given = event.get("event_id")
    if given is None or given == "":
        return uuid.uuid4().hex
    # A number or other JSON value is used as its JSON text (true, not Python's True).
    return given if isinstance(given, str) else json.dumps(given, ensure_ascii=False, separators=(",", ":"))


def check_event_ids(events: list[dict[str, Any]]) -> None:
    """InvalidInput naming each event whose id is too long; nothing of the request is stored then."""
    problems = [
        FieldProblem(f"events[{i}].event_id", f"at most {MAX_EVENT_ID_LENGTH} characters (got {len(event_id)})")
        for i, event in enumerate(events)
        if len(event_id := event_id_of(event)) > MAX_EVENT_ID_LENGTH
    ]
    if problems:
        raise InvalidInput(problems)


def prepare(activation: activations.Activation, compiled: activations.Compiled, event: dict[str, Any]) -> NewEvent:
    """Render one event. Never raises for a bad event: the failure travels in ``error``."""
    event_id = event_id_of(event)
    # The key is fixed now, before the first attempt, and never changes (LINE-FACTS).
    retry_key = str(uuid.uuid4())
    if not is_valid_unicode(event_id):
        # Stored under a readable form of the id, so the event is recorded rather than lost.
        return NewEvent(
            activation.name,
            storable(event_id),
            activation.channel_key,
            None,
            None,
            retry_key,
            "event_id: text that cannot be stored (a lone surrogate or a NUL character)",
        )
    try:
        recipient, body = compiled.render(event)
    except activations.RenderError as exc:
        recipient_shown = storable(exc.recipient) if exc.recipient is not None else None
        return NewEvent(
            activation.name, event_id, activation.channel_key, recipient_shown, None, retry_key, storable(str(exc))
        )
    except RecursionError:
        return NewEvent(
            activation.name,
            event_id,
            activation.channel_key,
            None,
            None,
            retry_key,
            "event: a value is nested too deeply to render",
        )
    return NewEvent(
        activation.name,
        event_id,
        activation.channel_key,
        recipient,
        body,
        retry_key,
        aggregation_unit=activation.spec.aggregation_unit,
        time_zone=_zone_of(activation.spec, event),
    )


def _zone_of(spec: activations.ActivationSpec, event: dict[str, Any]) -> str | None:
    """The recipient's own zone, when the activation reads one from its events (checked when used)."""
    if spec.time_zone_attribute is None or spec.quiet_hours is None:
        return None
    value = event.get(spec.time_zone_attribute)
    return value if isinstance(value, str) and 0 < len(value) <= 64 and is_valid_unicode(value) else None


def accept(db: Database, activation_name: str, events: Iterable[dict[str, Any]], *, now: float) -> list[TriggerResult]:
    """Render and store ``events`` durably; returns one result per event, in order."""
    activation = activations.get(db, activation_name)
    events = list(events)
    check_event_ids(events)
    compiled = activations.compile_spec(activation.spec)
    prepared = [prepare(activation, compiled, e) for e in events]
    states = enqueue(db, prepared, now=now)
    return [_result(p, s) for p, s in zip(prepared, states, strict=True)]


def _result(event: NewEvent, state: str | None) -> TriggerResult:
    if state is None:
        return TriggerResult(event.event_id, "duplicate")
    if event.error is not None:
        return TriggerResult(event.event_id, "failed", event.error)
    return TriggerResult(event.event_id, "paused" if state == "paused" else "accepted")
