"""Activation parameters: defaults, validation that names the field, and exact push bodies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lineoa_export.activations import ActivationSpec, Compiled, RenderError, compile_spec, derived_unit, parse_spec
from lineoa_export.delivery.retry_policy import RetryPolicy
from lineoa_export.errors import InvalidInput

USER = "U" + "0123456789abcdef" * 2
GROUP = "C" + "a" * 32
ROOM = "R" + "f" * 32
TEXT = {"type": "text", "text": "Hello {{first_name}}"}


def spec_data(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "welcome",
        "authentication": "main",
        "recipient": "{{line_user_id}}",
        "messages": [TEXT],
    }
    data.update(over)
    return data


def compiled(**over: Any) -> Compiled:
    return compile_spec(parse_spec(spec_data(**over)))


def problems_of(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {p.path: p.reason for p in exc.value.problems}


# -- parse_spec -------------------------------------------------------------------------------


def test_defaults_follow_the_product_page() -> None:
    spec = parse_spec(spec_data())

    assert spec.max_retries == 3
    assert spec.initial_retry_delay == 2.0
    assert spec.retry_delay_multiple == 2.0
    assert spec.notification_disabled is False
    assert spec.description == ""
    assert spec.policy == RetryPolicy(3, 2.0, 2.0)


def test_policy_follows_the_parameters() -> None:
    spec = parse_spec(spec_data(max_retries=0, initial_retry_delay=0.5, retry_delay_multiple=1))

    assert spec.policy == RetryPolicy(0, 0.5, 1.0)


def test_negative_initial_retry_delay_is_refused_saying_why() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_spec(spec_data(initial_retry_delay=-2))

    reason = problems_of(exc)["initial_retry_delay"]
    assert "negative" in reason
    assert "2 seconds" in reason  # points at what the page's "-2" means
    assert not reason.startswith("Value error")
    assert str(exc.value).startswith("initial_retry_delay: ")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("max_retries", 101),
        ("max_retries", "three"),
        ("retry_delay_multiple", 0.5),
        ("retry_delay_multiple", 0),
        ("retry_delay_multiple", 101),
        ("initial_retry_delay", 86_401),
        ("notification_disabled", "maybe"),
        ("recipient", ""),
        ("description", "x" * 1001),
    ],
)
def test_out_of_range_parameters_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_spec(spec_data(**{field: value}))

    assert list(problems_of(exc)) == [field]
    assert str(exc.value).startswith(f"{field}: ")


@pytest.mark.parametrize("field", ["name", "authentication", "recipient", "messages"])
def test_required_fields(field: str) -> None:
    data = spec_data()
    del data[field]

    with pytest.raises(InvalidInput) as exc:
        parse_spec(data)

    assert field in problems_of(exc)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_spec(spec_data(max_retry=5))

    assert "max_retry" in problems_of(exc)


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_spec(spec_data(max_retries=-1, retry_delay_multiple=0, initial_retry_delay=-1))

    assert set(problems_of(exc)) == {"max_retries", "retry_delay_multiple", "initial_retry_delay"}


@pytest.mark.parametrize("value", [0, 0.0, 86_400])
def test_delay_boundaries_accepted(value: float) -> None:
    assert parse_spec(spec_data(initial_retry_delay=value)).initial_retry_delay == value


# -- compile_spec -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "path", "reason"),
    [
        ([{"type": "text", "text": "x" * 5001}], "messages[0].text", "longer than 5000"),
        ([TEXT, {"type": "text", "text": "😀" * 2501}], "messages[1].text", "longer than 5000"),
        ([{"type": "text", "text": ""}], "messages[0].text", "must not be empty"),
        ([{"type": "text"}], "messages[0].text", "required"),
        ([], "messages", "at least 1 message"),
        ({"type": "text", "text": "hi"}, "messages", "must be a list"),
        ([{"type": "text", "text": "hi {{first_name"}], "messages[0].text", 'unbalanced "{{"'),
        ([TEXT, {"type": "text", "text": "{{ }}"}], "messages[1].text", "empty placeholder name"),
    ],
)
def test_payload_problems_name_their_path(messages: object, path: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        compiled(messages=messages)

    assert problems_of(exc).get(path) == reason
    assert f"{path}: {reason}" in str(exc.value)


def test_six_messages_are_too_many() -> None:
    with pytest.raises(InvalidInput) as exc:
        compiled(messages=[TEXT] * 6)

    assert "messages" in problems_of(exc)


def test_a_5000_unit_text_is_accepted() -> None:
    compiled(messages=[{"type": "text", "text": "😀" * 2500}])


@pytest.mark.parametrize("recipient", [USER, GROUP, ROOM, "{{line_user_id}}", "{{ profile.line_id }}", "U{{hex}}"])
def test_recipient_accepted(recipient: str) -> None:
    compiled(recipient=recipient)


@pytest.mark.parametrize(
    "recipient",
    ["U123", "u" + "a" * 32, "U" + "A" * 32, "X" + "a" * 32, USER + "0", " " + USER, "U" + "g" * 32, "someone"],
)
def test_a_fixed_recipient_that_is_not_a_line_id_is_refused(recipient: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        compiled(recipient=recipient)

    assert "recipient" in problems_of(exc)


def test_an_unbalanced_recipient_template_names_the_recipient() -> None:
    with pytest.raises(InvalidInput) as exc:
        compiled(recipient="{{line_user_id")

    assert problems_of(exc) == {"recipient": 'unbalanced "{{"'}


def test_recipient_and_payload_problems_are_reported_together() -> None:
    with pytest.raises(InvalidInput) as exc:
        compiled(recipient="nobody", messages=[{"type": "text", "text": "{{oops"}])

    assert set(problems_of(exc)) == {"recipient", "messages[0].text"}


def test_a_templated_text_is_not_length_checked_at_save_time() -> None:
    compiled(messages=[{"type": "text", "text": "{{long}}" + "x" * 4990}])


# -- Compiled.render --------------------------------------------------------------------------


def test_render_gives_the_exact_push_body() -> None:
    recipient, body = compiled().render({"line_user_id": USER, "first_name": "Ann"})

    assert recipient == USER
    assert body == (
        b'{"to":"'
        + USER.encode()
        + b'","messages":[{"type":"text","text":"Hello Ann"}],"customAggregationUnits":["welcome"]}'
    )


def test_render_adds_notification_disabled_only_when_set() -> None:
    _, body = compiled(notification_disabled=True, no_aggregation_unit=True).render(
        {"line_user_id": USER, "first_name": "Ann"}
    )

    assert body == (
        b'{"to":"' + USER.encode() + b'","messages":[{"type":"text","text":"Hello Ann"}],"notificationDisabled":true}'
    )


def test_render_is_byte_stable_and_escapes_values() -> None:
    c = compiled()
    event = {"line_user_id": USER, "first_name": 'Ann "the" \\ สวัสดี\n'}

    _, first = c.render(event)
    _, second = c.render(dict(event))

    assert first == second
    assert orjson.loads(first) == {
        "to": USER,
        "messages": [{"type": "text", "text": 'Hello Ann "the" \\ สวัสดี\n'}],
        "customAggregationUnits": ["welcome"],
    }


def test_render_with_a_fixed_recipient_and_no_placeholders() -> None:
    sticker = {"type": "sticker", "packageId": "446", "stickerId": "1988"}

    recipient, body = compiled(recipient=GROUP, messages=[sticker], aggregation_unit=None).render({})

    assert recipient == GROUP
    assert body == (
        b'{"to":"' + GROUP.encode() + b'","messages":[{"type":"sticker","packageId":"446","stickerId":"1988"}]}'
    )


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        ({"first_name": "Ann"}, "line_user_id"),
        ({"line_user_id": USER}, "first_name"),
    ],
)
def test_a_missing_variable_is_a_render_error(event: dict[str, Any], missing: str) -> None:
    with pytest.raises(RenderError) as exc:
        compiled().render(event)

    assert str(exc.value) == f"Variable not found: {missing}"
    assert exc.value.recipient is None


@pytest.mark.parametrize("bad", ["U123", "not-a-user", USER.upper(), 12345, None, ""])
def test_an_invalid_rendered_recipient_is_a_render_error_naming_it(bad: object) -> None:
    with pytest.raises(RenderError) as exc:
        compiled().render({"line_user_id": bad, "first_name": "Ann"})

    assert repr(bad) in str(exc.value)
    assert str(exc.value).startswith("invalid recipient")
    assert exc.value.recipient == str(bad)


def test_a_rendered_recipient_is_truncated_in_the_error_field() -> None:
    with pytest.raises(RenderError) as exc:
        compiled().render({"line_user_id": "x" * 500, "first_name": "Ann"})

    assert exc.value.recipient == "x" * 100


@pytest.mark.parametrize(
    "value",
    [
        "x" * 4995,  # "Hello " + 4995 = 5001 characters
        "😀" * 2497 + "x",  # 6 + 4994 + 1 = 5001 UTF-16 units, though only 2504 characters
    ],
    ids=["ascii", "emoji"],
)
def test_a_rendered_text_over_5000_is_a_render_error_naming_the_path(value: str) -> None:
    event = {"line_user_id": USER, "first_name": value}

    with pytest.raises(RenderError) as exc:
        compiled().render(event)

    assert "messages[0].text: longer than 5000" in str(exc.value)
    assert exc.value.recipient == USER


def test_a_rendered_text_of_exactly_5000_is_sent() -> None:
    _, body = compiled().render({"line_user_id": USER, "first_name": "x" * (5000 - len("Hello "))})

    assert len(orjson.loads(body)["messages"][0]["text"]) == 5000


def test_spec_model_is_the_public_type() -> None:
    assert isinstance(parse_spec(spec_data()), ActivationSpec)


def test_a_rendered_recipient_with_a_trailing_newline_is_refused() -> None:
    spec = parse_spec(
        {"name": "nl", "authentication": "a", "recipient": "{{uid}}", "messages": [{"type": "text", "text": "hi"}]}
    )
    compiled = compile_spec(spec)
    with pytest.raises(RenderError, match="invalid recipient"):
        compiled.render({"uid": "U0123456789abcdef0123456789abcdef\n"})


def test_a_non_string_event_id_is_kept_as_its_json_text() -> None:
    from lineoa_export.delivery.triggers import event_id_of

    assert event_id_of({"event_id": 12345}) == "12345"
    assert event_id_of({"event_id": True}) == "true"
    assert event_id_of({"event_id": {"a": 1}}) == '{"a":1}'


# -- aggregation units ------------------------------------------------------------------------


def test_the_unit_is_the_name_when_the_name_is_a_valid_unit() -> None:
    assert parse_spec(spec_data(name="Spring_2027")).aggregation_unit == "Spring_2027"


def test_a_name_that_is_no_valid_unit_becomes_one_of_its_own() -> None:
    dashed = derived_unit("spring-sale")
    underscored = derived_unit("spring_sale")
    long = derived_unit("a-very-long-activation-name.for-the-spring-sale")

    assert dashed.startswith("spring_sale_") and dashed != underscored  # their statistics stay apart
    assert len(long) <= 30 and long.startswith("a_very_long_activation_na")
    for unit in (dashed, long, derived_unit("x.y")):
        assert parse_spec(spec_data(aggregation_unit=unit)).aggregation_unit == unit  # LINE takes it


def test_a_unit_given_or_none() -> None:
    assert parse_spec(spec_data(aggregation_unit="Promo_A")).aggregation_unit == "Promo_A"
    assert parse_spec(spec_data(aggregation_unit=None)).aggregation_unit is None
    assert parse_spec(spec_data(no_aggregation_unit=True)).aggregation_unit is None


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"aggregation_unit": "has space"}, "aggregation_unit"),
        ({"aggregation_unit": "x" * 31}, "aggregation_unit"),
        ({"aggregation_unit": ""}, "aggregation_unit"),
        ({"aggregation_unit": "ユニット"}, "aggregation_unit"),
        ({"no_aggregation_unit": "yes"}, "no_aggregation_unit"),
        ({"no_aggregation_unit": True, "aggregation_unit": "Promo_A"}, "no_aggregation_unit"),
    ],
)
def test_a_bad_unit_is_refused_naming_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_spec(spec_data(**over))

    assert field in problems_of(exc)


# -- LINE emoji in templated texts -------------------------------------------------------------

EMOJI = {"productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001"}


def emoji_text(text: str, *indexes: int) -> dict[str, Any]:
    return {"type": "text", "text": text, "emojis": [{"index": i, **EMOJI} for i in indexes]}


def rendered_message(messages: list[dict[str, Any]], event: dict[str, Any]) -> list[dict[str, Any]]:
    _, body = compiled(messages=messages).render({"line_user_id": USER, **event})
    rendered: list[dict[str, Any]] = orjson.loads(body)["messages"]
    return rendered


def dollars(message: dict[str, Any]) -> list[str]:
    """The UTF-16 unit at each emoji's index of a rendered text, as LINE reads it."""
    units = message["text"].encode("utf-16-le")
    return [units[2 * e["index"] : 2 * e["index"] + 2].decode("utf-16-le") for e in message["emojis"]]


@pytest.mark.parametrize("name", ["Ann", "", "Émilie 😀😀", "$$ {{x}}"], ids=["ascii", "empty", "astral", "dollars"])
def test_emoji_indexes_follow_their_dollar_when_placeholders_before_them_are_filled(name: str) -> None:
    # As written: "$ Hi {{first_name}} $, see {{ place }} $" with emoji on the three "$"
    text = "$ Hi {{first_name}} $, see {{ place }} $"
    message = emoji_text(text, 0, 20, 39)

    [out] = rendered_message([message], {"first_name": name, "place": "Shibuya"})

    assert out["text"] == f"$ Hi {name} $, see Shibuya $"
    assert dollars(out) == ["$", "$", "$"]
    assert out["emojis"][0]["index"] == 0
    assert [e["productId"] for e in out["emojis"]] == [EMOJI["productId"]] * 3


def test_emoji_before_every_placeholder_and_a_fixed_text_keep_their_index() -> None:
    fixed = emoji_text("$ welcome $", 0, 10)
    early = emoji_text("$ Hi {{first_name}}", 0)

    out_fixed, out_early = rendered_message([fixed, early], {"first_name": "A very long name indeed"})

    assert [e["index"] for e in out_fixed["emojis"]] == [0, 10]
    assert [e["index"] for e in out_early["emojis"]] == [0]


def test_an_emoji_index_that_is_not_on_a_dollar_is_refused_at_save_naming_it() -> None:
    with pytest.raises(InvalidInput) as exc:
        compiled(messages=[emoji_text("Hi {{first_name}} $", 3)])

    assert problems_of(exc) == {
        "messages[0].emojis[0].index": "3 is not the position of a '$' in the text (counted in UTF-16 units)"
    }


def test_an_emoji_index_counts_utf16_units_at_save() -> None:
    compiled(messages=[emoji_text("😀$", 2)])  # the face is two units: "$" is at 2
    with pytest.raises(InvalidInput):
        compiled(messages=[emoji_text("😀$", 1)])  # inside the pair


def test_an_escape_before_an_emoji_moves_it_to_where_line_sees_the_dollar() -> None:
    # As written "\{{x}} $" (index 7); LINE receives "{{x}} $", where the "$" is at 6.
    [out] = rendered_message([emoji_text("\\{{x}} $", 7)], {})

    assert out["text"] == "{{x}} $"
    assert out["emojis"][0]["index"] == 6 and dollars(out) == ["$"]


@pytest.mark.parametrize(
    ("value", "text"), [(None, "$"), ({"a": 1}, '{"a":1}$'), (12, "12$"), (True, "true$")], ids=str
)
def test_a_placeholder_right_before_an_emoji_is_measured_as_the_text_it_becomes(value: object, text: str) -> None:
    [out] = rendered_message([emoji_text("{{name}}$", 8)], {"name": value})

    assert out["text"] == text
    assert dollars(out) == ["$"]


def test_a_text_that_is_one_placeholder_keeps_its_indexes_as_line_reads_them() -> None:
    # The whole text comes from the event: its indexes count in the value, and are not moved.
    message = emoji_text("{{greeting}}", 3)

    [out] = rendered_message([message], {"greeting": "Hi $ and more"})

    assert out["emojis"][0]["index"] == 3 and dollars(out) == ["$"]
