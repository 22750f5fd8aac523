"""The simulator's HTTP app: LINE's Messaging API endpoints as LINE answers them, plus ``/__sim/``.

LINE endpoints (answers and messages as in LINE-FACTS; every answer carries ``x-line-request-id``):

- ``POST /v2/bot/message/push``, ``POST /v2/bot/message/multicast``,
  ``POST /v2/bot/message/validate/push``, ``GET /v2/bot/info``, ``GET /v2/bot/message/quota``,
  ``GET /v2/bot/message/quota/consumption``, ``POST /oauth2/v3/token``, ``POST /v2/oauth/verify``.
- What LINE tells afterwards (derived from what was accepted; see ``insight.py``):
  ``GET /v2/bot/message/aggregation/info`` and ``/list`` (units used this month, UTC+9),
  ``GET /v2/bot/insight/message/event/aggregation`` (statistics per unit, nulls under 20, 60 an
  hour per channel), ``GET /v2/bot/message/delivery/push?date=`` (pushes per UTC+9 day,
  ``unready`` until the day is over). A push's unit past the month's 1,000 is dropped silently.

Control endpoints: ``GET /__sim/stats``, ``GET /__sim/accepted[?bodies=1]``,
``PATCH /__sim/options`` (JSON merge patch), ``POST /__sim/revoke``, ``POST /__sim/reset``,
``POST /__sim/webhook`` (signed follow / unfollow events sent to a URL; see webhooks.py).

A push is checked in the order LINE would: authentication (401), account (403), the channel's
token bucket (429 rate limit), then random faults or the recipient's script, then the body (415,
413, retry-key header, JSON, message validation: 400), then the retry key (409), then the monthly
quota (429 monthly limit). Only then is it accepted: 200, recorded, quota used, key used up.

The push handler is the benchmark's hot path: no logging, no pydantic models, no regex compiled,
orjson for JSON, constant answers prebuilt as bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

import orjson
from aiohttp import web
from pydantic import ValidationError

from lineoa_export.errors import FieldProblem
from lineoa_export.line_messages import validate_messages, validate_push_request
from lineoa_export.line_time import line_month
from lineoa_export.simulator import insight
from lineoa_export.simulator.bucket import TokenBucket
from lineoa_export.simulator.options import (
    ChannelConfig,
    SimulatorOptions,
    apply_in_place,
    merge_patch,
)
from lineoa_export.simulator.record import AcceptedMulticast, AcceptedPush, Record
from lineoa_export.simulator.webhooks import WebhookRequest, send

__all__ = [
    "MAX_BODY_BYTES",
    "SimState",
    "create_app",
    "get_options",
    "get_record",
    "get_state",
]

MAX_BODY_BYTES: Final = 2 * 1024 * 1024
MAX_MULTICAST_RECIPIENTS: Final = 500
#: Long-lived tokens have no expiry; verify reports this many seconds for them.
LONG_LIVED_EXPIRES_IN: Final = 10 * 365 * 24 * 3600

# Endpoint names, as used in Record.status_by_endpoint and the stats.
PUSH: Final = "push"
MULTICAST: Final = "multicast"
VALIDATE_PUSH: Final = "validate_push"
BOT_INFO: Final = "bot_info"
QUOTA: Final = "quota"
QUOTA_CONSUMPTION: Final = "quota_consumption"
TOKEN: Final = "token"
VERIFY: Final = "verify"
AGGREGATION_INFO: Final = "aggregation_info"
AGGREGATION_LIST: Final = "aggregation_list"
UNIT_STATISTICS: Final = "unit_statistics"
PUSH_COUNT: Final = "push_count"
#: LINE's budget for the statistics endpoint: 60 requests an hour per channel.
STATISTICS_PER_HOUR: Final = 60

# LINE's messages (the message text is the only way a client can tell two 429s apart).
MSG_AUTH: Final = "Authentication failed. Confirm that the access token in the authorization header is valid."
MSG_FORBIDDEN: Final = "Access to this API is not available for your account"
MSG_RATE: Final = "The API rate limit has been exceeded. Try again later."
MSG_MONTHLY: Final = "You have reached your monthly limit."
MSG_FAILED: Final = "Failed to send messages"
MSG_RETRY_KEY_INVALID: Final = "The value for the 'X-Line-Retry-Key' header is invalid"
MSG_RETRY_KEY_UNSUPPORTED: Final = "The 'X-Line-Retry-Key' header is not supported for this API"
MSG_KEY_ACCEPTED: Final = "The retry key is already accepted"
MSG_TOO_LARGE: Final = "Request Entity Too Large"
MSG_MEDIA_TYPE: Final = "Unsupported Media Type"

_SERVER_ERRORS: Final[dict[int, str]] = {
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

#: Message types LINE gives a quote token when pushed.
_QUOTABLE: Final = frozenset({"text", "textV2", "sticker", "image", "video"})
_HEX: Final = frozenset("0123456789abcdef")


def _message_body(message: str) -> bytes:
    return orjson.dumps({"message": message})


_BODY_AUTH: Final = _message_body(MSG_AUTH)
_BODY_FORBIDDEN: Final = _message_body(MSG_FORBIDDEN)
_BODY_RATE: Final = _message_body(MSG_RATE)
_BODY_MONTHLY: Final = _message_body(MSG_MONTHLY)
_BODY_RETRY_KEY_INVALID: Final = _message_body(MSG_RETRY_KEY_INVALID)
_BODY_RETRY_KEY_UNSUPPORTED: Final = _message_body(MSG_RETRY_KEY_UNSUPPORTED)
_BODY_TOO_LARGE: Final = _message_body(MSG_TOO_LARGE)
_BODY_MEDIA_TYPE: Final = _message_body(MSG_MEDIA_TYPE)
_BODY_EMPTY: Final = b"{}"


def status_body(status: int) -> bytes:
    """The body LINE answers a given error status with (used by scripts and random faults)."""
    if status == 400:
        return _message_body(MSG_FAILED)
    if status == 401:
        return _BODY_AUTH
    if status == 403:
        return _BODY_FORBIDDEN
    if status == 429:
        return _BODY_RATE
    text = _SERVER_ERRORS.get(status)
    if text is None:
        text = HTTPStatus(status).phrase
    return _message_body(text)


def details_body(problems: list[FieldProblem]) -> bytes:
    """``{"message":"The request body has N error(s)","details":[...]}``."""
    return orjson.dumps(
        {
            "message": f"The request body has {len(problems)} error(s)",
            "details": [{"message": p.reason, "property": p.path} for p in problems],
        }
    )


def _is_uuid(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_user_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 33 and value[0] == "U" and _HEX.issuperset(value[1:])


@dataclass(slots=True)
class MintedToken:
    channel_id: str
    expires_at: float


class SimState:
    """The simulator's mutable state: options (live), record, buckets, minted tokens, faults."""

    def __init__(
        self,
        options: SimulatorOptions,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.record = Record()
        self.clock = clock
        self.monotonic = monotonic
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self.hourly: dict[tuple[str, str], TokenBucket] = {}
        self.minted: dict[str, MintedToken] = {}
        self.rng = random.Random(options.seed)
        self._rng_seed = options.seed
        self.closing = asyncio.Event()
        self._request_prefix = str(uuid.uuid4())[:24]
        self._request_counter = itertools.count(1)
        self._message_counter = itertools.count(random.randrange(10**17, 5 * 10**17))
        self._quote_salt = secrets.token_urlsafe(18)

    # -- ids ------------------------------------------------------------------------------------

    def request_id(self) -> str:
        """A fresh, UUID-shaped request id (unique within this simulator)."""
        return f"{self._request_prefix}{next(self._request_counter):012x}"

    def message_id(self) -> str:
        return str(next(self._message_counter))

    def quote_token(self, message_id: str) -> str:
        return f"{self._quote_salt}{message_id}"

    # -- auth, buckets, faults ------------------------------------------------------------------

    def authenticate(self, header: str | None) -> ChannelConfig | None:
        """The channel a ``Bearer`` authorization header belongs to, or None (→ 401)."""
        if header is None or len(header) < 8 or header[:7].lower() != "bearer ":
            return None
        token = header[7:].strip()
        minted = self.minted.get(token)
        if minted is not None:
            if minted.expires_at <= self.clock():
                return None
            return self.options.channel(minted.channel_id)
        for channel in self.options.channels:
            if token in channel.access_tokens:
                return channel
        return None

    def take(self, channel_id: str, endpoint: str, rate: float, burst: float) -> bool:
        key = (channel_id, endpoint)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(rate, burst, self.monotonic)
        elif bucket.rate != rate or bucket.burst != burst:
            bucket.reconfigure(rate, burst)
        return bucket.try_take()

    def take_hourly(self, channel_id: str, endpoint: str, per_hour: float) -> bool:
        """A request of an endpoint LINE allows ``per_hour`` an hour per channel. Timed by the wall
        clock (``clock``): LINE's hour is one of the calendar, and tests move it with a fake clock."""
        key = (channel_id, endpoint)
        bucket = self.hourly.get(key)
        if bucket is None:
            bucket = self.hourly[key] = TokenBucket(per_hour / 3600.0, per_hour, self.clock)
        return bucket.try_take()

    def draw_fault(self) -> int | str | None:
        """At most one random fault for this request, or None."""
        o = self.options
        if o.fault_total <= 0.0:
            return None
        if o.seed != self._rng_seed:
            self.rng = random.Random(o.seed)
            self._rng_seed = o.seed
        r = self.rng.random()
        for p, fault in (
            (o.drop_probability, "drop"),
            (o.hang_probability, "hang"),
            (o.fault_rate_429, 429),
            (o.fault_500, 500),
            (o.fault_502, 502),
            (o.fault_503, 503),
            (o.fault_504, 504),
        ):
            if r < p:
                return fault
            r -= p
        return None

    def kept_unit(self, channel: ChannelConfig, unit: str, wall: float) -> str | None:
        """``unit`` when the channel's month has room for it (or already has it); LINE drops it silently otherwise."""
        month = line_month(wall)
        kept = self.record.use_unit(
            channel.channel_id, month, unit, prior=channel.prior_aggregation_units, limit=insight.MONTHLY_UNITS
        )
        return unit if kept else None

    def quota_usage(self, channel: ChannelConfig) -> int:
        return channel.initial_usage + self.record.usage_by_channel[channel.channel_id]

    def quota_allows(self, channel: ChannelConfig, messages: int) -> bool:
        return channel.quota is None or self.quota_usage(channel) + messages <= channel.quota

    # -- answers --------------------------------------------------------------------------------

    def answer(
        self,
        endpoint: str,
        status: int,
        body: bytes,
        request_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> web.Response:
        self.record.count_status(endpoint, status)
        headers = {
            "Content-Type": "application/json",
            "x-line-request-id": request_id or self.request_id(),
        }
        if extra:
            headers.update(extra)
        return web.Response(status=status, body=body, headers=headers)

    async def wait_or_close(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the simulator shuts down."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    async def misbehave(self, request: web.Request, endpoint: str, fault: int | str) -> web.Response:
        """Answer a scripted or random fault. Never accepts, never uses a retry key up."""
        if fault == "drop":
            self.record.dropped += 1
            return drop(request)
        if fault == "hang":
            self.record.hung += 1
            await self.wait_or_close(self.options.hang_seconds)
            return drop(request)
        if fault == "monthly":
            return self.answer(endpoint, 429, _BODY_MONTHLY)
        assert isinstance(fault, int)
        return self.answer(endpoint, fault, status_body(fault))

    async def channel_fault(self, request: web.Request, endpoint: str, channel: ChannelConfig) -> web.Response | None:
        """The channel's own latency and faults (one OA sick while the others are well)."""
        if channel.latency_ms:
            await asyncio.sleep(channel.latency_ms / 1000.0)
        if channel.hang:
            return await self.misbehave(request, endpoint, "hang")
        if channel.fail_status is not None:
            return await self.misbehave(request, endpoint, channel.fail_status)
        return None

    def reset(self) -> None:
        """Forget the record, refill buckets, forget minted tokens, reseed faults."""
        self.record.reset()
        self.buckets.clear()
        self.hourly.clear()
        self.minted.clear()
        self.rng = random.Random(self.options.seed)
        self._rng_seed = self.options.seed


def drop(request: web.Request) -> web.Response:
    """Close the connection without an answer. The returned response is never sent: aiohttp
    finds the transport closed and takes it as a premature disconnection (no log above debug)."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=599)


STATE_KEY: Final = web.AppKey("lineoa_simulator_state", SimState)


def get_state(app: web.Application) -> SimState:
    return app[STATE_KEY]


def get_record(app: web.Application) -> Record:
    return app[STATE_KEY].record


def get_options(app: web.Application) -> SimulatorOptions:
    return app[STATE_KEY].options


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problem(path: str, reason: str) -> list[FieldProblem]:
    return [FieldProblem(path, reason)]


def _bad_json_body() -> bytes:
    return details_body(_problem("", "The request body must be valid JSON"))


def _content_type_ok(request: web.Request) -> bool:
    return request.content_type == "application/json"


# ---------------------------------------------------------------------------------------------
# Sending endpoints


async def _send_gate(
    st: SimState, request: web.Request, endpoint: str, *, multicast: bool
) -> ChannelConfig | web.StreamResponse:
    """Latency, credentials, the rate limit and per-channel faults: what a send meets first."""
    if st.options.latency_ms > 0.0:
        await asyncio.sleep(st.options.latency_ms / 1000.0)
    channel = st.authenticate(request.headers.get("Authorization"))
    if channel is None:
        return st.answer(endpoint, 401, _BODY_AUTH)
    if channel.forbidden:
        return st.answer(endpoint, 403, _BODY_FORBIDDEN)
    if multicast:
        rate = burst = channel.multicast_rate_per_second
    else:
        rate, burst = channel.rate_limit_per_second, channel.effective_burst
    if not st.take(channel.channel_id, endpoint, rate, burst):
        return st.answer(endpoint, 429, _BODY_RATE)
    channel_fault = await st.channel_fault(request, endpoint, channel)
    return channel if channel_fault is None else channel_fault


def _body_refusal(
    st: SimState, request: web.Request, endpoint: str, body: bytes, retry_key: str | None
) -> web.Response | None:
    """The answer to a body LINE refuses before reading it as JSON, or None."""
    if not _content_type_ok(request):
        return st.answer(endpoint, 415, _BODY_MEDIA_TYPE)
    if len(body) > MAX_BODY_BYTES:
        return st.answer(endpoint, 413, _BODY_TOO_LARGE)
    if retry_key is not None and not _is_uuid(retry_key):
        return st.answer(endpoint, 400, _BODY_RETRY_KEY_INVALID)
    return None


def _already_accepted(st: SimState, endpoint: str, channel_id: str, retry_key: str | None) -> web.Response | None:
    """409 when this retry key was accepted before (with the first answer's sent messages for a push)."""
    if retry_key is None:
        return None
    earlier = st.record.accepted_for_key(channel_id, retry_key)
    if earlier is None:
        return None
    st.record.duplicates_suppressed += 1
    answer: dict[str, Any] = {"message": MSG_KEY_ACCEPTED}
    if endpoint == PUSH and isinstance(earlier, AcceptedPush):
        answer["sentMessages"] = earlier.sent_messages()
    return st.answer(endpoint, 409, orjson.dumps(answer), extra={"x-line-accepted-request-id": earlier.request_id})


@dataclass
class _Scripted:
    """What a recipient's script says to do with this push, and its body parsed on the way."""

    action: int | str | None = None
    parsed: Any = None
    parse_failed: bool = False
    checked: bool = False


def _scripted(st: SimState, body: bytes) -> _Scripted:
    """The recipient's script first, else a random draw of the configured faults."""
    scripted = _Scripted()
    script = st.options.script
    if script:
        scripted.checked = True
        try:
            scripted.parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            scripted.parse_failed = True
        else:
            parsed = scripted.parsed
            to = parsed.get("to") if isinstance(parsed, dict) else None
            entries = script.get(to) if isinstance(to, str) else None
            if entries:
                scripted.action = entries.pop(0)
    if scripted.action is None:
        scripted.action = st.draw_fault()
    return scripted


def _accept_push(st: SimState, channel: ChannelConfig, parsed: Any, retry_key: str | None, body: bytes) -> web.Response:
    request_id = st.request_id()
    ids: list[str] = []
    quotes: list[str | None] = []
    sent: list[dict[str, str]] = []
    for message in parsed["messages"]:
        mid = st.message_id()
        ids.append(mid)
        if message.get("type") in _QUOTABLE:
            quote = st.quote_token(mid)
            quotes.append(quote)
            sent.append({"id": mid, "quoteToken": quote})
        else:
            quotes.append(None)
            sent.append({"id": mid})
    wall = st.clock()
    units = parsed.get("customAggregationUnits")
    st.record.add_push(
        AcceptedPush(
            request_id=request_id,
            channel_id=channel.channel_id,
            to=parsed["to"],
            retry_key=retry_key,
            sent_message_ids=tuple(ids),
            quote_tokens=tuple(quotes),
            body=body,
            monotonic=st.monotonic(),
            wall=wall,
            aggregation_unit=st.kept_unit(channel, units[0], wall) if units else None,
        )
    )
    return st.answer(PUSH, 200, orjson.dumps({"sentMessages": sent}), request_id)


def _process_push(
    st: SimState, request: web.Request, channel: ChannelConfig, body: bytes, retry_key: str | None, scripted: _Scripted
) -> web.Response:
    """What LINE answers a push that no fault interrupted."""
    refusal = _body_refusal(st, request, PUSH, body, retry_key)
    if refusal is not None:
        return refusal
    parsed, parse_failed = scripted.parsed, scripted.parse_failed
    if not scripted.checked:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parse_failed = True
    if parse_failed:
        return st.answer(PUSH, 400, _bad_json_body())
    problems = validate_push_request(parsed)
    if problems:
        return st.answer(PUSH, 400, details_body(problems))
    duplicate = _already_accepted(st, PUSH, channel.channel_id, retry_key)
    if duplicate is not None:
        return duplicate
    if not st.quota_allows(channel, 1):
        return st.answer(PUSH, 429, _BODY_MONTHLY)
    return _accept_push(st, channel, parsed, retry_key, body)


def _make_push(st: SimState) -> Handler:
    record = st.record

    async def push(request: web.Request) -> web.StreamResponse:
        gate = await _send_gate(st, request, PUSH, multicast=False)
        if not isinstance(gate, ChannelConfig):
            return gate
        body = await request.read()
        retry_key = request.headers.get("X-Line-Retry-Key")
        if retry_key is not None:
            record.note_key_body(gate.channel_id, retry_key, body)
        scripted = _scripted(st, body)
        if scripted.action is not None and scripted.action != "accept-then-drop":
            return await st.misbehave(request, PUSH, scripted.action)
        response = _process_push(st, request, gate, body, retry_key, scripted)
        if scripted.action == "accept-then-drop":
            # LINE processed the push (accepted it, most likely) but its answer never arrives:
            # requests_by_status counts answers sent, so this one is counted as dropped only.
            record.status_by_endpoint[PUSH][response.status] -= 1
            record.dropped += 1
            return drop(request)
        return response

    return push


def _multicast_problems(parsed: object) -> list[FieldProblem]:
    if not isinstance(parsed, dict):
        return _problem("", "request body must be a JSON object")
    problems: list[FieldProblem] = []
    to = parsed.get("to")
    if to is None:
        problems.append(FieldProblem("to", "required"))
    elif not isinstance(to, list):
        problems.append(FieldProblem("to", "must be a list"))
    elif not 1 <= len(to) <= MAX_MULTICAST_RECIPIENTS:
        problems.append(FieldProblem("to", f"must hold 1 to {MAX_MULTICAST_RECIPIENTS} user IDs"))
    else:
        for i, user in enumerate(to):
            if not _is_user_id(user):
                problems.append(FieldProblem(f"to[{i}]", "must be a user ID (U and 32 lowercase hex digits)"))
    problems.extend(validate_messages(parsed.get("messages")))
    if not isinstance(parsed.get("notificationDisabled", False), bool):
        problems.append(FieldProblem("notificationDisabled", "must be true or false"))
    return problems


def _process_multicast(
    st: SimState, request: web.Request, channel: ChannelConfig, body: bytes, retry_key: str | None
) -> web.Response:
    """What LINE answers a multicast that no fault interrupted."""
    refusal = _body_refusal(st, request, MULTICAST, body, retry_key)
    if refusal is not None:
        return refusal
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return st.answer(MULTICAST, 400, _bad_json_body())
    problems = _multicast_problems(parsed)
    if problems:
        return st.answer(MULTICAST, 400, details_body(problems))
    duplicate = _already_accepted(st, MULTICAST, channel.channel_id, retry_key)
    if duplicate is not None:
        return duplicate
    recipients = tuple(parsed["to"])
    if not st.quota_allows(channel, len(recipients)):
        return st.answer(MULTICAST, 429, _BODY_MONTHLY)
    request_id = st.request_id()
    st.record.add_multicast(
        AcceptedMulticast(
            request_id=request_id,
            channel_id=channel.channel_id,
            to=recipients,
            retry_key=retry_key,
            body=body,
            monotonic=st.monotonic(),
            wall=st.clock(),
        )
    )
    return st.answer(MULTICAST, 200, _BODY_EMPTY, request_id)


def _make_multicast(st: SimState) -> Handler:
    async def multicast(request: web.Request) -> web.StreamResponse:
        gate = await _send_gate(st, request, MULTICAST, multicast=True)
        if not isinstance(gate, ChannelConfig):
            return gate
        body = await request.read()
        retry_key = request.headers.get("X-Line-Retry-Key")
        if retry_key is not None:
            st.record.note_key_body(gate.channel_id, retry_key, body)
        fault = st.draw_fault()
        if fault is not None:
            return await st.misbehave(request, MULTICAST, fault)
        return _process_multicast(st, request, gate, body, retry_key)

    return multicast


# ---------------------------------------------------------------------------------------------
# Other bot endpoints


async def _bot_gate(st: SimState, request: web.Request, endpoint: str) -> ChannelConfig | web.Response:
    """Auth, account and the endpoint's own bucket; the channel, or the error answer."""
    channel = st.authenticate(request.headers.get("Authorization"))
    if channel is None:
        return st.answer(endpoint, 401, _BODY_AUTH)
    if channel.forbidden:
        return st.answer(endpoint, 403, _BODY_FORBIDDEN)
    if not st.take(channel.channel_id, endpoint, channel.rate_limit_per_second, channel.effective_burst):
        return st.answer(endpoint, 429, _BODY_RATE)
    return channel


def _make_validate_push(st: SimState) -> Handler:
    async def validate_push(request: web.Request) -> web.StreamResponse:
        gate = await _bot_gate(st, request, VALIDATE_PUSH)
        if isinstance(gate, web.Response):
            return gate
        if "X-Line-Retry-Key" in request.headers:
            return st.answer(VALIDATE_PUSH, 400, _BODY_RETRY_KEY_UNSUPPORTED)
        if not _content_type_ok(request):
            return st.answer(VALIDATE_PUSH, 415, _BODY_MEDIA_TYPE)
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            return st.answer(VALIDATE_PUSH, 413, _BODY_TOO_LARGE)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return st.answer(VALIDATE_PUSH, 400, _bad_json_body())
        if not isinstance(parsed, dict):
            problems = _problem("", "request body must be a JSON object")
        else:
            problems = validate_messages(parsed.get("messages"))
        if problems:
            return st.answer(VALIDATE_PUSH, 400, details_body(problems))
        return st.answer(VALIDATE_PUSH, 200, _BODY_EMPTY)

    return validate_push


def _make_get(st: SimState, endpoint: str, render: Callable[[SimState, ChannelConfig], dict[str, Any]]) -> Handler:
    async def get(request: web.Request) -> web.StreamResponse:
        gate = await _bot_gate(st, request, endpoint)
        if isinstance(gate, web.Response):
            return gate
        if "X-Line-Retry-Key" in request.headers:
            return st.answer(endpoint, 400, _BODY_RETRY_KEY_UNSUPPORTED)
        return st.answer(endpoint, 200, orjson.dumps(render(st, gate)))

    return get


def _bot_info(st: SimState, channel: ChannelConfig) -> dict[str, Any]:
    info = {
        "userId": channel.bot_user_id,
        "basicId": channel.basic_id,
        "displayName": channel.display_name,
        "chatMode": "bot",
        "markAsReadMode": "auto",
    }
    if channel.picture_url is not None:  # LINE omits it when the account has no picture
        info["pictureUrl"] = channel.picture_url
    return info


def _quota(st: SimState, channel: ChannelConfig) -> dict[str, Any]:
    if channel.quota is None:
        return {"type": "none"}
    return {"type": "limited", "value": channel.quota}


def _quota_consumption(st: SimState, channel: ChannelConfig) -> dict[str, Any]:
    return {"totalUsage": st.quota_usage(channel)}


QueryRender = Callable[[SimState, ChannelConfig, "web.Request"], dict[str, Any]]


def _make_query_get(st: SimState, endpoint: str, render: QueryRender, *, per_hour: float | None = None) -> Handler:
    """A GET endpoint with query parameters: a bad one is a 400 naming it, as LINE answers."""

    async def get(request: web.Request) -> web.StreamResponse:
        gate = await _bot_gate(st, request, endpoint)
        if isinstance(gate, web.Response):
            return gate
        if per_hour is not None and not st.take_hourly(gate.channel_id, endpoint, per_hour):
            return st.answer(endpoint, 429, _BODY_RATE)
        try:
            answer = render(st, gate, request)
        except insight.BadQuery as exc:
            return st.answer(endpoint, 400, details_body(_problem(exc.parameter, exc.reason)))
        return st.answer(endpoint, 200, orjson.dumps(answer))

    return get


def _aggregation_info(st: SimState, channel: ChannelConfig, request: web.Request) -> dict[str, Any]:
    names = insight.unit_names(st.record, channel.channel_id, line_month(st.clock()), channel.prior_aggregation_units)
    return {"numOfCustomAggregationUnits": len(names)}


def _aggregation_list(st: SimState, channel: ChannelConfig, request: web.Request) -> dict[str, Any]:
    names = insight.unit_names(st.record, channel.channel_id, line_month(st.clock()), channel.prior_aggregation_units)
    return insight.unit_page(names, request.query.get("limit"), request.query.get("start"))


def _unit_statistics(st: SimState, channel: ChannelConfig, request: web.Request) -> dict[str, Any]:
    q = request.query
    unit, first, last = insight.statistics_period(q.get("customAggregationUnit"), q.get("from"), q.get("to"))
    return insight.statistics(st.record, channel.channel_id, unit, first, last, st.options.engagement)


def _push_count(st: SimState, channel: ChannelConfig, request: web.Request) -> dict[str, Any]:
    return insight.push_count(st.record, channel.channel_id, request.query.get("date"), st.clock())


# ---------------------------------------------------------------------------------------------
# OAuth endpoints


def _oauth_error(st: SimState, endpoint: str, error: str, description: str) -> web.Response:
    return st.answer(endpoint, 400, orjson.dumps({"error": error, "error_description": description}))


async def _form(request: web.Request) -> Any:
    """The form body, or None when it cannot be decoded (LINE answers 400, not 500)."""
    try:
        return await request.post()
    except (UnicodeDecodeError, ValueError):
        return None


def _make_token(st: SimState) -> Handler:
    async def token(request: web.Request) -> web.StreamResponse:
        form = await _form(request)
        if form is None:
            return _oauth_error(st, TOKEN, "invalid_request", "the form body cannot be read")
        grant_type = form.get("grant_type")
        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        if grant_type is None or client_id is None or client_secret is None:
            return _oauth_error(st, TOKEN, "invalid_request", "grant_type, client_id and client_secret are required")
        if grant_type != "client_credentials":
            return _oauth_error(st, TOKEN, "unsupported_grant_type", "grant_type must be client_credentials")
        channel = st.options.channel(str(client_id))
        if channel is None or not secrets.compare_digest(str(client_secret).encode(), channel.channel_secret.encode()):
            return _oauth_error(st, TOKEN, "invalid_client", "invalid client_id or client_secret")
        ttl = st.options.token_ttl_seconds
        access_token = "sim-" + secrets.token_urlsafe(32)
        st.minted[access_token] = MintedToken(channel.channel_id, st.clock() + ttl)
        return st.answer(
            TOKEN,
            200,
            orjson.dumps({"token_type": "Bearer", "access_token": access_token, "expires_in": ttl}),
        )

    return token


def _make_verify(st: SimState) -> Handler:
    async def verify(request: web.Request) -> web.StreamResponse:
        form = await _form(request)
        if form is None:
            return _oauth_error(st, VERIFY, "invalid_request", "the form body cannot be read")
        access_token = form.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            return _oauth_error(st, VERIFY, "invalid_request", "access_token is required")
        minted = st.minted.get(access_token)
        if minted is not None:
            remaining = minted.expires_at - st.clock()
            if remaining <= 0:
                return _oauth_error(st, VERIFY, "invalid_request", "access token expired")
            client_id, expires_in = minted.channel_id, int(remaining)
        else:
            channel = next((c for c in st.options.channels if access_token in c.access_tokens), None)
            if channel is None:
                return _oauth_error(st, VERIFY, "invalid_request", "invalid access token")
            client_id, expires_in = channel.channel_id, LONG_LIVED_EXPIRES_IN
        return st.answer(VERIFY, 200, orjson.dumps({"client_id": client_id, "expires_in": expires_in, "scope": "P"}))

    return verify


# ---------------------------------------------------------------------------------------------
# Control endpoints (/__sim/)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in {"1", "true", "yes"}


def _invalid_body(exc: ValidationError) -> web.Response:
    details = [{"message": e["msg"], "property": ".".join(str(part) for part in e["loc"])} for e in exc.errors()]
    return _json({"message": f"The request body has {len(details)} error(s)", "details": details}, 400)


def _patch_options(st: SimState, body: bytes) -> web.Response:
    """``PATCH /__sim/options``: a JSON merge patch, applied in place when the result is valid."""
    try:
        patch = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _json({"message": "The request body must be valid JSON"}, 400)
    if not isinstance(patch, dict):
        return _json({"message": "The request body must be a JSON object"}, 400)
    try:
        new = merge_patch(st.options, patch)
    except ValidationError as exc:
        return _invalid_body(exc)
    except ValueError as exc:
        return _json({"message": str(exc)}, 400)
    apply_in_place(st.options, new)
    return _json(st.options.model_dump(mode="json"))


def _make_control(st: SimState) -> list[web.RouteDef]:
    async def stats(request: web.Request) -> web.StreamResponse:
        out = st.record.stats(recipients=_flag(request, "recipients"))
        out["options"] = st.options.model_dump(mode="json")
        return _json(out)

    async def accepted(request: web.Request) -> web.StreamResponse:
        bodies = _flag(request, "bodies")
        items = [p.to_json(body=bodies) for p in st.record.accepted]
        items.extend(m.to_json(body=bodies) for m in st.record.multicasts)
        items.sort(key=lambda item: float(item["monotonic"]))
        return _json(items)

    async def options(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return _json(st.options.model_dump(mode="json"))
        return _patch_options(st, await request.read())

    async def revoke(request: web.Request) -> web.StreamResponse:
        revoked = len(st.minted)
        st.minted.clear()
        return _json({"revoked": revoked})

    async def reset(request: web.Request) -> web.StreamResponse:
        st.reset()
        return _json({})

    async def webhook(request: web.Request) -> web.StreamResponse:
        try:
            spec = WebhookRequest.model_validate_json(await request.read())
        except ValidationError as exc:
            return _invalid_body(exc)
        return _json({"requests": await send(spec, int(st.clock() * 1000), st.record)})

    return [
        web.get("/__sim/stats", stats),
        web.get("/__sim/accepted", accepted),
        web.get("/__sim/options", options),
        web.patch("/__sim/options", options),
        web.post("/__sim/revoke", revoke),
        web.post("/__sim/reset", reset),
        web.post("/__sim/webhook", webhook),
    ]


# ---------------------------------------------------------------------------------------------


def create_app(
    options: SimulatorOptions | None = None,
    *,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The simulator app. ``clock`` (POSIX seconds) decides token expiry and ``wall`` times;
    ``monotonic`` drives the token buckets and acceptance times (both injectable for tests)."""
    state = SimState(options if options is not None else SimulatorOptions(), clock=clock, monotonic=monotonic)
    # aiohttp refuses bodies above client_max_size on its own; keep it above LINE's 2 MB so
    # that the simulator itself answers 413 like LINE.
    app = web.Application(client_max_size=MAX_BODY_BYTES * 4)
    app[STATE_KEY] = state
    app.add_routes(
        [
            web.post("/v2/bot/message/push", _make_push(state)),
            web.post("/v2/bot/message/multicast", _make_multicast(state)),
            web.post("/v2/bot/message/validate/push", _make_validate_push(state)),
            web.get("/v2/bot/info", _make_get(state, BOT_INFO, _bot_info)),
            web.get("/v2/bot/message/quota", _make_get(state, QUOTA, _quota)),
            web.get("/v2/bot/message/quota/consumption", _make_get(state, QUOTA_CONSUMPTION, _quota_consumption)),
            web.get("/v2/bot/message/aggregation/info", _make_query_get(state, AGGREGATION_INFO, _aggregation_info)),
            web.get("/v2/bot/message/aggregation/list", _make_query_get(state, AGGREGATION_LIST, _aggregation_list)),
            web.get(
                "/v2/bot/insight/message/event/aggregation",
                _make_query_get(state, UNIT_STATISTICS, _unit_statistics, per_hour=STATISTICS_PER_HOUR),
            ),
            web.get("/v2/bot/message/delivery/push", _make_query_get(state, PUSH_COUNT, _push_count)),
            web.post("/oauth2/v3/token", _make_token(state)),
            web.post("/v2/oauth/verify", _make_verify(state)),
            *_make_control(state),
        ]
    )

    async def on_shutdown(app: web.Application) -> None:
        state.closing.set()

    app.on_shutdown.append(on_shutdown)
    return app
