"""``POST /v1/activations/{name}/triggers`` (role ``trigger``): events in, 202 once they are durable."""

from __future__ import annotations

from fastapi import APIRouter

from ...errors import InvalidInput
from .bodies import TriggerIn, TriggerOut
from .deps import Ops, Triggerer

router = APIRouter(prefix="/v1/activations", tags=["triggers"])


@router.post("/{name}/triggers", status_code=202)
def trigger(name: str, body: TriggerIn, ops: Ops, _: Triggerer) -> TriggerOut:
    if (body.event is None) == (body.events is None):
        raise InvalidInput.single("body", "give exactly one of 'event' or 'events'")
    triggered = ops.trigger(name, [body.event] if body.event is not None else (body.events or []))
    return TriggerOut(results=[r.public() for r in triggered.results], counts=triggered.counts)
