"""Bad input: generated events and payload templates never crash rendering, never make invalid
JSON, never lose an accepted event; the fuzzed API never answers 5xx.

- Templates: any JSON value (unicode with emoji, control characters and lone surrogates, huge
  strings, nesting, quotes, backslashes, braces, ``{{...}}`` and JSON-injection attempts inside
  strings) compiles or raises :class:`InvalidInput`; a compiled template renders any event or
  raises :class:`MissingVariable`.
- Activations: ``Compiled.render`` returns a body that ``json.loads`` parses, holding exactly
  the one message of the payload with the event's value verbatim where its placeholder was, or
  raises :class:`RenderError` (and only for a reason: too long, a lone surrogate, ...).
- Triggers: ``triggers.accept`` on a real SQLite file raises for no dict event but one whose
  ``event_id`` is over 200 characters (InvalidInput naming it, nothing of the batch stored), and
  stores exactly one row per event id (later events with the same id are duplicates).
- API: schemathesis against ``/openapi.json`` (the helpers of ``tests/api/test_schemathesis.py``,
  a different seed, its own database), and generated trigger bodies: no 5xx.

Sizes: default 150 examples per property and 15 per API operation; ``--full`` (or
``LINEOA_EXPORT_RELIABILITY=full``): 1,500 and 60.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import orjson
import pytest
import schemathesis
import test_schemathesis as api_fuzz  # tests/api: State, existing_names, keep_line_local
from api_support import make_api
from cli_support import Cli, describe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import SECRET_KEY, Sizes, current_sizes, report
from schemathesis.checks import not_a_server_error

from lineoa_export import activation_table, activations, authentications
from lineoa_export.context import open_context
from lineoa_export.delivery import triggers
from lineoa_export.errors import InvalidInput
from lineoa_export.settings import Settings
from lineoa_export.templates import MissingVariable, Template
from lineoa_export.testing import SIMULATOR_HOST, user_id
from lineoa_export.web.app import create_app

SIZES = current_sizes()
API_SEED = 90_210  # tests/api runs derandomized; this run explores other cases
USER = user_id(1)


def has_surrogate(s: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in s)


# -- strategies ------------------------------------------------------------------------------

NASTY = [
    '"}, {"type":"text","text":"injected',
    '"}]}, {"to":"U00000000000000000000000000000000","messages":[{"type":"text","text":"x"}]}',
    '\\", \\"type\\": \\"text',
    "{{name}}",
    "{{ profile.tier }}",
    "{{",
    "}}",
    "\\{{",
    "\\\\{{x}}",
    "{{}}",
    "{{ }}",
    "{{a b}}",
    "{{0}}",
    "{{items.0.sku}}",
    '{"a":1}',
    "[1,2]",
    "null",
    "\\",
    '"',
    "\\u0000",
    "\x00",
    "\x1f\x7f",
    "\u2028\u2029",
    "\ufeff",
    "👍🏽",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "สวัสดี",
    "日本語",
    "\U0010ffff",
    "</script><script>alert(1)</script>",
    "'; DROP TABLE events; --",
    "%s%n%x",
    "${jndi:ldap://x}",
    "\r\n\r\n",
    "\t",
]
characters = st.characters(exclude_categories=())  # every code point, lone surrogates included
text = st.one_of(
    st.text(characters, max_size=40),
    st.sampled_from(NASTY),
    st.lists(st.sampled_from(NASTY), min_size=1, max_size=5).map("".join),
    st.builds(lambda s, k: s * k, st.sampled_from(["x", "é", "👍", "{{", '"', "\\"]), st.integers(1000, 60_000)),
)
safe_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | st.sampled_from(NASTY)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=25,
)


def nested(depth: int, leaf: Any = "leaf") -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


deep_values = st.integers(1, 200).map(nested)
event_values = json_values | deep_values
EVENT_IDS = [None, "", "a", "b", "é", "a ", 1, 1.5, True, "\x00", "\ud800", "x" * 300, "x" * 200 + "y", "👍"]
events = st.builds(
    lambda extra, event_id, uid, name: {
        **extra,
        **({} if event_id == "absent" else {"event_id": event_id}),
        **({} if uid == "absent" else {"line_user_id": uid}),
        **({} if name == "absent" else {"name": name}),
    },
    st.dictionaries(text, event_values, max_size=4),
    st.sampled_from(["absent", *EVENT_IDS]),
    st.sampled_from([USER, user_id(2), "C" + "0" * 32])
    | st.sampled_from(["absent", "U123", None, 5, USER.upper(), USER + "\n", "\ud800", USER + "\udfff"])
    | text,
    st.just("absent") | event_values,
)


def run_property(test: Any, examples: int) -> None:
    settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )(test)()


def utf16_units(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def as_text(value: Any) -> str:
    """What the README says a value reads like inside a longer string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- templates -------------------------------------------------------------------------------


@pytest.mark.timeout(1800)  # release sizes take minutes
def test_any_template_compiles_or_is_refused_and_renders_or_misses(sizes: Sizes) -> None:
    outcomes: Counter[str] = Counter()

    @given(
        template=json_values | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text})),
        event=st.dictionaries(text | st.sampled_from(["name", "profile", "items", "a"]), event_values, max_size=5),
    )
    def check(template: Any, event: dict[str, Any]) -> None:
        try:
            compiled = Template.compile(template, path="messages")
        except InvalidInput as exc:
            assert exc.problems, "an InvalidInput must name its problems"
            outcomes["refused"] += 1
            return
        try:
            rendered = compiled.render(event)
        except MissingVariable:
            outcomes["missing variable"] += 1
            return
        try:
            body = orjson.dumps(rendered)
        except orjson.JSONEncodeError:
            outcomes["not serializable (big int / surrogate / depth)"] += 1
            return
        assert json.loads(body) == rendered, "the rendered value reads back from its JSON unchanged"
        outcomes["rendered"] += 1

    run_property(check, sizes.hypothesis_examples)
    report("bad input: Template.compile/render", dict(outcomes))


@pytest.mark.timeout(1800)  # release sizes take minutes
def test_rendered_bodies_are_valid_json_with_the_value_verbatim(sizes: Sizes) -> None:
    outcomes: Counter[str] = Counter()

    @given(
        prefix=safe_text, suffix=safe_text, value=event_values, whole=st.booleans(), name=st.sampled_from(["v", "a.b"])
    )
    def check(prefix: str, suffix: str, value: Any, whole: bool, name: str) -> None:
        # Literal text around the placeholder holds no placeholder or escape of its own.
        hypothesis.assume("{{" not in prefix and "{{" not in suffix and not prefix.endswith(("\\", "{")))
        source = "{{" + name + "}}" if whole else f"{prefix}{{{{ {name} }}}}{suffix}"
        literal = "" if whole else prefix
        try:
            spec = activations.parse_spec(
                {
                    "name": "a",
                    "authentication": "line",
                    "recipient": "{{uid}}",
                    "messages": [{"type": "text", "text": source}],
                }
            )
        except InvalidInput:
            outcomes["refused template"] += 1
            return
        event = {"uid": USER, "v": value, "a": {"b": value}}
        try:
            recipient, body = activations.compile_spec(spec).render(event)
        except activations.RenderError as exc:
            if isinstance(value, str) and not whole:
                text_ = literal + value + suffix
                legitimate = utf16_units(text_) > 5000 or has_surrogate(text_) or not text_
                assert legitimate, f"RenderError {exc} for a sendable text {text_[:200]!r}"
            outcomes[f"render error: {str(exc).split(':')[0][:40]}"] += 1
            return
        parsed = json.loads(body)  # valid JSON, always
        assert recipient == USER and parsed["to"] == USER
        assert len(parsed["messages"]) == 1 and set(parsed["messages"][0]) == {"type", "text"}
        assert parsed["messages"][0]["type"] == "text"
        got = parsed["messages"][0]["text"]
        if whole:
            assert got == value, "a whole-string placeholder keeps the value"
        elif isinstance(value, str):
            assert got == literal + value + suffix, "the value lands verbatim"
        else:
            assert got == literal + as_text(value) + suffix
        outcomes["rendered"] += 1

    run_property(check, sizes.hypothesis_examples)
    report("bad input: rendered bodies", dict(outcomes))


# -- triggers on a real database --------------------------------------------------------------


def open_db(tmp_path: Path) -> Any:
    ctx = open_context(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'bad.db'}", secret_key=SECRET_KEY, allowed_api_hosts=(SIMULATOR_HOST,)
        )
    )
    authentications.create(
        ctx.db, ctx.vault, name="line",
        credentials=authentications.Credentials.from_options("token-never-sent", None, None),
        api_url="http://127.0.0.1:9", now=0.0,
    )  # fmt: skip
    return ctx


@pytest.mark.timeout(1800)  # release sizes take minutes
def test_accept_refuses_only_overlong_ids_and_records_one_row_per_event_id(tmp_path: Path, sizes: Sizes) -> None:
    ctx = open_db(tmp_path)
    names = itertools.count()
    totals: Counter[str] = Counter()
    try:

        @given(batch=st.lists(events, min_size=1, max_size=8))
        def check(batch: list[dict[str, Any]]) -> None:
            name = f"a{next(names)}"
            activations.create(ctx.db, activations.parse_spec({
                "name": name, "authentication": "line", "recipient": "{{line_user_id}}",
                "messages": [{"type": "text", "text": "Hi {{name}}"}, {"type": "text", "text": "{{name}}!"}],
            }), now=0.0)  # fmt: skip
            too_long = [i for i, e in enumerate(batch) if len(triggers.event_id_of(e)) > triggers.MAX_EVENT_ID_LENGTH]
            if too_long:  # refused whole, naming each such event, and nothing stored (issue 8, finding 9)
                with pytest.raises(InvalidInput) as refused:
                    triggers.accept(ctx.db, name, batch, now=1.0)
                assert [p.path for p in refused.value.problems] == [f"events[{i}].event_id" for i in too_long]
                assert list(activation_table.iterate(ctx.db, name)) == []
                totals["refused"] += 1
                return
            results = triggers.accept(ctx.db, name, batch, now=1.0)
            assert len(results) == len(batch)
            rows = {e["event_id"]: e for e in activation_table.iterate(ctx.db, name)}
            stored = [r for r in results if r.status != "duplicate"]
            assert len(rows) == len(stored) == len({r.event_id for r in stored}), (results, list(rows))
            for r in results:
                assert r.event_id in rows, f"{r} not in the activation table"
                totals[r.status] += 1
                if r.status == "accepted":
                    assert rows[r.event_id]["state"] == "queued"
                    body = ctx.db.run("log_event", {"activation": name, "event_id": r.event_id})[0]["body"]
                    assert json.loads(bytes(body))["to"] == rows[r.event_id]["recipient"]
                elif r.status == "failed":
                    assert rows[r.event_id]["state"] == "failed" and rows[r.event_id]["error"] == r.error

        run_property(check, sizes.hypothesis_examples)
    finally:
        ctx.close()
    report("bad input: triggers.accept", {"events": sum(totals.values()), **totals, "lost": 0})


# Regressions: the four tests below were found failing by this suite (a RecursionError and a
# UnicodeEncodeError escaping triggers.accept: the CLI crashed with a traceback and lost every
# event of the chunk, the API answered 500); triggers.prepare now records such events as failed.

DEEP = 900  # parses with json.loads (Python's limit is about 1,000) and so reaches every entry point


def test_a_deeply_nested_value_is_recorded_as_failed_not_a_crash(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.env["LINEOA_EXPORT_SECRET_KEY"] = SECRET_KEY
    cli.ok("auth", "create", "line", "--access-token", "t", "--skip-test", "--api-url", "http://127.0.0.1:9")
    cli.ok("activation", "create", "deep", "--auth", "line", "--recipient", "{{uid}}",
           "--messages", json.dumps([{"type": "text", "text": "{{x}}"}]))  # fmt: skip
    lines = [
        {"event_id": "before", "uid": USER, "x": "fine"},
        {"event_id": "deep", "uid": USER, "x": nested(DEEP)},
        {"event_id": "after", "uid": user_id(2), "x": "fine"},
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    result = cli("trigger", "deep", "--events", str(path))
    recorded = {e["event_id"]: e["state"] for e in cli.log_json("deep")}
    message = report(
        "bad input: deeply nested event via CLI",
        {
            "events": 3,
            "recorded": len(recorded),
            "lost": 3 - len(recorded),
            "exit": result.returncode,
            "traceback": "Traceback" in result.stderr,
        },
    )
    assert "Traceback" not in result.stderr, f"{message}\n{describe(result)}"
    assert recorded == {"before": "queued", "deep": "failed", "after": "queued"}, message


def test_the_api_answers_a_deeply_nested_event_without_5xx(tmp_path: Path) -> None:
    with make_api(tmp_path, None) as api:
        api.create_activation(messages=[{"type": "text", "text": "{{name}}"}])
        events_ = [
            {"event_id": "ok", "line_user_id": USER, "name": "A"},
            {"event_id": "deep", "line_user_id": USER, "name": nested(DEEP)},
        ]
        try:
            response = api.post("/v1/activations/welcome/triggers", json={"events": events_})
            status: int | str = response.status_code
        except RecursionError as exc:  # the in-process client raises what a server answers 500 for
            status = type(exc).__name__
        recorded = {e["event_id"]: e["state"] for e in api.log()} if status == 202 else {}
        message = report("bad input: deeply nested event via API", {"status": status, "recorded": recorded})
        assert isinstance(status, int) and status < 500, message
        assert recorded == {"ok": "queued", "deep": "failed"}, message


LONE_SURROGATE = json.loads('"\\ud800"')  # what the JSON text "\ud800" parses to


def test_a_lone_surrogate_recipient_is_recorded_as_failed_not_a_crash(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.env["LINEOA_EXPORT_SECRET_KEY"] = SECRET_KEY
    cli.ok("auth", "create", "line", "--access-token", "t", "--skip-test", "--api-url", "http://127.0.0.1:9")
    cli.ok("activation", "create", "sur", "--auth", "line", "--recipient", "{{uid}}",
           "--messages", json.dumps([{"type": "text", "text": "hi"}]))  # fmt: skip
    path = tmp_path / "events.ndjson"
    bad_line = '{"event_id": "bad", "uid": "\\ud800"}'  # valid JSON text
    before, after = ({"event_id": "before", "uid": USER}, {"event_id": "after", "uid": user_id(2)})
    path.write_text(f"{json.dumps(before)}\n{bad_line}\n{json.dumps(after)}\n")
    result = cli("trigger", "sur", "--events", str(path))
    recorded = {e["event_id"]: e["state"] for e in cli.log_json("sur")}
    message = report(
        "bad input: lone-surrogate recipient via CLI",
        {
            "events": 3,
            "recorded": len(recorded),
            "lost": 3 - len(recorded),
            "exit": result.returncode,
            "traceback": "Traceback" in result.stderr,
        },
    )
    assert "Traceback" not in result.stderr, f"{message}\n{describe(result)}"
    assert recorded == {"before": "queued", "bad": "failed", "after": "queued"}, message


def test_the_api_answers_a_lone_surrogate_recipient_without_5xx(tmp_path: Path) -> None:
    with make_api(tmp_path, None) as api:
        api.create_activation()
        events_ = [
            {"event_id": "ok", "line_user_id": USER, "name": "A"},
            {"event_id": "bad", "line_user_id": LONE_SURROGATE, "name": "B"},
        ]
        try:
            response = api.post(
                "/v1/activations/welcome/triggers",
                data=json.dumps({"events": events_}),
                headers={"Content-Type": "application/json"},
            )
            status: int | str = response.status_code
        except UnicodeEncodeError as exc:  # the in-process client raises what a server answers 500 for
            status = type(exc).__name__
        recorded = {e["event_id"]: e["state"] for e in api.log()} if status == 202 else {}
        message = report("bad input: lone-surrogate recipient via API", {"status": status, "recorded": recorded})
        assert isinstance(status, int) and status < 500, message
        assert recorded == {"ok": "queued", "bad": "failed"}, message


# -- API fuzz ----------------------------------------------------------------------------------


@pytest.mark.timeout(1800)  # release sizes take minutes
def test_generated_trigger_bodies_never_make_the_api_answer_5xx(tmp_path: Path, sizes: Sizes) -> None:
    statuses: Counter[int] = Counter()
    with make_api(tmp_path, None) as api:
        api.create_activation()

        @given(
            body=st.one_of(
                st.fixed_dictionaries({"events": st.lists(events, max_size=6)}),
                st.dictionaries(text, json_values, max_size=3),
                json_values,
            )
        )
        def check(body: Any) -> None:
            response = api.post("/v1/activations/welcome/triggers", json=body)
            statuses[response.status_code] += 1
            assert response.status_code < 500, response.text

        run_property(check, sizes.hypothesis_examples)
    report("bad input: API triggers", {str(k): v for k, v in sorted(statuses.items())})


FUZZ_STATE = api_fuzz._open_state()  # a database of its own, set up like tests/api's
fuzz_schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(FUZZ_STATE.ctx))


@pytest.fixture(scope="module")
def fuzz_state() -> Iterator[api_fuzz.State]:
    yield FUZZ_STATE
    FUZZ_STATE.ctx.close()
    shutil.rmtree(FUZZ_STATE.directory, ignore_errors=True)


@fuzz_schema.parametrize()
@hypothesis.seed(API_SEED)
@settings(max_examples=SIZES.api_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_api_answers_no_5xx(case: Any, fuzz_state: api_fuzz.State) -> None:
    headers = {"Authorization": f"Bearer {fuzz_state.key}"}
    api_fuzz.keep_line_local(case, fuzz_state.api_url)
    case.call_and_validate(headers=headers, checks=[not_a_server_error])
    params = api_fuzz.existing_names(case)
    if params is not None:
        case.path_parameters = params
        case.call_and_validate(headers=headers, checks=[not_a_server_error])
        fuzz_state.restore()
