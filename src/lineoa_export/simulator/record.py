"""What the simulator saw and accepted: the ground truth tests and benchmarks assert on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class AcceptedPush:
    """One push LINE accepted (answered 200, or accepted and then lost the answer)."""

    request_id: str
    channel_id: str
    to: str
    retry_key: str | None
    sent_message_ids: tuple[str, ...]
    #: Quote token per sent message; ``None`` for message types that cannot be quoted.
    quote_tokens: tuple[str | None, ...]
    body: bytes
    monotonic: float
    wall: float
    #: The ``customAggregationUnits`` name LINE kept (None: none given, or dropped past the budget).
    aggregation_unit: str | None = None

    def sent_messages(self) -> list[dict[str, str]]:
        """The ``sentMessages`` array of the 200 answer."""
        out: list[dict[str, str]] = []
        for mid, quote in zip(self.sent_message_ids, self.quote_tokens, strict=True):
            out.append({"id": mid} if quote is None else {"id": mid, "quoteToken": quote})
        return out

    def to_json(self, *, body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "push",
            "request_id": self.request_id,
            "channel_id": self.channel_id,
            "to": self.to,
            "retry_key": self.retry_key,
            "sent_messages": self.sent_messages(),
            "monotonic": self.monotonic,
            "wall": self.wall,
            "aggregation_unit": self.aggregation_unit,
        }
        if body:
            out["body"] = _body_json(self.body)
        return out


@dataclass(frozen=True, slots=True)
class AcceptedMulticast:
    """One multicast LINE accepted."""

    request_id: str
    channel_id: str
    to: tuple[str, ...]
    retry_key: str | None
    body: bytes
    monotonic: float
    wall: float

    def to_json(self, *, body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "multicast",
            "request_id": self.request_id,
            "channel_id": self.channel_id,
            "to": list(self.to),
            "retry_key": self.retry_key,
            "monotonic": self.monotonic,
            "wall": self.wall,
        }
        if body:
            out["body"] = _body_json(self.body)
        return out


Accepted = AcceptedPush | AcceptedMulticast


def _body_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def max_in_window(times: list[float], seconds: float) -> int:
    """Most of ``times`` inside any half-open window ``[t, t + seconds)``."""
    ordered = sorted(times)
    best = 0
    left = 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= seconds:
            left += 1
        best = max(best, right - left + 1)
    return best


class Record:
    """Accepted requests and counters. Retry keys are remembered per channel."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (accepted requests, counters, retry keys, quota usage)."""
        self.accepted: list[AcceptedPush] = []
        self.multicasts: list[AcceptedMulticast] = []
        #: endpoint name → status code → requests answered with it.
        self.status_by_endpoint: dict[str, Counter[int]] = {}
        self.accepted_per_recipient: Counter[str] = Counter()
        #: Messages counted against each channel's monthly quota (one per recipient).
        self.usage_by_channel: Counter[str] = Counter()
        self.duplicates_suppressed = 0
        self.key_body_mismatches = 0
        self.dropped = 0
        self.hung = 0
        #: Users whose last webhook event (by timestamp) sent by /__sim/webhook was an unfollow.
        self.blocked: set[str] = set()
        self._follow_stamps: dict[str, int] = {}
        self.pushes_to_blocked = 0
        self._accepted_by_key: dict[tuple[str, str], Accepted] = {}
        self._bodies_by_key: dict[tuple[str, str], list[bytes]] = {}
        #: (channel id, month ``YYYY-MM`` in UTC+9) → unit names in first-use order.
        self._units: dict[tuple[str, str], dict[str, None]] = {}
        #: Units LINE dropped because the channel's month had no room left (the push still went).
        self.units_dropped = 0

    # -- recording (hot path) -------------------------------------------------------------------

    def count_status(self, endpoint: str, status: int) -> None:
        counter = self.status_by_endpoint.get(endpoint)
        if counter is None:
            counter = self.status_by_endpoint[endpoint] = Counter()
        counter[status] += 1

    def note_key_body(self, channel_id: str, retry_key: str, body: bytes) -> bool:
        """Remember a body sent with a retry key; True (and counted) if it differs from the first."""
        key = (channel_id, retry_key)
        bodies = self._bodies_by_key.get(key)
        if bodies is None:
            self._bodies_by_key[key] = [body]
            return False
        if body == bodies[0]:
            return False
        if body not in bodies:
            bodies.append(body)
        self.key_body_mismatches += 1
        return True

    def accepted_for_key(self, channel_id: str, retry_key: str) -> Accepted | None:
        return self._accepted_by_key.get((channel_id, retry_key))

    def note_follow(self, user_id: str, following: bool, timestamp_ms: int) -> None:
        if self._follow_stamps.get(user_id, -1) >= timestamp_ms:
            return
        self._follow_stamps[user_id] = timestamp_ms
        if following:
            self.blocked.discard(user_id)
        else:
            self.blocked.add(user_id)

    def add_push(self, push: AcceptedPush) -> None:
        if push.to in self.blocked:
            self.pushes_to_blocked += 1  # LINE answers 200, and nobody reads it
        self.accepted.append(push)
        self.accepted_per_recipient[push.to] += 1
        self.usage_by_channel[push.channel_id] += 1
        if push.retry_key is not None:
            self._accepted_by_key[(push.channel_id, push.retry_key)] = push

    def add_multicast(self, multicast: AcceptedMulticast) -> None:
        self.multicasts.append(multicast)
        self.accepted_per_recipient.update(multicast.to)
        self.usage_by_channel[multicast.channel_id] += len(multicast.to)
        if multicast.retry_key is not None:
            self._accepted_by_key[(multicast.channel_id, multicast.retry_key)] = multicast

    def use_unit(self, channel_id: str, month: str, unit: str, *, prior: int, limit: int) -> bool:
        """Count ``unit`` as used this month; False (and dropped) when the month is full."""
        names = self._units.setdefault((channel_id, month), {})
        if unit in names:
            return True
        if prior + len(names) >= limit:
            self.units_dropped += 1
            return False
        names[unit] = None
        return True

    # -- reading --------------------------------------------------------------------------------

    @property
    def accepted_total(self) -> int:
        """Accepted pushes plus accepted multicasts (requests, not recipients)."""
        return len(self.accepted) + len(self.multicasts)

    def bodies_for_key(self, retry_key: str, channel_id: str | None = None) -> list[bytes]:
        """Distinct bodies seen with a retry key (first one first)."""
        out: list[bytes] = []
        for (cid, key), bodies in self._bodies_by_key.items():
            if key == retry_key and (channel_id is None or cid == channel_id):
                out.extend(bodies)
        return out

    def units_in_month(self, channel_id: str, month: str) -> list[str]:
        """Unit names first used on a channel in a month (UTC+9), in first-use order."""
        return list(self._units.get((channel_id, month), ()))

    def pushes_to(self, recipient: str) -> list[AcceptedPush]:
        return [p for p in self.accepted if p.to == recipient]

    @property
    def requests_by_status(self) -> Counter[int]:
        total: Counter[int] = Counter()
        for counter in self.status_by_endpoint.values():
            total.update(counter)
        return total

    def max_accepted_in_any_window(self, seconds: float = 1.0) -> int:
        """Most pushes accepted within any ``seconds``-long window (the rate LINE saw)."""
        return max_in_window([p.monotonic for p in self.accepted], seconds)

    def stats(self, *, recipients: bool = False) -> dict[str, Any]:
        """A JSON-able summary."""
        out: dict[str, Any] = {
            "accepted_total": self.accepted_total,
            "accepted_pushes": len(self.accepted),
            "accepted_multicasts": len(self.multicasts),
            "duplicates_suppressed": self.duplicates_suppressed,
            "key_body_mismatches": self.key_body_mismatches,
            "dropped": self.dropped,
            "hung": self.hung,
            "distinct_recipients": len(self.accepted_per_recipient),
            "max_accepted_per_recipient": max(self.accepted_per_recipient.values(), default=0),
            "max_accepted_in_any_1s_window": self.max_accepted_in_any_window(1.0),
            "requests_by_status": {str(k): v for k, v in sorted(self.requests_by_status.items()) if v},
            "requests_by_endpoint": {
                endpoint: {str(k): v for k, v in sorted(counter.items()) if v}
                for endpoint, counter in sorted(self.status_by_endpoint.items())
            },
            "quota_usage": dict(self.usage_by_channel),
            "aggregation_units_dropped": self.units_dropped,
            "blocked_users": len(self.blocked),
            "pushes_to_blocked": self.pushes_to_blocked,
        }
        if recipients:
            out["accepted_per_recipient"] = dict(self.accepted_per_recipient)
        return out
