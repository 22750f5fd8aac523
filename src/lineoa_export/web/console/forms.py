"""The console's forms: reading a posted form safely, and turning its text fields into values.

A form is read as it streams and refused past :data:`MAX_FORM_BYTES`; a NUL character in any
field is refused by the field's name (no store may see one). Text becomes numbers and JSON here,
and every problem is a :class:`~lineoa_export.errors.FieldProblem` with the same field path the
API uses (``messages[0].text``), so the same mistake reads the same in both front ends.

The one rule: nothing a browser can post raises anything but :class:`InvalidInput` or
:class:`FormTooLarge`; the domain's checks are not repeated here, only the text-to-value steps
the API's JSON parser does for it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request

from ... import activation_table, activations
from ...errors import FieldProblem, InvalidInput
from ...templates import Template

MAX_FORM_BYTES = 2 * 1024 * 1024
MAX_FIELDS = 100
STATES = ("queued", "retrying", "paused", "delivered", "failed", "suppressed", "deferred")
SAMPLE_EVENT = '{"line_user_id": "U0123456789abcdef0123456789abcdef", "name": "Ann"}'
AUDIENCE_FIELDS = ("frequency_cap", "over_cap", "quiet_hours", "time_zone", "time_zone_attribute", "in_quiet_hours")
ACTIVATION_FIELDS = (
    "name",
    "description",
    "authentication",
    "recipient",
    "messages",
    "max_retries",
    "initial_retry_delay",
    "retry_delay_multiple",
    "aggregation_unit",
    *(
        AUDIENCE_FIELDS := (
            "frequency_cap",
            "over_cap",
            "quiet_hours",
            "time_zone",
            "time_zone_attribute",
            "in_quiet_hours",
        )
    ),
)
NUMBERS: tuple[tuple[str, type[int] | type[float]], ...] = (
    ("max_retries", int),
    ("initial_retry_delay", float),
    ("retry_delay_multiple", float),
)

Form = dict[str, str]


class FormTooLarge(Exception):
    """The posted form is over :data:`MAX_FORM_BYTES`."""


async def read_form(request: Request) -> Form:
    """The posted ``application/x-www-form-urlencoded`` fields (first value of each); {} for other bodies."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    try:
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise InvalidInput.single("form", f"more than {MAX_FIELDS} fields") from None
    form = {k: v[0] for k, v in parsed.items()}
    nul = [FieldProblem(k[:64], "must not contain a NUL character") for k, v in form.items() if "\0" in k + v]
    if nul:
        raise InvalidInput(nul)
    return form


def group(problems: list[FieldProblem] | tuple[FieldProblem, ...]) -> dict[str, list[str]]:
    """Problems by the form field they belong to (the first word of their path)."""
    grouped: dict[str, list[str]] = {}
    for p in problems:
        match = re.match(r"[A-Za-z_]+", p.path or "")
        grouped.setdefault(match.group() if match else "form", []).append(str(p))
    return grouped


def number(value: float) -> str:
    return f"{value:g}"


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def safe_next(target: str | None, default: str) -> str:
    """Where to go after login: a console path, never another site."""
    if target and re.fullmatch(r"/console(/[A-Za-z0-9_.~%/?&=+-]*)?", target) and "//" not in target:
        return target
    return default


# -- authentications ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthenticationForm:
    name: str
    access_token: str
    channel_id: str
    channel_secret: str
    api_url: str
    skip_test: bool

    @classmethod
    def of(cls, form: Form, default_api_url: str) -> AuthenticationForm:
        name, token, channel_id, secret, api_url = (
            form.get(f, "").strip() for f in ("name", "access_token", "channel_id", "channel_secret", "api_url")
        )
        return cls(name, token, channel_id, secret, api_url or default_api_url, form.get("skip_test") == "on")

    def kept(self) -> dict[str, Any]:
        """What the form shows again after an error: never a secret."""
        return {"name": self.name, "channel_id": self.channel_id, "api_url": self.api_url, "skip_test": self.skip_test}


# -- activations -------------------------------------------------------------------------------


def copied_values(spec: activations.ActivationSpec, form: Form) -> dict[str, Any]:
    """The activation form filled from ``spec`` (a copy, or the activation being edited)."""
    return {
        "name": form.get("name", ""),
        "description": spec.description,
        "authentication": spec.authentication,
        "recipient": spec.recipient,
        "messages": pretty(spec.messages),
        "max_retries": str(spec.max_retries),
        "initial_retry_delay": number(spec.initial_retry_delay),
        "retry_delay_multiple": number(spec.retry_delay_multiple),
        "notification_disabled": spec.notification_disabled,
        "aggregation_unit": spec.aggregation_unit or "",
        "no_aggregation_unit": spec.aggregation_unit is None,
        **{f: getattr(spec, f) or "" for f in AUDIENCE_FIELDS},
        "sample_event": form.get("sample_event") or SAMPLE_EVENT,
    }


def posted_values(form: Form) -> dict[str, Any]:
    """The activation form as posted."""
    values: dict[str, Any] = {f: form.get(f, "") for f in ACTIVATION_FIELDS}
    values["notification_disabled"] = form.get("notification_disabled") == "on"
    values["no_aggregation_unit"] = form.get("no_aggregation_unit") == "on"
    values["sample_event"] = form.get("sample_event") or SAMPLE_EVENT
    return values


def default_values() -> dict[str, Any]:
    """A new activation's form: the product's defaults."""
    fields = activations.ActivationSpec.model_fields
    return {
        "name": "",
        "description": "",
        "authentication": "",
        "recipient": "",
        "messages": "",
        "max_retries": str(fields["max_retries"].default),
        "initial_retry_delay": number(fields["initial_retry_delay"].default),
        "retry_delay_multiple": number(fields["retry_delay_multiple"].default),
        "notification_disabled": False,
        "aggregation_unit": "",
        "no_aggregation_unit": False,
        **{f: fields[f].default or "" for f in AUDIENCE_FIELDS},
        "sample_event": SAMPLE_EVENT,
    }


def _number_of(field: str, raw: str, kind: type[int] | type[float]) -> float | FieldProblem:
    try:
        value: float = kind(raw)
    except ValueError:  # also a whole number of over 4,300 digits
        what = "a whole number" if kind is int else "a number"
        return FieldProblem(field, f"must be {what} (got {raw[:40]!r})")
    return value if math.isfinite(value) else FieldProblem(field, "must be a finite number")


def spec_data(values: dict[str, Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The form's text as the data of an activation spec, and what could not be read."""
    problems: list[FieldProblem] = []
    data: dict[str, Any] = {
        "name": values["name"].strip(),
        "description": values["description"],
        "authentication": values["authentication"],
        "recipient": values["recipient"].strip(),
        "notification_disabled": bool(values["notification_disabled"]),
    }
    unit = str(values.get("aggregation_unit", "")).strip()
    if values.get("no_aggregation_unit"):
        data["no_aggregation_unit"] = True
    elif unit:  # else derived from the name
        data["aggregation_unit"] = unit
    for field in AUDIENCE_FIELDS:
        raw = str(values.get(field, "")).strip()
        # An empty cap, window or attribute means none; an empty choice or zone, the default.
        if raw or field in ("frequency_cap", "quiet_hours", "time_zone_attribute"):
            data[field] = raw or None
    text = values["messages"].strip()
    if not text:
        problems.append(FieldProblem("messages", "required: a JSON array of 1-5 LINE message objects"))
    else:
        try:
            data["messages"] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            problems.append(FieldProblem("messages", f"not valid JSON: {exc}"))
    for field, kind in NUMBERS:
        raw = str(values[field]).strip()
        if raw:  # else the default applies
            parsed = _number_of(field, raw, kind)
            if isinstance(parsed, FieldProblem):
                problems.append(parsed)
            else:
                data[field] = parsed
    return data, problems


def spec_of(values: dict[str, Any]) -> tuple[activations.ActivationSpec | None, list[FieldProblem]]:
    """Parse the form into a spec, or list every problem with its path."""
    data, problems = spec_data(values)
    try:
        spec = activations.parse_spec(data)
    except InvalidInput as exc:
        already = {p.path for p in problems}
        # a field already refused while reading it (bad JSON, not a number) is not refused twice
        return None, problems + [p for p in exc.problems if p.path not in already]
    return (None, problems) if problems else (spec, [])


def sample_event(values: dict[str, Any]) -> dict[str, Any] | str:
    """The preview's sample event, or why it cannot be used."""
    try:
        event = orjson.loads(values["sample_event"])
    except orjson.JSONDecodeError as exc:
        return f"The sample event is not valid JSON: {exc}"
    if not isinstance(event, dict):
        return "The sample event must be a JSON object of profile attributes."
    return event


SAMPLE_USER_ID = "U0123456789abcdef0123456789abcdef"
_SAMPLE_VALUES: dict[str, Any] = orjson.loads(SAMPLE_EVENT)


def placeholder_event(spec: activations.ActivationSpec) -> dict[str, Any]:
    """A sample event for a saved activation's preview: a value for every placeholder it uses.

    The recipient's placeholders get a sample user ID (a valid one, so the preview renders); a name
    the form's default sample event holds gets its value there; a name ending in ``url``/``uri`` an
    https address; any other name the text ``[name]``, so the chat shows where each value lands.
    """
    try:
        recipient = Template.compile(spec.recipient, path="recipient").variables
        names = recipient | Template.compile(spec.messages, path="messages").variables
    except InvalidInput:  # saved under older rules: the form's default sample, and the preview says why
        return dict(_SAMPLE_VALUES)
    event: dict[str, Any] = {}
    # Deepest first: "a.b" makes "a" an object, which "{{a}}" then shows as JSON (a string would end the walk).
    for name in sorted(names, key=lambda n: (-n.count("."), n)):
        if name in recipient:
            value: Any = SAMPLE_USER_ID
        elif name in _SAMPLE_VALUES:
            value = _SAMPLE_VALUES[name]
        elif name.lower().endswith(("url", "uri")):
            value = f"https://example.com/{name}"
        else:
            value = f"[{name}]"
        _put(event, name.split("."), value)
    return event


def _put(container: Any, segments: list[str], value: Any) -> None:
    """Set ``value`` at a placeholder's path, making objects (lists for index segments) on the way;
    a path through a value already set, or an index over 99, is left out."""
    for i, segment in enumerate(segments):
        fresh: Any = value if i == len(segments) - 1 else [] if segments[i + 1].isdigit() else {}
        if isinstance(container, dict):
            container = container.setdefault(segment, fresh)
        elif isinstance(container, list) and segment.isdigit() and int(segment) < 100:
            index = int(segment)
            container.extend([None] * (index + 1 - len(container)))
            if container[index] is None:
                container[index] = fresh
            container = container[index]
        else:
            return


# -- the activation table ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableQuery:
    filters: activation_table.Filters
    shown: dict[str, str]  # what the filter form shows again
    notes: list[str]  # what was ignored, and why
    before: int | None


def table_query(q: Any) -> TableQuery:
    """The activation table's filters from the query string; what cannot be used is ignored, with a note."""
    notes: list[str] = []
    state = q.get("state") or None
    if state not in (None, *STATES):
        notes.append(f"unknown state {state[:40]!r} ignored")
        state = None
    delivered = {"yes": True, "no": False}.get(q.get("delivered", ""))
    status_code = None
    raw_code = q.get("status_code", "").strip()
    if raw_code:
        if raw_code.isascii() and raw_code.isdigit() and 100 <= int(raw_code[:4]) <= 599 and len(raw_code) == 3:
            status_code = int(raw_code)
        else:
            notes.append(f"status code {raw_code[:20]!r} ignored: give 100-599")
    shown = {
        "state": state or "",
        "delivered": q.get("delivered", "") if delivered is not None else "",
        "status_code": str(status_code) if status_code else "",
    }
    raw_before = q.get("before", "")
    before = int(raw_before) if raw_before.isascii() and raw_before.isdigit() and len(raw_before) <= 18 else None
    filters = activation_table.Filters(state=state, delivered=delivered, status_code=status_code)
    return TableQuery(filters, shown, notes, before)
