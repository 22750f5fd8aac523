"""LINE messages drawn the way a LINE chat shows them: safe HTML for the console's preview.

:func:`render_chat` turns the ``messages`` of a push body (already templated) into a :class:`Chat`:
one row per message (the bot's avatar and name at the left, then the bubble), the last message's
quick-reply chips, and the page's extra CSS. :func:`render_message` draws one message object;
the Jinja partial ``_chat_preview.html`` draws the phone around the rows.

Everything in a message is user input, shown to other users of the console. The rule a reader
must not break here: no payload value reaches the HTML except through :func:`markupsafe.escape`
(by :func:`_el`), and a payload value becomes

- an ``<img src>`` only when it is an ``https`` URL with a host (:func:`_https`); no link is ever
  made (action buttons are drawn as labels, their target only in an escaped ``title``);
- a CSS value only when it matches a strict pattern: colours ``^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$``,
  lengths ``^[0-9]{1,4}(\\.[0-9]{1,2})?(px|%)$``, aspect ratios ``W:H`` of plain numbers;
- a class name only when it is one of LINE's keywords listed in this module.

Why a ``<style nonce>`` block: the console's CSP allows styles only from ``'self'``, so inline
``style=`` attributes are refused. Keyword properties (sizes, weights, aligns, layouts) map to a
fixed class set in ``static/chat_preview.css``. Values that are free in the JSON — colours,
pixel lengths, aspect ratios — become classes named after the validated value (``cp-fg-06c755``)
whose rules :class:`Sheet` writes into one ``<style nonce="…">`` element in the page's head; that
response alone carries ``'nonce-…'`` in ``style-src`` (fresh per response). A nonce admits a
``<style>`` element, never a ``style=`` attribute, and no ``'unsafe-inline'`` is added; the block
holds only rules built here from validated values, so payload text can add no style. A per-preview
stylesheet URL would also keep ``'self'`` but would carry the payload's values in a second request
(and a cache); the nonce keeps them in the one answer that shows them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from markupsafe import Markup, escape

__all__ = ["Chat", "Row", "Sheet", "render_chat", "render_message"]

Obj = dict[str, Any]

COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}(?:[0-9a-fA-F]{2})?")
LENGTH: Final = re.compile(r"([0-9]{1,4}(?:\.[0-9]{1,2})?)(px|%)")
RATIO: Final = re.compile(r"([0-9]{1,5}(?:\.[0-9]{1,3})?):([0-9]{1,5}(?:\.[0-9]{1,3})?)")
LINE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")  # sticker, package, product and emoji IDs
EMOJI_URL: Final = "https://stickershop.line-scdn.net/sticonshop/v1/sticon/{product}/iPhone/{emoji}.png"
STICKER_URL: Final = "https://stickershop.line-scdn.net/stickershop/v1/sticker/{sticker}/android/sticker.png"
MAX_DEPTH: Final = 40  # flex boxes nest; a saved payload stays under 32 (line_messages)

# LINE's keywords, each drawn by a fixed class in static/chat_preview.css (a test checks they exist).
SPACES: Final = ("none", "xs", "sm", "md", "lg", "xl", "xxl")  # spacing, margin, padding, cornerRadius
TEXT_SIZES: Final = ("xxs", "xs", "sm", "md", "lg", "xl", "xxl", "3xl", "4xl", "5xl")  # text, span, icon
IMAGE_SIZES: Final = (*TEXT_SIZES, "full")
BORDER_WIDTHS: Final = ("none", "light", "normal", "medium", "semi-bold", "bold")
BUBBLE_SIZES: Final = ("nano", "micro", "deca", "hecto", "kilo", "mega", "giga")
LAYOUTS: Final = {"vertical": "v", "horizontal": "h", "baseline": "b"}
ALIGNS: Final = ("start", "end", "center")
GRAVITIES: Final = ("top", "bottom", "center")
JUSTIFY: Final = ("center", "flex-start", "flex-end", "space-between", "space-around", "space-evenly")
ALIGN_ITEMS: Final = ("center", "flex-start", "flex-end")
BUTTON_STYLES: Final = ("primary", "secondary", "link")
DECORATIONS: Final = ("underline", "line-through")
MAX_FLEX: Final = 12  # flex grows above this are drawn as 12
MAX_LINES: Final = 10

_COLOR_PROPS: Final = {"fg": "color", "bg": "background-color", "bd": "border-color"}
_LENGTH_PROPS: Final = {
    "pa": "padding",
    "pt": "padding-top",
    "pb": "padding-bottom",
    "ps": "padding-left",
    "pe": "padding-right",
    "mt": "margin-top",
    "ml": "margin-left",
    "w": "width",
    "h": "height",
    "mw": "max-width",
    "fs": "font-size",
    "r": "border-radius",
    "bw": "border-width",
    "top": "top",
    "bottom": "bottom",
    "left": "left",
    "right": "right",
}
_VOID: Final = frozenset({"img", "br"})


class Sheet:
    """The page's classes for free values (colours, lengths, ratios): one validated rule each."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = {}

    def color(self, prop: str, value: object) -> str:
        """A class setting ``prop`` (fg, bg, bd) to the colour ``value``; "" when it is not a colour."""
        if not isinstance(value, str) or COLOR.fullmatch(value) is None:
            return ""
        digits = value[1:].lower()
        name = f"cp-{prop}-{digits}"
        self._rules.setdefault(name, f"{_COLOR_PROPS[prop]}:#{digits}")
        return name

    def length(self, prop: str, value: object) -> str:
        """A class setting ``prop`` (see ``_LENGTH_PROPS``) to a px or % length; "" for anything else."""
        match = LENGTH.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            return ""
        number, unit = match.groups()
        name = f"cp-{prop}-{number.replace('.', '_')}{'px' if unit == 'px' else 'pc'}"
        self._rules.setdefault(name, f"{_LENGTH_PROPS[prop]}:{number}{unit}")
        return name

    def ratio(self, value: object) -> str:
        """A class setting ``aspect-ratio`` from LINE's ``W:H``; "" when it is not two positive numbers."""
        match = RATIO.fullmatch(value) if isinstance(value, str) else None
        if match is None or float(match.group(1)) <= 0 or float(match.group(2)) <= 0:
            return ""
        w, h = match.groups()
        name = f"cp-ar-{w.replace('.', '_')}-{h.replace('.', '_')}"
        self._rules.setdefault(name, f"aspect-ratio:{w}/{h}")
        return name

    def css(self) -> Markup:
        """The rules for the page's ``<style nonce>``: built only from validated values above."""
        return Markup("\n".join(f".{name}{{{rule}}}" for name, rule in sorted(self._rules.items())))


@dataclass(frozen=True, slots=True)
class Row:
    """One message in the chat, with who LINE shows as its sender."""

    kind: str  # the message's type, as sent (for a reader of the HTML; never trusted)
    name: str
    icon: str | None  # an https URL, or None for the initial-letter avatar
    first: bool  # the first of a run from one sender: LINE draws the avatar and name there
    html: Markup


@dataclass(frozen=True, slots=True)
class Chat:
    title: str
    rows: list[Row]
    quick_reply: list[Markup]
    css: Markup


# -- small safe pieces -------------------------------------------------------------------------


def _el(tag: str, classes: Iterable[str] | str, body: object = "", **attrs: str | None) -> Markup:
    """``<tag class=… attrs…>body</tag>``; attribute values and a non-Markup body are escaped."""
    names = " ".join(c for c in ([classes] if isinstance(classes, str) else classes) if c)
    head = f"<{tag}" + (f' class="{escape(names)}"' if names else "")
    for key, value in attrs.items():
        if value is not None:
            head += f' {key.replace("_", "-")}="{escape(value)}"'
    if tag in _VOID:
        return Markup(head + ">")
    return Markup(head + ">") + escape(body) + Markup(f"</{tag}>")


def _join(parts: Iterable[Markup]) -> Markup:
    return Markup("").join(parts)


def _s(value: object, limit: int = 5000) -> str:
    """A string field as text to show; anything else (a number, a list, None) shows nothing."""
    return value[:limit] if isinstance(value, str) else ""


def _obj(value: object) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: object, limit: int = 100) -> list[Any]:
    return value[:limit] if isinstance(value, list) else []


def _https(url: object) -> str | None:
    """``url`` when a browser may load it as an image here: https, a host, no spaces or controls."""
    if not isinstance(url, str) or len(url) > 2000 or any(ord(ch) <= 0x20 or ch == "\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a bad IPv6 literal
        return None
    return url if parts.scheme == "https" and parts.hostname else None


def _img(url: object, classes: Iterable[str] | str, alt: str) -> Markup:
    """An image, or (not https) a box saying what would be there."""
    src = _https(url)
    if src is None:
        return _el("span", [*([classes] if isinstance(classes, str) else classes), "cp-noimg"], alt or "image")
    return _el("img", classes, src=src, alt=alt, referrerpolicy="no-referrer")


def _keyword(value: object, choices: Sequence[str], default: str | None = None) -> str | None:
    return value if isinstance(value, str) and value in choices else default


def _unknown(what: str, detail: str = "") -> Markup:
    """A labelled card for what this preview does not draw (LINE may still accept it)."""
    body = _el("strong", "", what[:80]) + (_el("span", "cp-muted", " " + detail[:200]) if detail else "")
    return _el("div", "cp-bubble cp-unknown", body)


def _action_label(action: object) -> Markup:
    """An action as a label; its target (URI, text, data) only in an escaped title."""
    a = _obj(action)
    kind = _s(a.get("type"), 40)
    target = next((_s(a.get(k), 300) for k in ("uri", "text", "data", "clipboardText") if _s(a.get(k))), "")
    label = _s(a.get("label"), 100) or f"({kind or 'action'})"
    return _el("span", "cp-action", label, title=f"{kind}: {target}" if target else kind or None)


# -- text ----------------------------------------------------------------------------------------


def _emoji(product: object, emoji: object) -> Markup:
    """A LINE emoji from LINE's CDN; its alt text is what shows if the image does not load."""
    if not (isinstance(product, str) and LINE_ID.fullmatch(product)) or not (
        isinstance(emoji, str) and LINE_ID.fullmatch(emoji)
    ):
        return _el("span", "cp-emoji cp-noimg", "(emoji)")
    src = EMOJI_URL.format(product=product, emoji=emoji)
    return _el("img", "cp-emoji", src=src, alt="(emoji)", title=f"LINE emoji {product} {emoji}")


def _with_emojis(text: str, emojis: object) -> Markup:
    """``text`` with each ``$`` that an emoji's ``index`` names replaced by the emoji's image.

    LINE counts ``index`` in UTF-16 code units (an emoji outside the BMP counts 2), as it counts
    text length; an index that does not fall on a ``$`` draws nothing (LINE refuses it).
    """
    at = {e["index"]: e for e in map(_obj, _list(emojis, 20)) if type(e.get("index")) is int}
    out: list[Markup] = []
    start = unit = 0
    for i, ch in enumerate(text):
        e = at.get(unit)
        if e is not None and ch == "$":
            out += [escape(text[start:i]), _emoji(e.get("productId"), e.get("emojiId"))]
            start = i + 1
        unit += 2 if ord(ch) > 0xFFFF else 1
    out.append(escape(text[start:]))
    return _join(out)


def _text(m: Obj, sheet: Sheet) -> Markup:
    return _el("div", "cp-bubble cp-text", _with_emojis(_s(m.get("text")), m.get("emojis")))


_V2_REF: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _text_v2(m: Obj, sheet: Sheet) -> Markup:
    """textV2: ``{key}`` is an emoji or a mention from ``substitution``; ``{{``/``}}`` are braces."""
    text, subs = _s(m.get("text")), _obj(m.get("substitution"))
    out: list[Markup] = []
    last = 0
    for ref in _V2_REF.finditer(text):
        out.append(escape(text[last : ref.start()]))
        last = ref.end()
        sub = _obj(subs.get(ref.group(1))) if ref.group(1) is not None else {}
        if ref.group(1) is None:
            out.append(escape(ref.group(0)[0]))
        elif sub.get("type") == "emoji":
            out.append(_emoji(sub.get("productId"), sub.get("emojiId")))
        elif sub.get("type") == "mention":
            everyone = _obj(sub.get("mentionee")).get("type") == "all"
            out.append(_el("span", "cp-mention", "@All" if everyone else "@user"))
        else:
            out.append(escape(ref.group(0)))
    out.append(escape(text[last:]))
    return _el("div", "cp-bubble cp-text", _join(out))


# -- media ---------------------------------------------------------------------------------------


def _sticker(m: Obj, sheet: Sheet) -> Markup:
    package, sticker = _s(m.get("packageId"), 64), _s(m.get("stickerId"), 64)
    alt = f"sticker {package}/{sticker}"
    if not LINE_ID.fullmatch(sticker):
        return _el("span", "cp-sticker cp-noimg", alt)
    return _el("img", "cp-sticker", src=STICKER_URL.format(sticker=sticker), alt=alt, title=alt)


def _image(m: Obj, sheet: Sheet) -> Markup:
    return _el("div", "cp-media", _img(m.get("previewImageUrl"), "cp-photo", "image"))


def _video(m: Obj, sheet: Sheet) -> Markup:
    poster = _img(m.get("previewImageUrl"), "cp-photo", "video")
    return _el("div", "cp-media cp-video", poster + _el("span", "cp-play", "", aria_label="play"))


def _audio(m: Obj, sheet: Sheet) -> Markup:
    ms = m.get("duration")
    seconds = ms // 1000 if type(ms) is int and ms > 0 else 0
    shown = f"{seconds // 60}:{seconds % 60:02d}"
    return _el("div", "cp-bubble cp-audio", _el("span", "cp-audio-play", "▶") + _el("span", "", shown))


def _location(m: Obj, sheet: Sheet) -> Markup:
    lat, lon = m.get("latitude"), m.get("longitude")
    where = f"{lat}, {lon}" if all(type(v) in (int, float) for v in (lat, lon)) else ""
    body = (
        _el("div", "cp-map", "📍")
        + _el("div", "cp-loc-title", _s(m.get("title"), 100))
        + _el("div", "cp-loc-address", _s(m.get("address"), 100))
        + (_el("div", "cp-muted", where) if where else Markup(""))
    )
    return _el("div", "cp-card cp-location", body)


def _imagemap(m: Obj, sheet: Sheet) -> Markup:
    """The base image as LINE's app fetches it (``baseUrl`` + ``/1040``) and how many areas it has."""
    base = _https(m.get("baseUrl"))
    url = None
    if base is not None:
        parts = urlsplit(base)
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/1040"))
    size = _obj(m.get("baseSize"))
    w, h = size.get("width"), size.get("height")
    ratio = sheet.ratio(f"{w}:{h}") if type(w) is int and type(h) is int else ""
    areas = len(_list(m.get("actions"), 50))
    caption = _el("div", "cp-caption", f"imagemap · {areas} tappable area{'s' if areas != 1 else ''}")
    return _el("div", "cp-media", _img(url, ["cp-photo", ratio], _s(m.get("altText"), 200) or "imagemap") + caption)


# -- templates -----------------------------------------------------------------------------------


def _thumb(template: Obj, column: Obj, sheet: Sheet) -> Markup:
    if "thumbnailImageUrl" not in column:
        return Markup("")
    square = template.get("imageAspectRatio") == "square"
    contain = template.get("imageSize") == "contain"
    classes = ["cp-thumb", "cp-thumb-square" if square else "", "cp-contain" if contain else ""]
    back = sheet.color("bg", column.get("imageBackgroundColor"))
    return _el("div", ["cp-thumb-box", back], _img(column.get("thumbnailImageUrl"), classes, "thumbnail"))


def _column(template: Obj, column: Obj, sheet: Sheet, classes: str) -> Markup:
    """A buttons template, or one column of a carousel: thumbnail, title, text, action buttons."""
    title = _s(column.get("title"), 40)
    body = (
        _thumb(template, column, sheet)
        + (_el("div", "cp-tpl-title", title) if title else Markup(""))
        + _el("div", "cp-tpl-text", _s(column.get("text"), 160))
        + _join(_el("div", "cp-tpl-btn", _action_label(a)) for a in _list(column.get("actions"), 4))
    )
    return _el("div", classes, body)


def _template(m: Obj, sheet: Sheet) -> Markup:
    t = _obj(m.get("template"))
    kind = t.get("type")
    if kind == "buttons":
        return _column(t, t, sheet, "cp-tpl")
    if kind == "confirm":
        buttons = _join(_el("div", "cp-tpl-btn", _action_label(a)) for a in _list(t.get("actions"), 2))
        body = _el("div", "cp-tpl-text cp-center", _s(t.get("text"), 240)) + _el("div", "cp-confirm-row", buttons)
        return _el("div", "cp-tpl cp-confirm", body)
    if kind == "carousel":
        columns = _list(t.get("columns"), 10)
        cards = _join(_column(t, _obj(c), sheet, "cp-tpl cp-col") for c in columns)
        return _el("div", "cp-scroll", cards, data_columns=str(len(columns)))
    if kind == "image_carousel":
        columns = [_obj(c) for c in _list(t.get("columns"), 10)]
        cards = _join(_image_column(c) for c in columns)
        return _el("div", "cp-scroll", cards, data_columns=str(len(columns)))
    return _unknown("template", repr(kind)[:60])


def _image_column(column: Obj) -> Markup:
    label = _s(_obj(column.get("action")).get("label"), 12)
    tag = _el("span", "cp-imgcol-label", _action_label(column.get("action"))) if label else Markup("")
    return _el("div", "cp-imgcol", _img(column.get("imageUrl"), "cp-imgcol-img", "image") + tag)


# -- flex ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a flex component sits: its parent box's layout and the margin it gets from ``spacing``."""

    layout: str  # "v", "h" or "b"
    spacing: object  # the parent's spacing for all but its first child, else None
    depth: int


def _space(sheet: Sheet, prop: str, value: object) -> str:
    """A spacing keyword's fixed class, or a px length's sheet class, or ""."""
    if isinstance(value, str) and value in SPACES:
        return f"cp-{prop}-{value}"
    return sheet.length(prop, value)


def _placed(comp: Obj, sheet: Sheet, place: _Place) -> list[str]:
    """The classes every component takes from its place: margin, flex, gravity, position, offsets."""
    margin = comp.get("margin", place.spacing)
    classes = [_space(sheet, "mt" if place.layout == "v" else "ml", margin)]
    flex = comp.get("flex")
    if type(flex) is int and flex >= 0:
        classes.append(f"cp-f{min(flex, MAX_FLEX)}")
    gravity = _keyword(comp.get("gravity"), GRAVITIES)
    if gravity and place.layout != "v":
        classes.append(f"cp-gravity-{gravity}")
    if comp.get("position") == "absolute":
        classes.append("cp-absolute")
    for side in ("top", "bottom", "start", "end"):
        offset = comp.get(f"offset{side.capitalize()}")
        prop = {"start": "left", "end": "right"}.get(side, side)
        classes.append(sheet.length(prop, _SPACE_PX.get(offset, offset) if isinstance(offset, str) else None))
    return classes


_SPACE_PX: Final = {"none": "0px", "xs": "2px", "sm": "4px", "md": "8px", "lg": "12px", "xl": "16px", "xxl": "20px"}


def _box_classes(comp: Obj, sheet: Sheet, layout: str) -> list[str]:
    classes = ["cp-box", f"cp-{layout}"]
    for key, prop in (("paddingAll", "pa"), ("paddingTop", "pt"), ("paddingBottom", "pb")):
        classes.append(_space(sheet, prop, comp.get(key)))
    for key, prop in (("paddingStart", "ps"), ("paddingEnd", "pe")):
        classes.append(_space(sheet, prop, comp.get(key)))
    classes.append(_space(sheet, "r", comp.get("cornerRadius")))
    width = comp.get("borderWidth")
    classes.append(f"cp-bw-{width}" if width in BORDER_WIDTHS else sheet.length("bw", width))
    classes += [sheet.color("bg", comp.get("backgroundColor")), sheet.color("bd", comp.get("borderColor"))]
    for key, prop in (("width", "w"), ("height", "h"), ("maxWidth", "mw")):
        classes.append(sheet.length(prop, comp.get(key)))
    justify = _keyword(comp.get("justifyContent"), JUSTIFY)
    items = _keyword(comp.get("alignItems"), ALIGN_ITEMS)
    classes += [f"cp-jc-{justify}" if justify else "", f"cp-ai-{items}" if items else ""]
    return classes


def _box(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    given = comp.get("layout")
    layout = LAYOUTS.get(given, "v") if isinstance(given, str) else "v"
    spacing = comp.get("spacing")
    children = [
        _component(child, sheet, _Place(layout, spacing if i else None, place.depth + 1))
        for i, child in enumerate(_list(comp.get("contents"), 500))
    ]
    return _el("div", _box_classes(comp, sheet, layout) + _placed(comp, sheet, place), _join(children))


def _font(comp: Obj, sheet: Sheet) -> list[str]:
    """What a text and a span share: size, weight, style, decoration, colour."""
    size = comp.get("size")
    return [
        f"cp-s-{size}" if size in TEXT_SIZES else sheet.length("fs", size),
        "cp-bold" if comp.get("weight") == "bold" else "",
        "cp-italic" if comp.get("style") == "italic" else "",
        f"cp-{comp.get('decoration')}" if comp.get("decoration") in DECORATIONS else "",
        sheet.color("fg", comp.get("color")),
    ]


def _flex_text(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    align = _keyword(comp.get("align"), ALIGNS)
    lines = comp.get("maxLines")
    classes = ["cp-t", *_font(comp, sheet), "cp-wrap" if comp.get("wrap") is True else ""]
    classes += [f"cp-al-{align}" if align else ""]
    classes += [f"cp-lines-{lines}" if type(lines) is int and 0 < lines <= MAX_LINES else ""]
    spans = [_obj(s) for s in _list(comp.get("contents"), 500)]
    if spans:
        body = _join(_el("span", _font(s, sheet), _s(s.get("text"))) for s in spans if s.get("type") == "span")
    else:
        body = escape(_s(comp.get("text")))
    return _el("div", classes + _placed(comp, sheet, place), body)


def _flex_image(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    size = comp.get("size", "md")
    align = _keyword(comp.get("align"), ALIGNS, "center")
    img_classes = [
        "cp-fimg",
        f"cp-is-{size}" if size in IMAGE_SIZES else sheet.length("w", size) or "cp-is-md",
        sheet.ratio(comp.get("aspectRatio", "1:1")),
        "cp-cover" if comp.get("aspectMode") == "cover" else "",
        sheet.color("bg", comp.get("backgroundColor")),
    ]
    img = _img(comp.get("url"), img_classes, "image")
    return _el("div", ["cp-fimg-box", f"cp-al-{align}", *_placed(comp, sheet, place)], img)


def _flex_icon(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    size = comp.get("size", "md")
    classes = ["cp-icon", f"cp-ic-{size}" if size in TEXT_SIZES else "cp-ic-md", sheet.ratio(comp.get("aspectRatio"))]
    return _el("span", ["cp-icon-box", *_placed(comp, sheet, place)], _img(comp.get("url"), classes, "icon"))


def _flex_button(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    style = _keyword(comp.get("style"), BUTTON_STYLES, "link")
    color = sheet.color("fg" if style == "link" else "bg", comp.get("color"))
    classes = ["cp-btn", f"cp-btn-{style}", "cp-btn-sm" if comp.get("height") == "sm" else "", color]
    return _el("div", classes + _placed(comp, sheet, place), _action_label(comp.get("action")))


def _flex_separator(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    classes = ["cp-sep", "cp-sep-v" if place.layout != "v" else "", sheet.color("bd", comp.get("color"))]
    return _el("div", classes + _placed(comp, sheet, place), "", role="separator")


def _flex_spacer(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    size = _keyword(comp.get("size"), SPACES, "md")
    return _el("div", ["cp-spacer", f"cp-sp-{size}"], "")


def _flex_filler(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    return _el("div", ["cp-filler", *_placed(comp, sheet, place)], "")


def _flex_video(comp: Obj, sheet: Sheet, place: _Place) -> Markup:
    poster = _img(comp.get("previewUrl"), ["cp-fimg", "cp-is-full", sheet.ratio(comp.get("aspectRatio"))], "video")
    return _el("div", ["cp-media", "cp-video", *_placed(comp, sheet, place)], poster + _el("span", "cp-play", ""))


_COMPONENTS: Final[dict[str, Callable[[Obj, Sheet, _Place], Markup]]] = {
    "box": _box,
    "text": _flex_text,
    "image": _flex_image,
    "icon": _flex_icon,
    "button": _flex_button,
    "separator": _flex_separator,
    "spacer": _flex_spacer,
    "filler": _flex_filler,
    "video": _flex_video,
}


def _component(comp: object, sheet: Sheet, place: _Place) -> Markup:
    if place.depth > MAX_DEPTH:
        return _el("span", "cp-muted", "(nested too deeply to draw)")
    c = _obj(comp)
    kind = c.get("type")
    draw = _COMPONENTS.get(kind) if isinstance(kind, str) else None
    if draw is None:
        return _el("span", "cp-flex-unknown", f"[{_s(kind, 40) or 'not a component'}]")
    return draw(c, sheet, place)


def _bubble(bubble: object, sheet: Sheet) -> Markup:
    b = _obj(bubble)
    if b.get("type") != "bubble":
        return _unknown("not a bubble")
    size = _keyword(b.get("size"), BUBBLE_SIZES, "mega")
    styles = _obj(b.get("styles"))
    blocks: list[Markup] = []
    for name in ("header", "hero", "body", "footer"):
        if name not in b:
            continue
        style = _obj(styles.get(name))
        lined = style.get("separator") is True and blocks
        classes = ["cp-blk", f"cp-blk-{name}", sheet.color("bg", style.get("backgroundColor"))]
        classes += ["cp-blk-sep" if lined else "", sheet.color("bd", style.get("separatorColor")) if lined else ""]
        root = _component(b[name], sheet, _Place("v", None, 1))
        blocks.append(_el("div", classes, root))
    direction = "rtl" if b.get("direction") == "rtl" else None
    return _el("div", ["cp-bubble-flex", f"cp-size-{size}"], _join(blocks), dir=direction)


def _flex(m: Obj, sheet: Sheet) -> Markup:
    contents = _obj(m.get("contents"))
    if contents.get("type") == "bubble":
        return _bubble(contents, sheet)
    if contents.get("type") == "carousel":
        bubbles = _list(contents.get("contents"), 12)
        return _el("div", "cp-scroll", _join(_bubble(b, sheet) for b in bubbles), data_columns=str(len(bubbles)))
    return _unknown("flex", "contents is neither a bubble nor a carousel")


def _coupon(m: Obj, sheet: Sheet) -> Markup:
    return _el("div", "cp-card cp-coupon", _el("strong", "", "Coupon") + _el("div", "cp-muted", _s(m.get("couponId"))))


# -- messages and the chat -----------------------------------------------------------------------

_MESSAGES: Final[dict[str, Callable[[Obj, Sheet], Markup]]] = {
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


def render_message(message: object, sheet: Sheet) -> Markup:
    """One LINE message object as it shows in the chat; anything unknown as a labelled card."""
    if not isinstance(message, dict):
        return _unknown("Not a message object")
    kind = message.get("type")
    draw = _MESSAGES.get(kind) if isinstance(kind, str) else None
    if draw is None:
        return _unknown("Message type", repr(kind)[:60] if kind is not None else "(none)")
    html = draw(message, sheet)
    alt = _s(message.get("altText"), 400)
    return _el("div", "cp-alt", html, title=f"altText: {alt}") if alt else html


def _chips(message: object) -> list[Markup]:
    """The quick-reply buttons LINE shows under the last message (only the last message's count)."""
    items = _list(_obj(_obj(message).get("quickReply")).get("items"), 13)
    chips = []
    for item in map(_obj, items):
        icon = _https(item.get("imageUrl"))
        image = _el("img", "cp-chip-icon", src=icon, alt="", referrerpolicy="no-referrer") if icon else Markup("")
        chips.append(_el("span", "cp-chip", image + _action_label(item.get("action"))))
    return chips


def render_chat(messages: object, *, bot_name: str | None) -> Chat:
    """The chat a recipient would see for ``messages`` (a push body's list, after templating)."""
    sheet = Sheet()
    bot = bot_name or "LINE Official Account"
    listed = _list(messages, 5)
    rows: list[Row] = []
    previous: tuple[str, str | None] | None = None
    for message in listed:
        sender = _obj(_obj(message).get("sender"))
        who = (_s(sender.get("name"), 20) or bot, _https(sender.get("iconUrl")))
        kind = _s(_obj(message).get("type"), 40) or "?"
        rows.append(Row(kind, who[0], who[1], who != previous, render_message(message, sheet)))
        previous = who
    chips = _chips(listed[-1]) if listed else []
    return Chat(title=bot, rows=rows, quick_reply=chips, css=sheet.css())
