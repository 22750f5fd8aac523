"""LINE webhook requests: signature check, parsing into follow facts, and folding them.

Owns what a webhook body means for follower state. Its one rule: the signature is checked
on the raw bytes before anything is parsed, and a user's state is decided by the newest
``timestamp`` seen, never by arrival order; every ``webhookEventId`` counts once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class WebhookBodyError(ValueError):
    """A signed body that is not LINE's webhook JSON."""


@dataclass(frozen=True)
class FollowFact:
    webhook_event_id: str
    user_id: str
    following: bool
    timestamp_ms: int
    redelivery: bool


def signature_for(channel_secret: str, body: bytes) -> str:
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_is_valid(channel_secret: str, body: bytes, header: str | None) -> bool:
    if not header or not channel_secret:
        return False
    expected = signature_for(channel_secret, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))


def follow_facts(body: bytes) -> list[FollowFact]:
    """The follow / unfollow events of a body from users; other events are ignored."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookBodyError(f"body: not JSON ({error})") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise WebhookBodyError("events: missing or not a list")
    return [fact for fact in map(_fact, events) if fact is not None]


def _fact(event: object) -> FollowFact | None:
    if not isinstance(event, dict) or event.get("type") not in ("follow", "unfollow"):
        return None
    source = event.get("source")
    user = source.get("userId") if isinstance(source, dict) else None
    event_id, stamp = event.get("webhookEventId"), event.get("timestamp")
    if not isinstance(user, str) or not isinstance(event_id, str):
        return None
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        return None
    context = event.get("deliveryContext")
    redelivery = bool(context.get("isRedelivery")) if isinstance(context, dict) else False
    return FollowFact(event_id, user, event["type"] == "follow", stamp, redelivery)


@dataclass
class FollowerState:
    following: bool
    changed_at_ms: int


def fold(state: dict[str, FollowerState], seen: set[str], facts: list[FollowFact]) -> list[FollowFact]:
    """Apply facts in place (newest timestamp wins, each event id once); returns those applied."""
    applied = []
    for fact in facts:
        if fact.webhook_event_id in seen:
            continue
        seen.add(fact.webhook_event_id)
        current = state.get(fact.user_id)
        if current is not None and current.changed_at_ms >= fact.timestamp_ms:
            continue
        state[fact.user_id] = FollowerState(fact.following, fact.timestamp_ms)
        applied.append(fact)
    return applied
