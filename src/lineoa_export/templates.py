"""Placeholder templates for the Messages Payload and the Recipient ID.

A template is any JSON value (the Messages Payload array, or the Recipient ID as a bare
string). Every string in it, at any depth, may hold placeholders; dict *keys* never do::

    {"type": "text", "text": "Hi {{ first_name }}, your order {{items.0.name}} shipped"}

Placeholders
    ``{{name}}``, with optional spaces inside the braces (``{{ name }}``). A name is
    segments joined by dots; a segment is ``[A-Za-z_][A-Za-z0-9_-]*`` or a list index
    ``[0-9]+``: ``profile.line_user_id``, ``items.0.name``. Rendering walks the trigger
    event: dict keys by segment, lists by integer index. A missing key, an index out of
    range, or a walk into a non-container raises :class:`MissingVariable`. A key that is
    present with the value ``None`` is not missing.

Escape
    ``\\{{`` renders a literal ``{{`` (in JSON source that is written ``"\\\\{{"``). A
    backslash not followed by ``{{`` is kept as is, so ``\\\\{{x}}`` renders ``\\{{x}}``:
    a literal backslash directly before a live placeholder cannot be written.

Types
    A string that is exactly one placeholder (only the spaces inside the braces allowed)
    takes the value's JSON type: numbers, bools and ``None`` stay what they are, and a
    dict or list is inserted as a deep copy. Inside a longer string a value becomes text:
    a str as is, a number as JSON text, bools as ``true``/``false``, ``None`` as ``""``,
    and a dict or list as compact JSON text.

Safety
    Rendering builds Python values, never JSON text, so a value holding quotes,
    backslashes, newlines, braces or ``{{other}}`` lands inside its string verbatim and
    is never rendered again; no event value can inject JSON structure.

Sharing (callers must not mutate the parts of a rendered result that came from the template)
    :meth:`Template.compile` does all parsing once; :meth:`Template.render` only walks
    prebuilt closures. Sub-trees without placeholders are *shared* between renders rather
    than copied, and a template without any placeholder renders in O(1) by returning one
    prebuilt tree. Treat rendered values as read-only (serialize them, compare them) or
    ``copy.deepcopy`` them first. Values inserted from the event are always fresh copies,
    so mutating a result never changes the event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Final

from lineoa_export.errors import FieldProblem, InvalidInput, LineoaExportError

__all__ = ["MissingVariable", "Template"]

Event = Mapping[str, object]
Renderer = Callable[[Event], object]

_OPEN: Final = "{{"
_CLOSE: Final = "}}"
_ESCAPE: Final = "\\"
_SEGMENT: Final = r"(?:[A-Za-z_][A-Za-z0-9_-]*|[0-9]+)"
_NAME_RE: Final = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
# Keys that can be written as ``.key`` in a problem path; others are quoted: ``["a b"]``.
_PLAIN_KEY_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MissingVariable(LineoaExportError):
    """The event holds no value for a placeholder's name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Variable not found: {name}")


class Template:
    """A compiled JSON value whose strings may hold ``{{name}}`` placeholders."""

    __slots__ = ("_constant", "_renderer", "_source", "_variables")

    def __init__(
        self,
        source: object,
        constant: object,
        renderer: Renderer | None,
        variables: frozenset[str],
    ) -> None:
        # Use Template.compile(); this constructor trusts its arguments.
        self._source = source
        self._constant = constant
        self._renderer = renderer
        self._variables = variables

    @classmethod
    def compile(cls, value: object, *, path: str = "") -> Template:
        """Parse ``value`` once; raise one :class:`InvalidInput` naming every bad string.

        ``path`` prefixes each problem's path, e.g. ``path="messages"`` gives
        ``messages[1].altText: unbalanced "{{"``.
        """
        compiler = _Compiler()
        node = compiler.compile(value, path)
        if compiler.problems:
            raise InvalidInput(compiler.problems)
        variables = frozenset(compiler.variables)
        if isinstance(node, _Const):
            return cls(value, node.value, None, variables)
        return cls(value, None, node, variables)

    def render(self, event: Event) -> object:
        """A new JSON value with every placeholder filled from ``event``.

        Raises :class:`MissingVariable` for the first name the event does not hold.
        Parts without placeholders are shared with earlier renders: do not mutate them.
        """
        if self._renderer is None:
            return self._constant
        return self._renderer(event)

    @property
    def variables(self) -> frozenset[str]:
        """Dotted names used, e.g. ``{"first_name", "profile.line_user_id"}``."""
        return self._variables

    @property
    def has_placeholders(self) -> bool:
        return bool(self._variables)

    @property
    def source(self) -> object:
        """The value :meth:`compile` was given."""
        return self._source

    def __repr__(self) -> str:
        return f"Template({self._source!r})"


# --- compile ------------------------------------------------------------------------------


class _Const:
    """A compiled sub-tree with no placeholder: rendered by returning ``value`` itself."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


# What compiling one JSON value yields: a constant, or a function of the event.
_Node = _Const | Renderer


class _Compiler:
    """Turns a JSON value into a :data:`_Node`, collecting problems and variable names."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []
        self.variables: set[str] = set()

    def compile(self, value: object, path: str) -> _Node:
        if isinstance(value, str):
            return self._string(value, path)
        if isinstance(value, Mapping):
            return self._dict(value, path)
        if isinstance(value, list | tuple):
            return self._list(value, path)
        if value is None or isinstance(value, bool | int | float):
            return _Const(value)
        self.problems.append(FieldProblem(path, f"not a JSON value ({type(value).__name__})"))
        return _Const(value)

    def _dict(self, value: Mapping[object, object], path: str) -> _Node:
        base: dict[str, object] = {}
        live: list[tuple[str, Renderer]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                self.problems.append(FieldProblem(path, f"key {key!r} is not a string"))
                continue
            node = self.compile(item, _key_path(path, key))
            # Placeholder slots get None now so the copy keeps the source's key order.
            base[key] = node.value if isinstance(node, _Const) else None
            if not isinstance(node, _Const):
                live.append((key, node))
        if not live:
            return _Const(base)
        return _dict_renderer(base, tuple(live))

    def _list(self, value: list[object] | tuple[object, ...], path: str) -> _Node:
        base: list[object] = []
        live: list[tuple[int, Renderer]] = []
        for index, item in enumerate(value):
            node = self.compile(item, f"{path}[{index}]")
            base.append(node.value if isinstance(node, _Const) else None)
            if not isinstance(node, _Const):
                live.append((index, node))
        if not live:
            return _Const(base)
        return _list_renderer(base, tuple(live))

    def _string(self, text: str, path: str) -> _Node:
        parts = _parse(text, path, self.problems)
        if parts is None:
            return _Const(text)
        names = [p for p in parts if isinstance(p, _Name)]
        if not names:
            return _Const("".join(p for p in parts if isinstance(p, str)))
        self.variables.update(n.dotted for n in names)
        if len(parts) == 1:
            return _whole_renderer(_lookup(names[0]))
        return _text_renderer(tuple(p if isinstance(p, str) else _lookup(p) for p in parts))


class _Name:
    """A placeholder's name, split into lookup steps."""

    __slots__ = ("dotted", "steps")

    def __init__(self, dotted: str) -> None:
        self.dotted = dotted
        # Each step: the dict key, and the list index when the segment is all digits.
        self.steps: tuple[tuple[str, int | None], ...] = tuple(
            (seg, int(seg) if seg.isdigit() else None) for seg in dotted.split(".")
        )


def _parse(text: str, path: str, problems: list[FieldProblem]) -> list[str | _Name] | None:
    """Split ``text`` into merged literal runs and names; None if it has a problem."""
    parts: list[str | _Name] = []
    literal: list[str] = []
    ok = True
    i = 0
    while True:
        j = text.find(_OPEN, i)
        if j == -1:
            literal.append(text[i:])
            break
        if j > i and text[j - 1] == _ESCAPE:
            # ``\{{`` is a literal ``{{``; the backslash is dropped.
            literal.append(text[i : j - 1])
            literal.append(_OPEN)
            i = j + len(_OPEN)
            continue
        literal.append(text[i:j])
        end = text.find(_CLOSE, j + len(_OPEN))
        if end == -1:
            problems.append(FieldProblem(path, 'unbalanced "{{"'))
            return None
        name = text[j + len(_OPEN) : end].strip(" ")
        i = end + len(_CLOSE)
        if not name:
            problems.append(FieldProblem(path, "empty placeholder name"))
            ok = False
        elif not _NAME_RE.fullmatch(name):
            problems.append(FieldProblem(path, f"invalid placeholder name '{name}'"))
            ok = False
        else:
            _flush(literal, parts)
            parts.append(_Name(name))
    _flush(literal, parts)
    return parts if ok else None


def _flush(literal: list[str], parts: list[str | _Name]) -> None:
    """Move the pending literal pieces into ``parts`` as one string (dropping empty ones)."""
    run = "".join(literal)
    literal.clear()
    if run:
        parts.append(run)


def _key_path(path: str, key: str) -> str:
    if _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


# --- render -------------------------------------------------------------------------------
# Closures built once per template; render() only calls them, with no parsing or regex.

Lookup = Callable[[Event], object]


def _lookup(name: _Name) -> Lookup:
    dotted = name.dotted
    if len(name.steps) == 1:
        key = name.steps[0][0]

        # Most names are one top-level attribute: skip the walk loop.
        def top(event: Event) -> object:
            try:
                return event[key]
            except KeyError:
                raise MissingVariable(dotted) from None

        return top

    steps = name.steps

    def walk(event: Event) -> object:
        current: object = event
        for key, index in steps:
            current = _step(current, key, index, dotted)
        return current

    return walk


def _step(current: object, key: str, index: int | None, dotted: str) -> object:
    if isinstance(current, Mapping):
        try:
            return current[key]
        except KeyError:
            raise MissingVariable(dotted) from None
    if index is not None and isinstance(current, list | tuple) and index < len(current):
        return current[index]
    raise MissingVariable(dotted)


def _whole_renderer(lookup: Lookup) -> Renderer:
    def whole(event: Event) -> object:
        return _own(lookup(event))

    return whole


def _text_renderer(parts: tuple[str | Lookup, ...]) -> Renderer:
    def text(event: Event) -> object:
        return "".join([p if isinstance(p, str) else _as_text(p(event)) for p in parts])

    return text


def _dict_renderer(base: dict[str, object], live: tuple[tuple[str, Renderer], ...]) -> Renderer:
    def render_dict(event: Event) -> object:
        out = base.copy()
        for key, render in live:
            out[key] = render(event)
        return out

    return render_dict


def _list_renderer(base: list[object], live: tuple[tuple[int, Renderer], ...]) -> Renderer:
    def render_list(event: Event) -> object:
        out = base.copy()
        for index, render in live:
            out[index] = render(event)
        return out

    return render_list


def _own(value: object) -> object:
    """A deep copy of dicts and lists (so the output never aliases the event); else as is."""
    if isinstance(value, Mapping):
        return {k: _own(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_own(v) for v in value]
    return value


def _as_text(value: object) -> str:
    """How a value reads inside a longer string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)  # same as json.dumps for a plain int, and cheaper
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if isinstance(value, int | float):
        return json.dumps(value)
    # Not a JSON value (e.g. a datetime an event source let through): its str() is the best guess.
    return str(value)
