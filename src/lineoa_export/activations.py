"""Triggered activations: what to send, to whom, and how hard to retry.

The parameters are the product page's, with its defaults:

==========================  ========  ============================================
Recipient ID                required  template, e.g. ``{{line_user_id}}``
Messages Payload            required  JSON array of 1-5 LINE message objects
Maximum Number Of Retry     3         ≥ 0
Initial Retry Delay         2 s       ≥ 0 (the page's "-2" is read as 2 seconds)
Retry Delay Multiple        2         ≥ 1
Aggregation Unit            derived   1-30 of ``A-Z a-z 0-9 _``, or none
Frequency cap               none      ``N/PERIOD`` (``1/24h``, ``3/7d``, ``10/30m``); ``over_cap``
                                      ``suppress`` (default) or ``defer``
Quiet hours                 none      ``HH:MM-HH:MM`` (may wrap midnight) in ``time_zone``
                                      (``Asia/Tokyo``) or the event's ``time_zone_attribute``;
                                      ``in_quiet_hours`` ``defer`` (default) or ``drop``
==========================  ========  ============================================

The cap and quiet hours are applied just before an event is sent (``delivery/audience_gate.py``).

Every push of an activation carries its aggregation unit (``customAggregationUnits``), so
LINE's statistics can be read per activation (see :func:`derived_unit` for the default, and
``delivery/units.py`` for LINE's 1,000 units a month). ``no_aggregation_unit`` (or a null unit)
sends without one. A copy gets a unit of its own, derived from its own name, unless given one.

Everything is validated when an activation is saved, so a trigger only renders.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import line_messages as line_messages
from .audience import (
    DEFAULT_TIME_ZONE,
    AudienceSettingError,
    parse_frequency_cap,
    parse_quiet_hours,
    parse_time_zone,
)
from .delivery import pauses
from .delivery.retry_policy import RetryPolicy
from .errors import AlreadyExists, FieldProblem, InvalidInput, NotFound
from .naming import check_name, is_valid_unicode
from .store.database import Database, Row
from .templates import MissingVariable, Template

T = TypeVar("T")
NEGATIVE_DELAY = (
    "must be 0 or more seconds: it is how long to wait before the first retry, and a wait "
    "cannot be negative (the product page's default '-2' means 2 seconds)"
)


_UNIT = re.compile(r"^[A-Za-z0-9_]{1,30}$")
_NOT_UNIT = re.compile(r"[^A-Za-z0-9_]")
UNIT_RULE = "must be 1 to 30 letters (A-Z, a-z), digits or underscores"


def derived_unit(name: str) -> str:
    """The aggregation unit an activation named ``name`` gets by default.

    A name that is already a valid unit is used as it is. Any other (a '-' or '.', or over 30
    characters) becomes its valid characters, cut to 25, plus ``_`` and 4 hex digits of its
    hash: ``spring-sale`` and ``spring_sale`` must not share one unit, or LINE would add up
    their statistics.
    """
    if _UNIT.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "backslashreplace")).hexdigest()[:4]
    return f"{_NOT_UNIT.sub('_', name)[:25]}_{digest}"


def resolve_unit(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``aggregation_unit`` decided: given (a null means none), none when
    ``no_aggregation_unit``, else derived from the name. ``no_aggregation_unit`` is input only."""
    data = dict(data)
    no_unit = data.pop("no_aggregation_unit", False)
    if not isinstance(no_unit, bool):
        raise InvalidInput.single("no_aggregation_unit", "must be true or false")
    if no_unit:
        if data.get("aggregation_unit") is not None:
            raise InvalidInput.single("no_aggregation_unit", "cannot be given together with an aggregation_unit")
        data["aggregation_unit"] = None
    elif "aggregation_unit" not in data and isinstance(data.get("name"), str):
        data["aggregation_unit"] = derived_unit(data["name"])
    return data


class ActivationSpec(BaseModel):
    """An activation as a user writes it (CLI flags, API body)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(default="", max_length=1000)
    authentication: str
    recipient: str = Field(min_length=1, max_length=1000)
    messages: Any
    max_retries: int = Field(default=3, ge=0, le=100)
    initial_retry_delay: float = Field(default=2.0, le=86_400)
    retry_delay_multiple: float = Field(default=2.0, ge=1, le=100)
    notification_disabled: bool = False
    #: ``customAggregationUnits`` of every push; None: sent without a unit.
    aggregation_unit: str | None = None
    #: At most N pushes to one recipient in any rolling PERIOD (``N/PERIOD``); None: no cap.
    frequency_cap: str | None = None
    over_cap: Literal["suppress", "defer"] = "suppress"
    #: ``HH:MM-HH:MM`` in ``time_zone`` (or the recipient's, see ``time_zone_attribute``); None: none.
    quiet_hours: str | None = None
    time_zone: str = DEFAULT_TIME_ZONE
    #: An event attribute holding the recipient's own IANA zone (used when it is one).
    time_zone_attribute: str | None = Field(default=None, max_length=100)
    in_quiet_hours: Literal["defer", "drop"] = "defer"

    @field_validator("frequency_cap")
    @classmethod
    def _valid_cap(cls, value: str | None) -> str | None:
        if _unset(value):
            return None
        assert value is not None
        return _reason_only(parse_frequency_cap, value).text

    @field_validator("quiet_hours")
    @classmethod
    def _valid_quiet_hours(cls, value: str | None) -> str | None:
        if _unset(value):
            return None
        assert value is not None
        window = _reason_only(parse_quiet_hours, value)
        return f"{window.start:%H:%M}-{window.end:%H:%M}"

    @field_validator("time_zone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        return str(_reason_only(parse_time_zone, value).key)

    @field_validator("time_zone_attribute")
    @classmethod
    def _attribute(cls, value: str | None) -> str | None:
        return None if _unset(value) else value

    @field_validator("aggregation_unit")
    @classmethod
    def _valid_unit(cls, value: str | None) -> str | None:
        if value is not None and not _UNIT.match(value):
            raise ValueError(UNIT_RULE)
        return value

    @field_validator("initial_retry_delay")
    @classmethod
    def _no_negative_delay(cls, value: float) -> float:
        if value < 0:
            raise ValueError(NEGATIVE_DELAY)
        return value

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.initial_retry_delay, self.retry_delay_multiple)


def _reason_only(parse: Callable[[str], T], value: str) -> T:
    """``parse(value)``; its error without the field name, which the problem adds itself."""
    try:
        return parse(value)
    except AudienceSettingError as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None


def _unset(value: str | None) -> bool:
    """An empty value or ``none`` clears a setting (a CLI flag or a form field cannot send null)."""
    return value is None or value.strip().lower() in ("", "none")


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location in our path syntax: ``("messages", 0, "text")`` → ``messages[0].text``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def problems_from_pydantic(exc: ValidationError) -> list[FieldProblem]:
    """pydantic's errors, as field problems with our path syntax (``messages[0].text``)."""
    return [FieldProblem(field_path(err["loc"]), err["msg"].removeprefix("Value error, ")) for err in exc.errors()]


def parse_spec(data: dict[str, Any]) -> ActivationSpec:
    """Parse and fully check an activation, reporting every bad field at once."""
    data = resolve_unit(data)
    try:
        spec = ActivationSpec.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_pydantic(exc)
        problems += _payload_problems(data, already={p.path for p in problems})
        raise InvalidInput(problems) from None
    compile_spec(spec)
    return spec


def _payload_problems(data: dict[str, Any], already: set[str]) -> list[FieldProblem]:
    """Payload and template problems of a spec that failed elsewhere, so one answer lists them all."""
    recipient, messages = data.get("recipient"), data.get("messages")
    if not isinstance(recipient, str) or not recipient or "recipient" in already or messages is None:
        return []
    try:
        compile_spec(ActivationSpec.model_construct(recipient=recipient, messages=messages))
    except InvalidInput as exc:
        return list(exc.problems)
    return []


@dataclass(frozen=True, slots=True)
class Compiled:
    """An activation's templates, compiled once, ready to render events."""

    recipient: Template
    messages: Template
    notification_disabled: bool
    #: ``["unit"]``, built once: every push of the activation carries the same list.
    aggregation_units: list[str] | None = None
    #: Text messages whose LINE emoji follow placeholders: their indexes move per event.
    emoji_anchors: tuple[EmojiAnchors, ...] = ()

    def render(self, event: dict[str, Any]) -> tuple[str, bytes]:
        """The recipient and the exact push request body for ``event``.

        Raises :class:`RenderError` with a message fit for the activation table.
        """
        try:
            recipient = self.recipient.render(event)
            rendered = self.messages.render(event)
            for anchors in self.emoji_anchors:
                anchors.place(rendered, event)
        except MissingVariable as exc:
            raise RenderError(str(exc), None) from None
        if not line_messages.is_recipient_id(recipient):
            raise RenderError(
                f"invalid recipient {recipient!r}: a LINE user, group or room ID is U, C or R "
                "followed by 32 lowercase hex digits",
                str(recipient)[:100],
            )
        if self.messages.has_placeholders:
            # Values arrived only now: a long name can push a text over 5000, say.
            problems = line_messages.validate_messages(rendered)
            if problems:
                raise RenderError("; ".join(str(p) for p in problems[:5]), recipient)
        body: dict[str, Any] = {"to": recipient, "messages": rendered}
        if self.notification_disabled:
            body["notificationDisabled"] = True
        if self.aggregation_units is not None:
            body["customAggregationUnits"] = self.aggregation_units
        try:
            return recipient, orjson.dumps(body)
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits, a lone surrogate
            raise RenderError(f"messages: cannot be sent as JSON ({exc})", recipient) from None


@dataclass(frozen=True, slots=True)
class EmojiAnchors:
    """Keeps a text message's LINE emoji on their ``$`` once the placeholders before them are filled.

    LINE reads an emoji's ``index`` as a position (UTF-16 units) in the text it receives, and
    refuses a push whose index does not land on a ``$``. Users write the index in the text as
    they write it (``"Hi {{name}} $"``: index 12); the value of ``name`` moves the ``$``.
    """

    message: int
    #: The text before each emoji's ``$``, as written, plus :data:`_END`; rendered, its length
    #: less one is the new index. The end mark keeps a prefix that is one whole placeholder
    #: from rendering as the value's type (``null`` is "" in a text, not ``None``).
    prefixes: tuple[Template, ...]

    @classmethod
    def of(cls, message: int, spec: object) -> EmojiAnchors | None:
        """The anchors of one message of the payload, or None when no index can move.

        A text with ``{{`` moves (a placeholder, or the escape ``\\{{`` that sends ``{{``); a
        text that is one whole placeholder does not: its indexes count in the value, as LINE's.
        """
        if not isinstance(spec, dict) or spec.get("type") != "text" or not isinstance(spec.get("emojis"), list):
            return None
        text = spec.get("text")
        if not isinstance(text, str) or "{{" not in text or line_messages.is_whole_placeholder(text):
            return None
        indexes = [e.get("index") if isinstance(e, dict) else None for e in spec["emojis"]]
        if not all(isinstance(i, int) for i in indexes):
            return None
        prefixes = tuple(Template.compile(line_messages.utf16_prefix(text, i) + _END) for i in indexes)  # type: ignore[arg-type]
        return cls(message, prefixes)

    def place(self, rendered: object, event: dict[str, Any]) -> None:
        """Replace the rendered message with one whose emoji indexes point at their ``$``."""
        assert isinstance(rendered, list)
        message = rendered[self.message]
        emojis = [
            {**emoji, "index": line_messages.utf16_len(str(prefix.render(event))) - 1}
            for emoji, prefix in zip(message["emojis"], self.prefixes, strict=True)
        ]
        # A new dict and list: the rendered tree may share parts with the compiled template.
        rendered[self.message] = {**message, "emojis": emojis}


_END = "."


class RenderError(Exception):
    def __init__(self, message: str, recipient: str | None) -> None:
        super().__init__(message)
        self.recipient = recipient


def compile_spec(spec: ActivationSpec) -> Compiled:
    """Check the templates and the payload; raise :class:`InvalidInput` naming every bad field."""
    problems: list[FieldProblem] = []
    recipient = messages = None
    try:
        recipient = Template.compile(spec.recipient, path="recipient")
    except InvalidInput as exc:
        problems.extend(exc.problems)
    try:
        messages = Template.compile(spec.messages, path="messages")
    except InvalidInput as exc:
        problems.extend(exc.problems)
    if recipient is not None and not recipient.has_placeholders and not line_messages.is_recipient_id(spec.recipient):
        problems.append(
            FieldProblem("recipient", "must be a template such as {{line_user_id}} or a LINE user, group or room ID")
        )
    if messages is not None:
        problems.extend(line_messages.validate_messages(spec.messages, templated=messages.has_placeholders))
        problems.extend(_storable(spec))
    if problems or recipient is None or messages is None:
        raise InvalidInput(problems)
    unit = getattr(spec, "aggregation_unit", None)
    anchors = tuple(a for i, m in enumerate(spec.messages) if (a := EmojiAnchors.of(i, m)) is not None)
    return Compiled(
        recipient,
        messages,
        bool(getattr(spec, "notification_disabled", False)),
        [unit] if unit else None,
        anchors,
    )


def _storable(spec: ActivationSpec) -> list[FieldProblem]:
    """Text the database and LINE can take: valid Unicode, JSON that orjson can write."""
    problems = []
    try:
        orjson.dumps(spec.messages)
    except orjson.JSONEncodeError as exc:
        problems.append(FieldProblem("messages", f"cannot be stored as JSON ({exc})"))
    for field in ("recipient", "description"):
        if not is_valid_unicode(getattr(spec, field, "") or ""):
            problems.append(FieldProblem(field, "text that cannot be stored (a lone surrogate or a NUL character)"))
    return problems


# -- storage -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activation:
    spec: ActivationSpec
    channel_key: str
    paused_reason: str | None  # paused by hand
    channel_paused_reason: str | None  # the channel is held (quota, credentials, breaker)
    created_at: float
    updated_at: float
    channel_pause_kind: str | None = None
    channel_paused_since: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pause_reason(self) -> str | None:
        if self.channel_paused_reason:
            since = datetime.fromtimestamp(self.channel_paused_since or 0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            held = "tripped" if self.channel_pause_kind == pauses.PauseKind.BREAKER else "paused"
            return f"channel {held} since {since}: {self.channel_paused_reason}"
        return self.paused_reason

    @classmethod
    def from_row(cls, row: Row) -> Activation:
        spec = ActivationSpec.model_construct(
            name=row["name"],
            description=row["description"],
            authentication=row["authentication"],
            recipient=row["recipient"],
            messages=orjson.loads(row["messages"]),
            max_retries=row["max_retries"],
            initial_retry_delay=row["initial_retry_delay"],
            retry_delay_multiple=row["retry_delay_multiple"],
            notification_disabled=bool(row["notification_disabled"]),
            aggregation_unit=row.get("aggregation_unit"),
            frequency_cap=row.get("frequency_cap"),
            over_cap=row.get("over_cap") or "suppress",
            quiet_hours=row.get("quiet_hours"),
            time_zone=row.get("time_zone") or DEFAULT_TIME_ZONE,
            time_zone_attribute=row.get("time_zone_attribute"),
            in_quiet_hours=row.get("in_quiet_hours") or "defer",
        )
        return cls(
            spec,
            row["channel_key"],
            row["paused_reason"],
            row["channel_paused_reason"],
            row["created_at"],
            row["updated_at"],
            row.get("channel_pause_kind"),
            row.get("channel_paused_since"),
        )

    def public(self) -> dict[str, Any]:
        return {
            **self.spec.model_dump(),
            "paused": self.pause_reason is not None,
            "paused_reason": self.pause_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _row_params(spec: ActivationSpec, now: float) -> dict[str, Any]:
    return {
        **spec.model_dump(exclude={"messages"}),
        "messages": orjson.dumps(spec.messages).decode(),
        "now": now,
    }


def create(db: Database, spec: ActivationSpec, *, now: float) -> Activation:
    check_name(spec.name)
    compile_spec(spec)
    _require_authentication(db, spec.authentication)
    if not db.run("activation_insert", _row_params(spec, now)):
        raise AlreadyExists(f"activation {spec.name!r} already exists")
    return get(db, spec.name)


def update(db: Database, spec: ActivationSpec, *, now: float) -> Activation:
    compile_spec(spec)
    _require_authentication(db, spec.authentication)
    with db.transaction() as tx:
        if not tx.run("activation_update", _row_params(spec, now)):
            raise NotFound(f"activation {spec.name!r} not found")
        # Events not sent yet follow the activation to its (possibly new) channel, so its
        # rate limit and pauses apply to them.
        tx.run("activation_rechannel_events", {"name": spec.name})
    return get(db, spec.name)


def _require_authentication(db: Database, name: str) -> None:
    if not db.run("auth_get", {"name": name}):
        raise InvalidInput.single("authentication", f"no authentication named {name!r}")


def get(db: Database, name: str) -> Activation:
    rows = db.run("activation_get", {"name": name})
    if not rows:
        raise NotFound(f"activation {name!r} not found")
    return Activation.from_row(rows[0])


def list_all(db: Database) -> list[Activation]:
    return [Activation.from_row(r) for r in db.run("activation_list")]


def delete(db: Database, name: str) -> None:
    if not db.run("activation_delete", {"name": name}):
        raise NotFound(f"activation {name!r} not found")


def counts(db: Database, name: str) -> dict[str, int]:
    return {r["state"]: r["n"] for r in db.run("activation_counts", {"name": name})}


def pause(db: Database, name: str, reason: str, *, now: float) -> None:
    if not pauses.pause_activation(db, name, reason, now=now):
        raise NotFound(f"activation {name!r} not found")


def resume(db: Database, name: str, *, now: float) -> None:
    """Resume an activation, and its channel if LINE had paused the channel: its events go back in line."""
    activation = get(db, name)
    held = activation.channel_paused_reason is not None
    pauses.resume_activation(db, name, activation.channel_key, channel_held=held, now=now)
