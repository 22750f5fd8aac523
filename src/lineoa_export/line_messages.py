"""Validation of LINE message objects and push request bodies, before LINE sees them.

LINE answers a bad message with ``400 The request body has N error(s)`` and a ``details`` list
naming each property; we check the same rules ourselves so that a bad activation is refused when
it is saved (not per event), and so that the LINE simulator can answer like LINE does.

Every checker appends :class:`FieldProblem` items to a shared :class:`_Ctx` and never raises:
input comes straight from ``json.loads`` (or from anywhere), so every value is type-checked
before use.  The walk has a fixed shape except for flex boxes, whose nesting is bounded by
``_MAX_FLEX_DEPTH``.  Character limits count UTF-16 code units, as LINE (a Java service) does.

``templated=True`` is for stored templates whose strings still hold ``{{placeholder}}`` markers:
such a string is accepted wherever a scalar is expected and its content checks are skipped, while
structure (required keys, list sizes, ``type`` values) is still checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeGuard

import orjson

from lineoa_export.errors import FieldProblem

__all__ = ["MAX_MESSAGES", "validate_messages", "validate_push_request"]

MAX_MESSAGES: Final = 5

_URL_MAX: Final = 2000  # every content URL (image, video, audio, preview, icon, imagemap base)
_ACTION_URI_MAX: Final = 1000
_ALT_TEXT_MAX: Final = 1500
_BUBBLE_BYTES_MAX: Final = 30_000
_CAROUSEL_BYTES_MAX: Final = 50_000
_INT32_MAX: Final = 2**31 - 1
_INT64_MAX: Final = 2**63 - 1
_MAX_FLEX_DEPTH: Final = 32  # flex boxes nest; real designs stay far below this

_HTTPS: Final = ("https",)
_ACTION_SCHEMES: Final = ("http", "https", "line", "tel")

# Compiled once: validate_push_request runs on every simulator request.
_TO_RE: Final = re.compile(r"[UCR][0-9a-f]{32}")


def is_recipient_id(value: object) -> TypeGuard[str]:
    """A LINE user, group or room ID: U, C or R and 32 lowercase hex digits, nothing else."""
    return isinstance(value, str) and _TO_RE.fullmatch(value) is not None


_UNIT_RE: Final = re.compile(r"[a-zA-Z0-9_]{1,30}")
_TEXTV2_REF_RE: Final = re.compile(r"\{([^{}]*)\}")

_Obj = dict[str, Any]


class _Ctx:
    """The problems found so far and the mode; passed to every checker."""

    __slots__ = ("problems", "templated")

    def __init__(self, templated: bool) -> None:
        self.problems: list[FieldProblem] = []
        self.templated = templated

    def add(self, path: str, reason: str) -> None:
        self.problems.append(FieldProblem(path, reason))

    def placeholder(self, value: object) -> bool:
        """True when ``value`` is a ``{{...}}`` string whose real value arrives per event."""
        return self.templated and isinstance(value, str) and "{{" in value


# --------------------------------------------------------------------------- scalar helpers


def utf16_len(s: str) -> int:
    """The length LINE counts: UTF-16 code units."""
    if s.isascii():
        return len(s)
    # surrogatepass: json.loads can produce lone surrogates; each counts as one unit.
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def _too_long(s: str, limit: int) -> bool:
    n = len(s)
    if n > limit:  # UTF-16 length is never below the code point count
        return True
    if 2 * n <= limit:  # nor above twice it
        return False
    return utf16_len(s) > limit


def _str(
    c: _Ctx,
    obj: _Obj,
    key: str,
    path: str,
    *,
    required: bool = True,
    max_len: int | None = None,
    non_empty: bool = False,
) -> str | None:
    """Check ``obj[key]`` is a string within limits; return it (or None when absent/wrong)."""
    v = obj.get(key)
    if v is None:
        if required:
            c.add(f"{path}.{key}", "required")
        return None
    if not isinstance(v, str):
        c.add(f"{path}.{key}", "must be a string")
        return None
    if c.templated and "{{" in v:
        return v
    if non_empty and not v:
        c.add(f"{path}.{key}", "must not be empty")
    elif max_len is not None and _too_long(v, max_len):
        c.add(f"{path}.{key}", f"longer than {max_len}")
    return v


def _url(
    c: _Ctx,
    obj: _Obj,
    key: str,
    path: str,
    *,
    required: bool = True,
    max_len: int = _URL_MAX,
    schemes: tuple[str, ...] = _HTTPS,
) -> None:
    v = obj.get(key)
    if v is None:
        if required:
            c.add(f"{path}.{key}", "required")
        return
    if not isinstance(v, str):
        c.add(f"{path}.{key}", "must be a string")
        return
    if c.templated and "{{" in v:
        return
    scheme, sep, rest = v.partition(":")
    scheme = scheme.lower()
    # http(s) needs a host after "//"; line: and tel: URIs have no authority part.
    ok = bool(sep) and scheme in schemes and bool(rest)
    if ok and scheme in ("http", "https"):
        ok = rest.startswith("//") and len(rest) > 2
    if not ok:
        if schemes == _HTTPS:
            c.add(f"{path}.{key}", "must be an https URL")
        else:
            c.add(f"{path}.{key}", "must be an http, https, line or tel URL")
    if len(v) > max_len:  # URLs count characters; a URL beyond ASCII is rare enough
        c.add(f"{path}.{key}", f"longer than {max_len}")


def _int(
    c: _Ctx,
    obj: _Obj,
    key: str,
    path: str,
    *,
    required: bool = True,
    minimum: int | None = None,
    maximum: int = _INT32_MAX,
) -> None:
    v = obj.get(key)
    if v is None:
        if required:
            c.add(f"{path}.{key}", "required")
        return
    if c.placeholder(v):
        return
    # bool is an int subclass in Python, but true/false is not a number in JSON.
    if not isinstance(v, int) or isinstance(v, bool):
        c.add(f"{path}.{key}", "must be an integer")
    elif minimum is not None and v < minimum:
        c.add(f"{path}.{key}", "must be positive" if minimum == 1 else f"must be at least {minimum}")
    elif v > maximum:  # LINE parses these into Java int/long fields
        c.add(f"{path}.{key}", f"must be at most {maximum}")


def _number(c: _Ctx, obj: _Obj, key: str, path: str, low: float, high: float) -> None:
    v = obj.get(key)
    if v is None:
        c.add(f"{path}.{key}", "required")
    elif c.placeholder(v):
        return
    elif not isinstance(v, int | float) or isinstance(v, bool):
        c.add(f"{path}.{key}", "must be a number")
    elif not low <= v <= high:  # also false for NaN and infinities; safe for huge ints
        c.add(f"{path}.{key}", f"must be between {low:g} and {high:g}")


def _enum(c: _Ctx, obj: _Obj, key: str, path: str, choices: frozenset[str], *, required: bool = False) -> None:
    v = obj.get(key)
    if v is None:
        if required:
            c.add(f"{path}.{key}", "required")
        return
    if c.placeholder(v):
        return
    if not isinstance(v, str):
        c.add(f"{path}.{key}", "must be a string")
    elif v not in choices:
        c.add(f"{path}.{key}", "must be one of " + ", ".join(sorted(choices)))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _count(c: _Ctx, seq: list[Any], path: str, noun: str, lo: int, hi: int) -> None:
    if len(seq) < lo:
        c.add(path, f"at least {_plural(lo, noun)}")
    elif len(seq) > hi:
        c.add(path, f"at most {_plural(hi, noun)}")


def _list(
    c: _Ctx, obj: _Obj, key: str, path: str, noun: str, lo: int, hi: int, *, required: bool = True
) -> list[Any] | None:
    """Check ``obj[key]`` is a list of lo..hi elements; return it when it is a list."""
    v = obj.get(key)
    p = f"{path}.{key}"
    if v is None:
        if required:
            c.add(p, "required")
        return None
    if not isinstance(v, list):
        c.add(p, "must be a list")
        return None
    _count(c, v, p, noun, lo, hi)
    return v


def _obj(c: _Ctx, obj: _Obj, key: str, path: str, *, required: bool = True) -> _Obj | None:
    v = obj.get(key)
    if v is None:
        if required:
            c.add(f"{path}.{key}", "required")
        return None
    if not isinstance(v, dict):
        c.add(f"{path}.{key}", "must be an object")
        return None
    return v


def _kind(c: _Ctx, obj: _Obj, path: str, known: dict[str, Any] | frozenset[str], what: str) -> str | None:
    """Read a discriminating ``type``; structural, so a placeholder never stands in for it."""
    t = obj.get("type")
    if t is None:
        c.add(f"{path}.type", "required")
        return None
    if not isinstance(t, str):
        c.add(f"{path}.type", "must be a string")
        return None
    if t not in known:
        c.add(f"{path}.type", f"unknown {what} type '{t[:50]}'")
        return None
    return t


def _each_obj(c: _Ctx, seq: list[Any], path: str) -> list[tuple[_Obj, str]]:
    """The dict elements of ``seq`` with their paths; non-dicts are reported."""
    out: list[tuple[_Obj, str]] = []
    for i, item in enumerate(seq):
        p = f"{path}[{i}]"
        if isinstance(item, dict):
            out.append((item, p))
        else:
            c.add(p, "must be an object")
    return out


# --------------------------------------------------------------------------- actions


def _postback(c: _Ctx, a: _Obj, p: str) -> None:
    _str(c, a, "data", p, max_len=300)
    _str(c, a, "displayText", p, required=False, max_len=300)
    _str(c, a, "text", p, required=False, max_len=300)
    _enum(c, a, "inputOption", p, frozenset({"closeRichMenu", "openRichMenu", "openKeyboard", "openVoice"}))
    _str(c, a, "fillInText", p, required=False, max_len=300)


def _message_action(c: _Ctx, a: _Obj, p: str) -> None:
    _str(c, a, "text", p, max_len=300, non_empty=True)


def _uri_action(c: _Ctx, a: _Obj, p: str) -> None:
    _url(c, a, "uri", p, max_len=_ACTION_URI_MAX, schemes=_ACTION_SCHEMES)
    alt = _obj(c, a, "altUri", p, required=False)
    if alt is not None:
        _url(c, alt, "desktop", f"{p}.altUri", max_len=_ACTION_URI_MAX, schemes=_ACTION_SCHEMES)


def _datetimepicker(c: _Ctx, a: _Obj, p: str) -> None:
    _str(c, a, "data", p, max_len=300)
    _enum(c, a, "mode", p, frozenset({"date", "time", "datetime"}), required=True)
    for key in ("initial", "max", "min"):
        _str(c, a, key, p, required=False)


def _richmenuswitch(c: _Ctx, a: _Obj, p: str) -> None:
    _str(c, a, "richMenuAliasId", p, max_len=32, non_empty=True)
    _str(c, a, "data", p, max_len=300)


def _clipboard(c: _Ctx, a: _Obj, p: str) -> None:
    _str(c, a, "clipboardText", p, max_len=1000, non_empty=True)


def _label_only(c: _Ctx, a: _Obj, p: str) -> None:
    """camera, cameraRoll and location actions carry nothing but a label."""


_ACTIONS: Final[dict[str, Callable[[_Ctx, _Obj, str], None]]] = {
    "postback": _postback,
    "message": _message_action,
    "uri": _uri_action,
    "datetimepicker": _datetimepicker,
    "camera": _label_only,
    "cameraRoll": _label_only,
    "location": _label_only,
    "richmenuswitch": _richmenuswitch,
    "clipboard": _clipboard,
}


def _action(c: _Ctx, a: object, p: str, *, label_required: bool = True, label_max: int = 20) -> None:
    """One action object; buttons and quick replies need a label, default actions do not."""
    if not isinstance(a, dict):
        c.add(p, "must be an object")
        return
    t = _kind(c, a, p, _ACTIONS, "action")
    _str(c, a, "label", p, required=label_required, max_len=label_max)
    if t is not None:
        _ACTIONS[t](c, a, p)


def _action_list(c: _Ctx, obj: _Obj, path: str, lo: int, hi: int) -> int | None:
    """A template's ``actions``; returns how many there are (for carousel consistency)."""
    actions = _list(c, obj, "actions", path, "action", lo, hi)
    if actions is None:
        return None
    for i, a in enumerate(actions):
        _action(c, a, f"{path}.actions[{i}]")
    return len(actions)


# --------------------------------------------------------------------------- common fields


def _quick_reply(c: _Ctx, m: _Obj, path: str) -> None:
    qr = _obj(c, m, "quickReply", path, required=False)
    if qr is None:
        return
    p = f"{path}.quickReply"
    items = _list(c, qr, "items", p, "item", 1, 13)
    if items is None:
        return
    for item, ip in _each_obj(c, items, f"{p}.items"):
        t = item.get("type")
        if t != "action":
            c.add(f"{ip}.type", "required" if t is None else "must be 'action'")
        _url(c, item, "imageUrl", ip, required=False)
        if "action" not in item:
            c.add(f"{ip}.action", "required")
        else:
            _action(c, item["action"], f"{ip}.action")


def _sender(c: _Ctx, m: _Obj, path: str) -> None:
    s = _obj(c, m, "sender", path, required=False)
    if s is None:
        return
    p = f"{path}.sender"
    _str(c, s, "name", p, required=False, max_len=20, non_empty=True)
    _url(c, s, "iconUrl", p, required=False)


# --------------------------------------------------------------------------- message types


def _text(c: _Ctx, m: _Obj, p: str) -> None:
    _str(c, m, "text", p, max_len=5000, non_empty=True)
    _str(c, m, "quoteToken", p, required=False)
    emojis = _list(c, m, "emojis", p, "emoji", 0, 20, required=False)
    if emojis is None:
        return
    text = m.get("text")
    for e, ep in _each_obj(c, emojis, f"{p}.emojis"):
        _int(c, e, "index", ep, minimum=0)
        _str(c, e, "productId", ep)
        _str(c, e, "emojiId", ep)
        index = e.get("index")
        if isinstance(text, str) and isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            _emoji_anchor(c, text, index, ep)


def _emoji_anchor(c: _Ctx, text: str, index: int, path: str) -> None:
    """LINE answers 400 unless an emoji's ``index`` (UTF-16 units) lands on a ``$`` of the text.

    In a template the index counts in the text as written; it moves with its ``$`` when the
    placeholders before it are filled (:mod:`lineoa_export.activations`). A text that is one whole
    placeholder is known only per event, and is checked then.
    """
    if c.templated and is_whole_placeholder(text):
        return
    if utf16_char_at(text, index) != "$":
        c.add(f"{path}.index", f"{index} is not the position of a '$' in the text (counted in UTF-16 units)")


_WHOLE_PLACEHOLDER: Final = re.compile(r"\{\{[^{}]*\}\}")


def is_whole_placeholder(text: str) -> bool:
    """True for a template string that is one placeholder and nothing else (``"{{ greeting }}"``)."""
    return _WHOLE_PLACEHOLDER.fullmatch(text) is not None


def utf16_prefix(text: str, units: int) -> str:
    """The first ``units`` UTF-16 code units of ``text``, as a str."""
    if text.isascii():
        return text[:units]
    return text.encode("utf-16-le", "surrogatepass")[: 2 * units].decode("utf-16-le", "surrogatepass")


def utf16_char_at(text: str, units: int) -> str | None:
    """The character starting at UTF-16 unit ``units``, or None past the end or inside a pair."""
    if text.isascii():
        return text[units] if units < len(text) else None
    encoded = text.encode("utf-16-le", "surrogatepass")
    if 2 * units + 2 > len(encoded):
        return None
    unit = encoded[2 * units : 2 * units + 2].decode("utf-16-le", "surrogatepass")
    return None if "\udc00" <= unit <= "\udfff" else unit


_SUBSTITUTION_TYPES: Final = frozenset({"mention", "emoji"})
_MENTION_TARGETS: Final = frozenset({"user", "all"})


def _text_v2(c: _Ctx, m: _Obj, p: str) -> None:
    text = _str(c, m, "text", p, max_len=5000, non_empty=True)
    _str(c, m, "quoteToken", p, required=False)
    subs = _obj(c, m, "substitution", p, required=False)
    sp = f"{p}.substitution"
    for key, sub in (subs or {}).items():
        kp = f"{sp}.{key}"
        if not isinstance(sub, dict):
            c.add(kp, "must be an object")
            continue
        t = _kind(c, sub, kp, _SUBSTITUTION_TYPES, "substitution")
        if t == "emoji":
            _str(c, sub, "productId", kp)
            _str(c, sub, "emojiId", kp)
        elif t == "mention":
            target = _obj(c, sub, "mentionee", kp)
            mp = f"{kp}.mentionee"
            if target is not None and _kind(c, target, mp, _MENTION_TARGETS, "mentionee") == "user":
                _str(c, target, "userId", mp)
    if text is None or "{" not in text:
        return
    # "{{" and "}}" are escaped literal braces (and our own placeholders), not references.
    bare = text.replace("{{", "").replace("}}", "")
    have = subs if subs is not None else {}
    for name in dict.fromkeys(_TEXTV2_REF_RE.findall(bare)):
        if name not in have:
            c.add(f"{sp}.{name}", f"required: text references {{{name}}}")


def _sticker(c: _Ctx, m: _Obj, p: str) -> None:
    _str(c, m, "packageId", p, non_empty=True)
    _str(c, m, "stickerId", p, non_empty=True)
    _str(c, m, "quoteToken", p, required=False)


def _image(c: _Ctx, m: _Obj, p: str) -> None:
    _url(c, m, "originalContentUrl", p)
    _url(c, m, "previewImageUrl", p)


def _video(c: _Ctx, m: _Obj, p: str) -> None:
    _url(c, m, "originalContentUrl", p)
    _url(c, m, "previewImageUrl", p)
    _str(c, m, "trackingId", p, required=False, max_len=100, non_empty=True)


def _audio(c: _Ctx, m: _Obj, p: str) -> None:
    _url(c, m, "originalContentUrl", p)
    _int(c, m, "duration", p, minimum=1, maximum=_INT64_MAX)  # milliseconds


def _location(c: _Ctx, m: _Obj, p: str) -> None:
    _str(c, m, "title", p, max_len=100, non_empty=True)
    _str(c, m, "address", p, max_len=100, non_empty=True)
    _number(c, m, "latitude", p, -90, 90)
    _number(c, m, "longitude", p, -180, 180)


def _area(c: _Ctx, obj: _Obj, path: str) -> None:
    area = _obj(c, obj, "area", path)
    if area is not None:
        p = f"{path}.area"
        _int(c, area, "x", p, minimum=0)
        _int(c, area, "y", p, minimum=0)
        _int(c, area, "width", p, minimum=1)
        _int(c, area, "height", p, minimum=1)


_IMAGEMAP_ACTIONS: Final = frozenset({"uri", "message", "clipboard"})


def _imagemap(c: _Ctx, m: _Obj, p: str) -> None:
    _url(c, m, "baseUrl", p)
    _str(c, m, "altText", p, max_len=_ALT_TEXT_MAX, non_empty=True)
    size = _obj(c, m, "baseSize", p)
    if size is not None:
        _int(c, size, "width", f"{p}.baseSize", minimum=1)
        _int(c, size, "height", f"{p}.baseSize", minimum=1)
    actions = _list(c, m, "actions", p, "action", 0, 50)
    for a, ap in _each_obj(c, actions or [], f"{p}.actions"):
        t = _kind(c, a, ap, _IMAGEMAP_ACTIONS, "imagemap action")
        _str(c, a, "label", ap, required=False)
        _area(c, a, ap)
        if t == "uri":
            _url(c, a, "linkUri", ap, max_len=_ACTION_URI_MAX, schemes=_ACTION_SCHEMES)
        elif t == "message":
            _str(c, a, "text", ap, max_len=400, non_empty=True)
        elif t == "clipboard":
            _str(c, a, "clipboardText", ap, max_len=1000, non_empty=True)
    video = _obj(c, m, "video", p, required=False)
    if video is not None:
        vp = f"{p}.video"
        _url(c, video, "originalContentUrl", vp)
        _url(c, video, "previewImageUrl", vp)
        _area(c, video, vp)
        link = _obj(c, video, "externalLink", vp, required=False)
        if link is not None:
            _url(c, link, "linkUri", f"{vp}.externalLink", max_len=_ACTION_URI_MAX, schemes=_ACTION_SCHEMES)
            _str(c, link, "label", f"{vp}.externalLink", max_len=30)


def _coupon(c: _Ctx, m: _Obj, p: str) -> None:
    _str(c, m, "couponId", p, non_empty=True)
    _str(c, m, "deliveryTag", p, required=False, max_len=30)


# --------------------------------------------------------------------------- templates

_ASPECT: Final = frozenset({"rectangle", "square"})
_IMAGE_SIZE: Final = frozenset({"cover", "contain"})


def _default_action(c: _Ctx, t: _Obj, p: str) -> None:
    if "defaultAction" in t:
        _action(c, t["defaultAction"], f"{p}.defaultAction", label_required=False)


def _buttons(c: _Ctx, t: _Obj, p: str) -> None:
    _url(c, t, "thumbnailImageUrl", p, required=False)
    _enum(c, t, "imageAspectRatio", p, _ASPECT)
    _enum(c, t, "imageSize", p, _IMAGE_SIZE)
    _str(c, t, "title", p, required=False, max_len=40)
    # LINE leaves less room for the text once a title or an image takes space.
    short = "title" in t or "thumbnailImageUrl" in t
    _str(c, t, "text", p, max_len=60 if short else 160, non_empty=True)
    _default_action(c, t, p)
    _action_list(c, t, p, 1, 4)


def _confirm(c: _Ctx, t: _Obj, p: str) -> None:
    _str(c, t, "text", p, max_len=240, non_empty=True)
    actions = _list(c, t, "actions", p, "action", 2, 2)
    if actions is None:
        return
    for i, a in enumerate(actions):
        _action(c, a, f"{p}.actions[{i}]")


def _carousel(c: _Ctx, t: _Obj, p: str) -> None:
    _enum(c, t, "imageAspectRatio", p, _ASPECT)
    _enum(c, t, "imageSize", p, _IMAGE_SIZE)
    columns = _list(c, t, "columns", p, "column", 1, 10)
    first: int | None = None
    for col, cp in _each_obj(c, columns or [], f"{p}.columns"):
        _url(c, col, "thumbnailImageUrl", cp, required=False)
        _str(c, col, "title", cp, required=False, max_len=40)
        short = "title" in col or "thumbnailImageUrl" in col
        _str(c, col, "text", cp, max_len=60 if short else 120, non_empty=True)
        _default_action(c, col, cp)
        n = _action_list(c, col, cp, 1, 3)
        # LINE renders columns side by side and requires the same number of buttons in each.
        if first is None:
            first = n
        elif n is not None and n != first:
            c.add(f"{cp}.actions", f"must have as many actions as the first column ({first})")


def _image_carousel(c: _Ctx, t: _Obj, p: str) -> None:
    columns = _list(c, t, "columns", p, "column", 1, 10)
    for col, cp in _each_obj(c, columns or [], f"{p}.columns"):
        _url(c, col, "imageUrl", cp)
        if "action" not in col:
            c.add(f"{cp}.action", "required")
        else:
            _action(c, col["action"], f"{cp}.action", label_required=False, label_max=12)


_TEMPLATES: Final[dict[str, Callable[[_Ctx, _Obj, str], None]]] = {
    "buttons": _buttons,
    "confirm": _confirm,
    "carousel": _carousel,
    "image_carousel": _image_carousel,
}


def _template(c: _Ctx, m: _Obj, p: str) -> None:
    _str(c, m, "altText", p, max_len=_ALT_TEXT_MAX, non_empty=True)
    t = _obj(c, m, "template", p)
    if t is not None:
        tp = f"{p}.template"
        kind = _kind(c, t, tp, _TEMPLATES, "template")
        if kind is not None:
            _TEMPLATES[kind](c, t, tp)


# --------------------------------------------------------------------------- flex

_POSITION: Final = frozenset({"relative", "absolute"})
_ALIGN: Final = frozenset({"start", "end", "center"})
_GRAVITY: Final = frozenset({"top", "bottom", "center"})
_WEIGHT: Final = frozenset({"regular", "bold"})
_DECORATION: Final = frozenset({"none", "underline", "line-through"})
_FONT_STYLE: Final = frozenset({"normal", "italic"})
_ADJUST: Final = frozenset({"shrink-to-fit"})

# Keyword-valued properties per component type; checked generically.
_FLEX_ENUMS: Final[dict[str, dict[str, frozenset[str]]]] = {
    "box": {
        "layout": frozenset({"horizontal", "vertical", "baseline"}),
        "position": _POSITION,
        "justifyContent": frozenset(
            {"center", "flex-start", "flex-end", "space-between", "space-around", "space-evenly"}
        ),
        "alignItems": frozenset({"center", "flex-start", "flex-end"}),
    },
    "button": {
        "style": frozenset({"primary", "secondary", "link"}),
        "height": frozenset({"sm", "md"}),
        "gravity": _GRAVITY,
        "position": _POSITION,
        "adjustMode": _ADJUST,
    },
    "image": {
        "align": _ALIGN,
        "gravity": _GRAVITY,
        "position": _POSITION,
        "aspectMode": frozenset({"fit", "cover"}),
    },
    "video": {},
    "icon": {"position": _POSITION},
    "text": {
        "align": _ALIGN,
        "gravity": _GRAVITY,
        "weight": _WEIGHT,
        "style": _FONT_STYLE,
        "decoration": _DECORATION,
        "position": _POSITION,
        "adjustMode": _ADJUST,
    },
    "span": {"weight": _WEIGHT, "style": _FONT_STYLE, "decoration": _DECORATION},
    "separator": {},
    "filler": {},
}
_BOX_CHILDREN: Final = frozenset(_FLEX_ENUMS) - {"span", "video"}  # spans live in text, video in hero
_HERO: Final = frozenset({"box", "image", "video"})
_BOX_ONLY: Final = frozenset({"box"})


def _flex_component(c: _Ctx, comp: object, p: str, depth: int, allowed: frozenset[str]) -> None:
    t = _flex_kind(c, comp, p, depth, allowed)
    if t is None:
        return
    assert isinstance(comp, dict)
    for key, choices in _FLEX_ENUMS[t].items():
        _enum(c, comp, key, p, choices, required=key == "layout")
    _flex_int(c, comp, p)
    check = _FLEX_CHECKS.get(t)
    if check is not None:
        check(c, comp, p, depth)
    if t != "button" and "action" in comp:  # a button's action is checked as its own, required
        _action(c, comp["action"], f"{p}.action", label_required=False, label_max=40)


def _flex_kind(c: _Ctx, comp: object, p: str, depth: int, allowed: frozenset[str]) -> str | None:
    """The component's type when it is an object of a type allowed here, else None (problem noted)."""
    if depth > _MAX_FLEX_DEPTH:
        c.add(p, f"nested too deeply (more than {_MAX_FLEX_DEPTH} levels)")
        return None
    if not isinstance(comp, dict):
        c.add(p, "must be an object")
        return None
    t = _kind(c, comp, p, _FLEX_ENUMS, "flex component")
    if t is not None and t not in allowed:
        c.add(f"{p}.type", f"'{t}' not allowed here")
        return None
    return t


def _flex_box(c: _Ctx, comp: _Obj, p: str, depth: int) -> None:
    children = _list(c, comp, "contents", p, "component", 0, 10_000)
    for i, child in enumerate(children or []):
        _flex_component(c, child, f"{p}.contents[{i}]", depth + 1, _BOX_CHILDREN)


def _flex_button(c: _Ctx, comp: _Obj, p: str, depth: int) -> None:
    if "action" not in comp:
        c.add(f"{p}.action", "required")
    else:
        _action(c, comp["action"], f"{p}.action", label_max=40)


def _flex_image(c: _Ctx, comp: _Obj, p: str, depth: int) -> None:
    _url(c, comp, "url", p)


def _flex_video(c: _Ctx, comp: _Obj, p: str, depth: int) -> None:
    _url(c, comp, "url", p)
    _url(c, comp, "previewUrl", p)
    if "altContent" not in comp:
        c.add(f"{p}.altContent", "required")
    else:
        _flex_component(c, comp["altContent"], f"{p}.altContent", depth + 1, frozenset({"box", "image"}))


def _flex_text(c: _Ctx, comp: _Obj, p: str, depth: int) -> None:
    spans = _list(c, comp, "contents", p, "span", 0, 10_000, required=False)
    _str(c, comp, "text", p, required=spans is None)
    for i, span in enumerate(spans or []):
        _flex_component(c, span, f"{p}.contents[{i}]", depth + 1, frozenset({"span"}))


def _flex_span(c: _Ctx, comp: _Obj, p: str, depth: int) -> None:
    _str(c, comp, "text", p)


# What each flex component type must hold besides its enumerated properties.
_FLEX_CHECKS: Final[dict[str, Callable[[_Ctx, _Obj, str, int], None]]] = {
    "box": _flex_box,
    "button": _flex_button,
    "image": _flex_image,
    "icon": _flex_image,
    "video": _flex_video,
    "text": _flex_text,
    "span": _flex_span,
}


def _flex_int(c: _Ctx, comp: _Obj, p: str) -> None:
    """``flex`` and ``maxLines`` are the integer-valued layout properties."""
    for key in ("flex", "maxLines"):
        if key in comp:
            _int(c, comp, key, p, minimum=0)


_BUBBLE_SIZES: Final = frozenset({"nano", "micro", "deca", "hecto", "kilo", "mega", "giga"})


def _bubble(c: _Ctx, b: _Obj, p: str) -> None:
    _enum(c, b, "size", p, _BUBBLE_SIZES)
    _enum(c, b, "direction", p, frozenset({"ltr", "rtl"}))
    blocks = (("header", _BOX_ONLY), ("hero", _HERO), ("body", _BOX_ONLY), ("footer", _BOX_ONLY))
    for block, allowed in blocks:
        if block in b:
            _flex_component(c, b[block], f"{p}.{block}", 1, allowed)
    if "action" in b:
        _action(c, b["action"], f"{p}.action", label_required=False, label_max=40)


def _json_size(c: _Ctx, value: object, p: str) -> int | None:
    """Compact UTF-8 JSON size as LINE measures it; None (and a problem) if not serializable."""
    try:
        return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError as exc:  # orjson stops at 255 levels instead of overflowing
        c.add(p, "nested too deeply" if "ecursion" in str(exc) else "is not plain JSON")
        return None


def _flex(c: _Ctx, m: _Obj, p: str) -> None:
    _str(c, m, "altText", p, max_len=_ALT_TEXT_MAX, non_empty=True)
    contents = _obj(c, m, "contents", p)
    if contents is None:
        return
    cp = f"{p}.contents"
    kind = _kind(c, contents, cp, frozenset({"bubble", "carousel"}), "flex container")
    if kind == "bubble":
        _bubble(c, contents, cp)
        size = _json_size(c, contents, cp)
        if size is not None and size > _BUBBLE_BYTES_MAX:
            c.add(cp, f"larger than {_BUBBLE_BYTES_MAX} bytes")
    elif kind == "carousel":
        bubbles = _list(c, contents, "contents", cp, "bubble", 1, 12)
        for b, bp in _each_obj(c, bubbles or [], f"{cp}.contents"):
            if _kind(c, b, bp, frozenset({"bubble"}), "carousel item") is not None:
                _bubble(c, b, bp)
        size = _json_size(c, contents, cp)
        if size is not None and size > _CAROUSEL_BYTES_MAX:
            c.add(cp, f"larger than {_CAROUSEL_BYTES_MAX} bytes")
        # Each bubble also has its own limit; only worth measuring when the whole could hide one.
        if size is not None and size > _BUBBLE_BYTES_MAX:
            for b, bp in _each_obj(c, bubbles or [], f"{cp}.contents"):
                bsize = _json_size(c, b, bp)
                if bsize is not None and bsize > _BUBBLE_BYTES_MAX:
                    c.add(bp, f"larger than {_BUBBLE_BYTES_MAX} bytes")


# --------------------------------------------------------------------------- entry points

_MESSAGES: Final[dict[str, Callable[[_Ctx, _Obj, str], None]]] = {
    "text": _text,
    "textV2": _text_v2,
    "sticker": _sticker,
    "image": _image,
    "video": _video,
    "audio": _audio,
    "location": _location,
    "imagemap": _imagemap,
    "template": _template,
    "flex": _flex,
    "coupon": _coupon,
}


def _messages(c: _Ctx, value: object, path: str) -> None:
    if not isinstance(value, list):
        c.add(path, "required" if value is None else "must be a list")
        return
    _count(c, value, path, "message", 1, MAX_MESSAGES)
    for m, mp in _each_obj(c, value, path):
        t = _kind(c, m, mp, _MESSAGES, "message")
        if t is not None:
            _MESSAGES[t](c, m, mp)
        if "quickReply" in m:
            _quick_reply(c, m, mp)
        if "sender" in m:
            _sender(c, m, mp)


def validate_messages(value: object, *, templated: bool = False, path: str = "messages") -> list[FieldProblem]:
    """Every problem with a LINE messages array (1 to 5 message objects); empty when valid.

    ``templated``: strings containing ``{{`` stand for values known only per event; they are
    accepted wherever a scalar is expected and their content is not checked.
    """
    c = _Ctx(templated)
    _messages(c, value, path)
    return c.problems


def validate_push_request(body: object) -> list[FieldProblem]:
    """Every problem with a push request body, as LINE's push endpoint checks it."""
    c = _Ctx(False)
    if not isinstance(body, dict):
        c.add("", "request body must be a JSON object")
        return c.problems
    to = body.get("to")
    if to is None:
        c.add("to", "required")
    elif not isinstance(to, str):
        c.add("to", "must be a string")
    elif _TO_RE.fullmatch(to) is None:
        c.add("to", "must be a user, group or room ID (U, C or R and 32 lowercase hex digits)")
    _messages(c, body.get("messages"), "messages")
    if not isinstance(body.get("notificationDisabled", False), bool):
        c.add("notificationDisabled", "must be true or false")
    units = body.get("customAggregationUnits")
    if units is not None:
        if not isinstance(units, list):
            c.add("customAggregationUnits", "must be a list")
        else:
            _count(c, units, "customAggregationUnits", "unit", 0, 1)
            for i, u in enumerate(units):
                if not isinstance(u, str) or _UNIT_RE.fullmatch(u) is None:
                    c.add(f"customAggregationUnits[{i}]", "must be 1 to 30 letters, digits or underscores")
    return c.problems
