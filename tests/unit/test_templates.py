"""The placeholder contract of the Messages Payload and the Recipient ID."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineoa_export.errors import InvalidInput, LineoaExportError
from lineoa_export.templates import MissingVariable, Template

EVENT: dict[str, Any] = {
    "first_name": "Ann",
    "age": 42,
    "score": 2.5,
    "big": 10**20,
    "vip": True,
    "banned": False,
    "nickname": None,
    "tags": ["a", "b"],
    "profile": {"line_user_id": "U123", "tier": {"name": "gold"}, "empty": None},
    "items": [{"name": "Shoe", "qty": 2}, {"name": "Sock", "qty": 0}],
    "first-name": "hyphen",
    "0": "digit key",
    "quote": 'say "hi"',
    "backslash": "a\\b",
    "newline": "line1\nline2",
    "braces": "}} and {{first_name}}",
    "tricky": '"},{"type":"image"',
    "thai": "สวัสดี",
}


def render(source: object, event: dict[str, Any] | None = None) -> object:
    return Template.compile(source).render(EVENT if event is None else event)


# --- placeholders and names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{first_name}}", "Ann"),
        ("{{ first_name }}", "Ann"),
        ("{{   first_name}}", "Ann"),
        ("{{first_name   }}", "Ann"),
        ("Hi {{first_name}}!", "Hi Ann!"),
        ("Hi {{ first_name }}, {{first_name}}", "Hi Ann, Ann"),
        ("{{profile.line_user_id}}", "U123"),
        ("{{ profile.tier.name }}", "gold"),
        ("{{items.0.name}}", "Shoe"),
        ("{{items.1.name}}/{{items.1.qty}}", "Sock/0"),
        ("{{tags.1}}", "b"),
        ("{{first-name}}", "hyphen"),
        ("{{0}}", "digit key"),
        ("{{thai}} ok", "สวัสดี ok"),
        ("no placeholders", "no placeholders"),
        ("", ""),
        ("}} alone", "}} alone"),
        ("{ {first_name} }", "{ {first_name} }"),
    ],
)
def test_placeholders_fill_from_the_event(source: str, expected: str) -> None:
    assert render(source) == expected


# --- whole-string placeholders keep the JSON type --------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{age}}", 42),
        ("{{ score }}", 2.5),
        ("{{big}}", 10**20),
        ("{{vip}}", True),
        ("{{banned}}", False),
        ("{{nickname}}", None),
        ("{{tags}}", ["a", "b"]),
        ("{{profile.tier}}", {"name": "gold"}),
        ("{{items.0}}", {"name": "Shoe", "qty": 2}),
        ("{{items.1.qty}}", 0),
    ],
)
def test_a_whole_string_placeholder_keeps_the_value_type(source: str, expected: object) -> None:
    result = render(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (" {{age}}", " 42"),
        ("{{age}} ", "42 "),
        ("{{age}}{{age}}", "4242"),
        ("n={{score}}", "n=2.5"),
        ("n={{big}}", "n=100000000000000000000"),
        ("{{vip}}/{{banned}}", "true/false"),
        ("[{{nickname}}]", "[]"),
        ("tags={{tags}}", 'tags=["a","b"]'),
        ("tier={{profile.tier}}", 'tier={"name":"gold"}'),
        ("p={{profile}}", 'p={"line_user_id":"U123","tier":{"name":"gold"},"empty":null}'),
        ("t={{thai}}", "t=สวัสดี"),
    ],
)
def test_inside_a_longer_string_values_become_json_text(source: str, expected: str) -> None:
    assert render(source) == expected


def test_non_ascii_in_an_embedded_dict_is_not_escaped() -> None:
    assert render("x{{d}}", {"d": {"k": "สวัสดี"}}) == 'x{"k":"สวัสดี"}'


# --- JSON safety -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["quote", "backslash", "newline", "braces", "tricky"])
def test_values_land_verbatim_and_are_never_rendered_again(key: str) -> None:
    placeholder = "{{" + key + "}}"
    payload = [{"type": "text", "text": placeholder}, {"type": "text", "text": f"<{placeholder}>"}]
    rendered = render(payload)
    assert rendered == [
        {"type": "text", "text": EVENT[key]},
        {"type": "text", "text": f"<{EVENT[key]}>"},
    ]
    # Still exactly two text messages once serialized: nothing was injected.
    assert json.loads(json.dumps(rendered)) == rendered
    assert orjson.loads(orjson.dumps(rendered)) == rendered


def test_a_value_holding_a_placeholder_is_not_expanded() -> None:
    assert render("{{braces}}") == "}} and {{first_name}}"
    assert render("x{{braces}}") == "x}} and {{first_name}}"


# --- escape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("\\{{first_name}}", "{{first_name}}"),
        ("a \\{{ b", "a {{ b"),
        ("\\{{x}} is {{first_name}}", "{{x}} is Ann"),
        ("\\{{{first_name}}", "{{{first_name}}"),
        ("\\{{\\{{", "{{{{"),
        ("\\\\{{x}}", "\\{{x}}"),
        ("a\\b", "a\\b"),
        ("a\\{b", "a\\{b"),
        ("trailing \\", "trailing \\"),
        ("\\{{first_name}} {{first_name}}\\", "{{first_name}} Ann\\"),
    ],
)
def test_backslash_escapes_an_opening_brace_pair(source: str, expected: str) -> None:
    assert render(source) == expected


def test_an_escape_only_string_is_a_constant() -> None:
    template = Template.compile({"text": "\\{{x}}"})
    assert not template.has_placeholders
    assert template.render({}) == {"text": "{{x}}"}


# --- missing variables -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("{{profile.x}}", "profile.x"),
        ("Hi {{ profile.x }}", "profile.x"),
        ("{{nope}}", "nope"),
        ("{{items.5.name}}", "items.5.name"),
        ("{{items.name}}", "items.name"),
        ("{{first_name.x}}", "first_name.x"),
        ("{{age.0}}", "age.0"),
        ("{{nickname.x}}", "nickname.x"),
        ("{{profile.empty.x}}", "profile.empty.x"),
        ("{{thai.0}}", "thai.0"),
    ],
)
def test_a_missing_variable_names_the_full_dotted_name(source: str, name: str) -> None:
    with pytest.raises(MissingVariable) as caught:
        render(source)
    assert caught.value.name == name
    assert str(caught.value) == f"Variable not found: {name}"
    assert isinstance(caught.value, LineoaExportError)


def test_missing_variable_message_is_exact() -> None:
    with pytest.raises(MissingVariable, match=r"^Variable not found: profile\.x$"):
        Template.compile([{"type": "text", "text": "{{profile.x}}"}]).render({"profile": {}})


def test_a_key_holding_none_is_not_missing() -> None:
    assert render("{{profile.empty}}") is None
    assert render("[{{profile.empty}}]") == "[]"


# --- compile errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path", "problems"),
    [
        ("{{", "", ['unbalanced "{{"']),
        ("Hi {{first_name", "recipient", ['recipient: unbalanced "{{"']),
        ("{{ }}", "", ["empty placeholder name"]),
        ("{{}}", "", ["empty placeholder name"]),
        ("{{a..b}}", "", ["invalid placeholder name 'a..b'"]),
        ("{{ a b }}", "", ["invalid placeholder name 'a b'"]),
        ("{{.a}}", "", ["invalid placeholder name '.a'"]),
        ("{{a.}}", "", ["invalid placeholder name 'a.'"]),
        ("{{1a}}", "", ["invalid placeholder name '1a'"]),
        ("{{a.-b}}", "", ["invalid placeholder name 'a.-b'"]),
        ("{{{a}}}", "", ["invalid placeholder name '{a'"]),
        ("{{ok}} {{}} {{a..b}}", "p", ["p: empty placeholder name", "p: invalid placeholder name 'a..b'"]),
        (
            [{"type": "text", "text": "ok"}, {"altText": "{{x", "text": "{{ }}"}],
            "messages",
            ['messages[1].altText: unbalanced "{{"', "messages[1].text: empty placeholder name"],
        ),
        (
            {"contents": {"body": [{"text": "{{a..b}}"}]}},
            "messages[0]",
            ["messages[0].contents.body[0].text: invalid placeholder name 'a..b'"],
        ),
        ([["{{"]], "", ['[0][0]: unbalanced "{{"']),
        ({"a b": "{{"}, "", ['["a b"]: unbalanced "{{"']),
    ],
)
def test_compile_lists_every_problem_with_its_path(source: object, path: str, problems: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        Template.compile(source, path=path)
    assert [str(p) for p in caught.value.problems] == problems


def test_compile_reports_the_exact_altText_path() -> None:
    payload = [{"type": "text", "text": "hi"}, {"type": "flex", "altText": "Hi {{name", "contents": {}}]
    with pytest.raises(InvalidInput) as caught:
        Template.compile(payload, path="messages")
    [problem] = caught.value.problems
    assert (problem.path, problem.reason) == ("messages[1].altText", 'unbalanced "{{"')
    assert str(caught.value) == 'messages[1].altText: unbalanced "{{"'


# --- structure -------------------------------------------------------------------------------


def test_dict_keys_are_never_templated() -> None:
    source = {"{{first_name}}": "{{first_name}}", "{{": "x"}
    assert render(source) == {"{{first_name}}": "Ann", "{{": "x"}


def test_key_order_is_kept() -> None:
    source = {"z": "{{age}}", "a": "const", "m": "{{vip}}"}
    assert list(render(source)) == ["z", "a", "m"]  # type: ignore[call-overload]


def test_non_string_scalars_pass_through() -> None:
    source = {"n": 1, "f": 1.5, "t": True, "none": None, "s": "{{age}}", "l": [1, "{{vip}}"]}
    assert render(source) == {"n": 1, "f": 1.5, "t": True, "none": None, "s": 42, "l": [1, True]}


def test_inserted_dicts_and_lists_are_deep_copies() -> None:
    event: dict[str, Any] = {"d": {"inner": {"x": [1, 2]}}, "l": [[1], {"k": "v"}]}
    rendered = Template.compile({"a": "{{d}}", "b": "{{l}}"}).render(event)
    assert isinstance(rendered, dict)
    rendered["a"]["inner"]["x"].append(3)
    rendered["b"][0].append(9)
    rendered["b"][1]["k"] = "changed"
    assert event == {"d": {"inner": {"x": [1, 2]}}, "l": [[1], {"k": "v"}]}


def test_each_render_builds_new_containers_around_placeholders() -> None:
    template = Template.compile([{"type": "text", "text": "{{first_name}}"}])
    first = template.render({"first_name": "A"})
    second = template.render({"first_name": "B"})
    assert first == [{"type": "text", "text": "A"}]
    assert second == [{"type": "text", "text": "B"}]


def test_a_template_without_placeholders_renders_one_shared_tree() -> None:
    template = Template.compile([{"type": "text", "text": "hello"}])
    assert template.render({}) is template.render({"x": 1})
    assert template.render({}) == [{"type": "text", "text": "hello"}]


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{{first_name}}", {"first_name"}),
        ("{{ profile.line_user_id }}", {"profile.line_user_id"}),
        (
            [{"text": "{{a}} {{ b.c }}", "altText": "{{a}}"}, {"x": ["{{items.0.name}}"]}],
            {"a", "b.c", "items.0.name"},
        ),
        ({"{{key}}": "v"}, set()),
        ("\\{{x}}", set()),
        ("plain", set()),
        (42, set()),
        (None, set()),
    ],
)
def test_variables_lists_the_dotted_names(source: object, variables: set[str]) -> None:
    template = Template.compile(source)
    assert template.variables == frozenset(variables)
    assert template.has_placeholders is bool(variables)


def test_source_is_the_value_given() -> None:
    source = [{"type": "text", "text": "{{a}}"}]
    assert Template.compile(source).source is source


def test_the_recipient_id_is_a_bare_string() -> None:
    template = Template.compile("{{ profile.line_user_id }}", path="recipient_id")
    assert template.render(EVENT) == "U123"
    assert template.variables == frozenset({"profile.line_user_id"})


# --- properties ------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,5}|[0-9]{1,2}", fullmatch=True)
dotted_names = st.lists(names, min_size=1, max_size=3).map(".".join)


@given(value=st.text())
def test_any_text_value_round_trips_through_json_at_its_place(value: str) -> None:
    template = Template.compile(
        [{"type": "text", "text": "{{ v }}"}, {"type": "text", "text": "Hi {{v}}!", "n": 1}],
        path="messages",
    )
    rendered = template.render({"v": value})
    assert rendered == [{"type": "text", "text": value}, {"type": "text", "text": f"Hi {value}!", "n": 1}]
    assert json.loads(json.dumps(rendered)) == rendered
    assert json.loads(json.dumps(rendered, ensure_ascii=False)) == rendered
    assert orjson.loads(orjson.dumps(rendered)) == rendered


@given(value=json_values)
def test_any_json_value_keeps_its_place_and_never_injects_structure(value: object) -> None:
    template = Template.compile([{"whole": "{{v}}", "inside": "<{{v}}>"}])
    rendered = template.render({"v": value})
    assert isinstance(rendered, list)
    assert len(rendered) == 1
    assert list(rendered[0]) == ["whole", "inside"]
    assert rendered[0]["whole"] == value
    assert isinstance(rendered[0]["inside"], str)
    assert json.loads(json.dumps(rendered)) == rendered


@given(text=st.text())
def test_compile_raises_only_invalid_input(text: str) -> None:
    try:
        template = Template.compile({"text": text}, path="messages[0]")
    except InvalidInput as error:
        assert error.problems
        assert all(p.path == "messages[0].text" for p in error.problems)
        return
    assert isinstance(template.variables, frozenset)


@given(source=json_values)
def test_compile_raises_only_invalid_input_on_any_json_tree(source: object) -> None:
    with contextlib.suppress(InvalidInput):
        Template.compile(source)


@given(text=st.text())
def test_escaping_every_opening_pair_renders_the_text_back(text: str) -> None:
    assert Template.compile(text.replace("{{", "\\{{")).render({}) == text


@given(
    pieces=st.lists(st.text().map(lambda s: s.replace("{", "")) | dotted_names.map("{{ %s }}".__mod__)),
    event=st.dictionaries(names, json_values, max_size=5),
)
def test_render_raises_only_missing_variable(pieces: list[str], event: dict[str, object]) -> None:
    template = Template.compile({"text": "".join(pieces)})
    try:
        rendered = template.render(event)
    except MissingVariable as error:
        assert error.name in template.variables
        return
    assert json.loads(json.dumps(rendered)) == rendered


@given(text=st.text(), event=st.dictionaries(names, json_values, max_size=5))
def test_arbitrary_valid_templates_render_or_miss(text: str, event: dict[str, object]) -> None:
    try:
        template = Template.compile(text)
    except InvalidInput:
        return
    with contextlib.suppress(MissingVariable):
        template.render(event)
