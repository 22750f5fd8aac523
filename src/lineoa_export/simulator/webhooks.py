"""The simulator's side of webhooks: ``POST /__sim/webhook`` sends signed follow / unfollow events
to a URL, like LINE does, with duplicates, redeliveries and reordering on demand.

Request body (JSON)::

    {"url": "http://127.0.0.1:8000/line/webhook/line", "channel_secret": "...",
     "events": [{"type": "unfollow", "user_id": "U…"}, {"type": "follow", "user_id": "U…", "timestamp": 1700000000000}],
     "duplicates": 1,          # send each request this many extra times (same webhookEventIds)
     "redelivery": false,      # mark the extra copies deliveryContext.isRedelivery = true
     "reverse": false,         # send the requests newest first (timestamps still decide)
     "one_request": false,     # all events in one request instead of one request per event
     "signature": "valid"}     # or "wrong" / "missing", to see the receiver refuse them

Answer: ``{"requests": [{"status": 200, "webhook_event_ids": [...]}, ...]}``. Timestamps default to
the simulator's clock, one millisecond apart in the order given. The simulator also keeps the follow
state it announced, and counts pushes it accepts to users it last told were blocked
(``pushes_to_blocked`` in ``/__sim/stats``): what suppression saves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field

from lineoa_export.simulator.record import Record


class WebhookEventSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["follow", "unfollow"]
    user_id: str = Field(pattern=r"^U[0-9a-f]{32}$")
    timestamp: int | None = Field(default=None, ge=0)


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://")
    channel_secret: str = Field(min_length=1)
    events: list[WebhookEventSpec] = Field(default_factory=list, max_length=1000)
    duplicates: int = Field(default=0, ge=0, le=10)
    redelivery: bool = False
    reverse: bool = False
    one_request: bool = False
    signature: Literal["valid", "wrong", "missing"] = "valid"
    destination: str = "U" + "0" * 32


def _event_id() -> str:
    # LINE's webhookEventId is a ULID (26 characters of Crockford base32).
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def _event(spec: WebhookEventSpec, timestamp: int, redelivery: bool) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": spec.type,
        "mode": "active",
        "timestamp": timestamp,
        "source": {"type": "user", "userId": spec.user_id},
        "webhookEventId": _event_id(),
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if spec.type == "follow":
        event["replyToken"] = secrets.token_hex(16)
        event["follow"] = {"isUnblocked": False}
    return event


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def plan(spec: WebhookRequest, now_ms: int) -> list[list[dict[str, Any]]]:
    """The request bodies' event lists, in sending order (copies included)."""
    events = [
        _event(e, e.timestamp if e.timestamp is not None else now_ms + i, False) for i, e in enumerate(spec.events)
    ]
    groups = [events] if spec.one_request or not events else [[e] for e in events]
    if spec.reverse:
        groups.reverse()
    sent: list[list[dict[str, Any]]] = []
    for group in groups:
        sent.append(group)
        for _ in range(spec.duplicates):
            copies = [{**e, "deliveryContext": {"isRedelivery": spec.redelivery}} for e in group]
            sent.append(copies)
    return sent


def _headers(spec: WebhookRequest, body: bytes) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if spec.signature == "valid":
        headers["x-line-signature"] = signature(spec.channel_secret, body)
    elif spec.signature == "wrong":
        headers["x-line-signature"] = signature(spec.channel_secret + "-not", body)
    return headers


async def send(spec: WebhookRequest, now_ms: int, record: Record) -> list[dict[str, Any]]:
    """Send the planned requests one after another; note the follow state announced."""
    results: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        for group in plan(spec, now_ms):
            body = orjson.dumps({"destination": spec.destination, "events": group})
            try:
                async with session.post(spec.url, data=body, headers=_headers(spec, body)) as answer:
                    status: int | None = answer.status
            except (aiohttp.ClientError, TimeoutError) as error:
                status = None
                results.append({"status": None, "error": type(error).__name__, "webhook_event_ids": []})
            if status is not None:
                results.append({"status": status, "webhook_event_ids": [e["webhookEventId"] for e in group]})
            if status == 200:
                for event in group:
                    record.note_follow(event["source"]["userId"], event["type"] == "follow", event["timestamp"])
    return results
