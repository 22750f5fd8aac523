"""The console's chat preview: each LINE message type drawn with the figures a user checks (texts,
emoji at their place, sticker IDs, template labels, flex colours and buttons), and a payload that
tries HTML, scripts, javascript: URLs or CSS in a colour is escaped or dropped, never run."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lineoa_export.web.console import chat_preview
from lineoa_export.web.console.chat_preview import Sheet, render_chat, render_message

CSS = (Path(chat_preview.__file__).parent / "static" / "chat_preview.css").read_text()
EMOJI_PRODUCT = "5ac1bfd5040ab15980c9b435"


class Parsed(HTMLParser):
    """An HTML fragment's elements (tag and attributes, in order) and its visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.elements if t == tag]

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.elements if name in attrs.get("class", "").split()]

    @property
    def srcs(self) -> list[str]:
        return [a["src"] for a in self.all("img")]


def draw(message: Any) -> tuple[Parsed, str]:
    """One message's HTML (parsed) and the page CSS it asked for."""
    sheet = Sheet()
    html = render_message(message, sheet)
    return Parsed(str(html)), str(sheet.css())


def flex(body: dict[str, Any], **bubble: Any) -> dict[str, Any]:
    return {"type": "flex", "altText": "flex", "contents": {"type": "bubble", "body": body, **bubble}}


def box(*contents: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "box", "layout": props.pop("layout", "vertical"), "contents": list(contents), **props}


# -- text ----------------------------------------------------------------------------------------


def test_text_keeps_newlines_and_unicode_emoji_and_puts_line_emoji_at_their_dollar() -> None:
    message = {
        "type": "text",
        "text": "$ Hello Ann 🎉\nSee you $ soon",
        "emojis": [
            {"index": 0, "productId": EMOJI_PRODUCT, "emojiId": "001"},
            # 🎉 counts 2 UTF-16 units: the second $ is character 22 but index 23
            {"index": 23, "productId": EMOJI_PRODUCT, "emojiId": "002"},
        ],
    }
    html = str(render_message(message, Sheet()))
    assert html.count("<img") == 2
    first, second = (m.start() for m in re.finditer("<img", html))
    assert html.index("Hello Ann 🎉\nSee you ") > first  # the first emoji comes before the text
    assert first < html.index("See you ") < second < html.index(" soon")
    parsed = Parsed(html)
    assert parsed.text == " Hello Ann 🎉\nSee you  soon"  # each $ replaced, newline kept
    assert parsed.srcs == [
        f"https://stickershop.line-scdn.net/sticonshop/v1/sticon/{EMOJI_PRODUCT}/iPhone/001.png",
        f"https://stickershop.line-scdn.net/sticonshop/v1/sticon/{EMOJI_PRODUCT}/iPhone/002.png",
    ]
    assert {a["alt"] for a in parsed.all("img")} == {"(emoji)"}  # what shows if the CDN does not answer


def test_an_emoji_index_off_a_dollar_draws_nothing_and_bad_ids_get_a_readable_fallback() -> None:
    off, _ = draw({"type": "text", "text": "a $", "emojis": [{"index": 0, "productId": "p", "emojiId": "1"}]})
    assert off.srcs == [] and off.text == "a $"
    bad, _ = draw({"type": "text", "text": "$", "emojis": [{"index": 0, "productId": "../x", "emojiId": "1"}]})
    assert bad.srcs == [] and bad.text == "(emoji)"


def test_text_v2_substitutes_emoji_and_mentions() -> None:
    parsed, _ = draw(
        {
            "type": "textV2",
            "text": "{everyone} look {star} {{literal}}",
            "substitution": {
                "everyone": {"type": "mention", "mentionee": {"type": "all"}},
                "star": {"type": "emoji", "productId": EMOJI_PRODUCT, "emojiId": "003"},
            },
        }
    )
    assert parsed.text == "@All look  {literal}"
    assert parsed.srcs == [f"https://stickershop.line-scdn.net/sticonshop/v1/sticon/{EMOJI_PRODUCT}/iPhone/003.png"]


# -- media ---------------------------------------------------------------------------------------


def test_sticker_shows_the_sticker_image_with_its_ids() -> None:
    parsed, _ = draw({"type": "sticker", "packageId": "446", "stickerId": "1988"})
    [img] = parsed.all("img")
    assert img["src"] == "https://stickershop.line-scdn.net/stickershop/v1/sticker/1988/android/sticker.png"
    assert img["alt"] == "sticker 446/1988"
    odd, _ = draw({"type": "sticker", "packageId": "446", "stickerId": "1988/../../x"})
    assert odd.srcs == [] and "sticker 446/1988/../../x" in odd.text


def test_image_video_audio_location_and_imagemap() -> None:
    image, _ = draw(
        {"type": "image", "originalContentUrl": "https://a.example/o.jpg", "previewImageUrl": "https://a.example/p.jpg"}
    )
    assert image.srcs == ["https://a.example/p.jpg"]
    video, _ = draw(
        {"type": "video", "originalContentUrl": "https://a.example/v.mp4", "previewImageUrl": "https://a.example/v.jpg"}
    )
    assert video.srcs == ["https://a.example/v.jpg"] and video.with_class("cp-play")
    audio, _ = draw({"type": "audio", "originalContentUrl": "https://a.example/a.m4a", "duration": 65_000})
    assert "1:05" in audio.text
    place, _ = draw(
        {"type": "location", "title": "Shop", "address": "1-2-3 Shibuya", "latitude": 35.6, "longitude": 139.7}
    )
    assert "Shop" in place.text and "1-2-3 Shibuya" in place.text and "35.6, 139.7" in place.text
    imagemap, css = draw(
        {
            "type": "imagemap",
            "baseUrl": "https://a.example/rich?v=2",
            "altText": "Sale",
            "baseSize": {"width": 1040, "height": 520},
            "actions": [
                {"type": "uri", "linkUri": "https://a.example", "area": {"x": 0, "y": 0, "width": 1, "height": 1}}
            ],
        }
    )
    assert imagemap.srcs == ["https://a.example/rich/1040?v=2"]  # what LINE's app fetches for a wide screen
    assert "1 tappable area" in imagemap.text and "aspect-ratio:1040/520" in css


# -- templates -----------------------------------------------------------------------------------


def test_buttons_template_shows_thumbnail_title_text_and_labels() -> None:
    parsed, css = draw(
        {
            "type": "template",
            "altText": "Your order",
            "template": {
                "type": "buttons",
                "thumbnailImageUrl": "https://a.example/t.jpg",
                "imageBackgroundColor": "#FFEEDD",
                "title": "Order 123",
                "text": "Shipped today",
                "actions": [
                    {"type": "uri", "label": "Track", "uri": "https://a.example/track"},
                    {"type": "message", "label": "Thanks", "text": "thanks"},
                ],
            },
        }
    )
    assert parsed.srcs == ["https://a.example/t.jpg"]
    assert [c for c in parsed.chunks if c.strip()] == ["Order 123", "Shipped today", "Track", "Thanks"]
    assert [a["title"] for a in parsed.with_class("cp-action")] == ["uri: https://a.example/track", "message: thanks"]
    assert ".cp-bg-ffeedd{background-color:#ffeedd}" in css
    assert parsed.all("a") == []  # a preview links nowhere


def test_confirm_carousel_and_image_carousel() -> None:
    yes_no = [{"type": "message", "label": "Yes", "text": "y"}, {"type": "message", "label": "No", "text": "n"}]
    confirm, _ = draw(
        {"type": "template", "altText": "?", "template": {"type": "confirm", "text": "Sure?", "actions": yes_no}}
    )
    assert [c for c in confirm.chunks if c.strip()] == ["Sure?", "Yes", "No"]
    columns = [
        {"thumbnailImageUrl": f"https://a.example/{i}.jpg", "title": f"Item {i}", "text": "x", "actions": yes_no[:1]}
        for i in range(3)
    ]
    square = {"type": "carousel", "imageAspectRatio": "square", "imageSize": "contain", "columns": columns}
    carousel, _ = draw({"type": "template", "altText": "c", "template": square})
    [scroll] = carousel.with_class("cp-scroll")
    assert scroll["data-columns"] == "3" and len(carousel.with_class("cp-col")) == 3
    assert "Item 2" in carousel.text and len(carousel.with_class("cp-thumb-square")) == 3
    pictures = [
        {"imageUrl": "https://a.example/p.jpg", "action": {"type": "uri", "label": "View", "uri": "https://a"}}
    ] * 2
    images, _ = draw({"type": "template", "altText": "i", "template": {"type": "image_carousel", "columns": pictures}})
    assert len(images.with_class("cp-imgcol")) == 2 and images.text == "ViewView"


# -- flex ----------------------------------------------------------------------------------------


def test_flex_bubble_text_colours_sizes_and_buttons() -> None:
    bubble = flex(
        box(
            {"type": "text", "text": "RECEIPT", "weight": "bold", "color": "#1DB446", "size": "sm"},
            {"type": "text", "text": "Long\ntext", "wrap": True, "align": "end", "maxLines": 2},
            {"type": "separator", "margin": "xxl", "color": "#AAAAAA"},
            box(
                {"type": "icon", "url": "https://a.example/star.png", "size": "xs"},
                {"type": "text", "text": "4.0", "flex": 0, "margin": "md"},
                {"type": "filler"},
                layout="baseline",
            ),
            {"type": "spacer", "size": "lg"},
            {
                "type": "button",
                "style": "primary",
                "color": "#905c44",
                "action": {"type": "uri", "label": "Buy", "uri": "https://a"},
            },
            {
                "type": "button",
                "style": "link",
                "height": "sm",
                "action": {"type": "postback", "label": "Later", "data": "x"},
            },
            spacing="sm",
            paddingAll="12px",
            backgroundColor="#FFFFFFCC",
        ),
        size="kilo",
        styles={"footer": {"separator": True}},
    )
    parsed, css = draw(bubble)
    [receipt] = [e for e in parsed.with_class("cp-t") if "cp-fg-1db446" in e["class"]]
    assert {"cp-bold", "cp-s-sm"} <= set(receipt["class"].split())
    assert ".cp-fg-1db446{color:#1db446}" in css and ".cp-bg-ffffffcc{background-color:#ffffffcc}" in css
    wrapped = parsed.with_class("cp-wrap")[0]["class"].split()
    assert {"cp-al-end", "cp-lines-2", "cp-mt-sm"} <= set(wrapped)  # spacing gives the second child its margin
    assert "Long\ntext" in parsed.text
    assert "cp-mt-xxl" in parsed.with_class("cp-sep")[0]["class"]  # its own margin wins over spacing
    [primary] = parsed.with_class("cp-btn-primary")
    assert "cp-bg-905c44" in primary["class"] and ".cp-bg-905c44{background-color:#905c44}" in css
    assert "cp-btn-sm" in parsed.with_class("cp-btn-link")[0]["class"]
    assert [c for c in parsed.chunks if c in ("Buy", "Later")] == ["Buy", "Later"]
    assert parsed.with_class("cp-b") and parsed.with_class("cp-filler") and parsed.with_class("cp-sp-lg")
    assert "cp-f0" in parsed.with_class("cp-ml-md")[0]["class"]
    assert parsed.srcs == ["https://a.example/star.png"] and parsed.with_class("cp-ic-xs")
    assert parsed.with_class("cp-size-kilo") and ".cp-pa-12px{padding:12px}" in css


def test_flex_blocks_images_and_carousel_of_bubbles() -> None:
    bubble = {
        "type": "bubble",
        "header": box({"type": "text", "text": "Header"}),
        "hero": {
            "type": "image",
            "url": "https://a.example/hero.jpg",
            "size": "full",
            "aspectRatio": "20:13",
            "aspectMode": "cover",
        },
        "body": box({"type": "text", "text": "Body"}, layout="horizontal"),
        "footer": box({"type": "button", "action": {"type": "uri", "label": "Go", "uri": "https://a"}}),
        "styles": {"hero": {"backgroundColor": "#000000"}},
    }
    one, css = draw({"type": "flex", "altText": "x", "contents": bubble})
    assert [b["class"].split()[1] for b in one.with_class("cp-blk")] == [
        "cp-blk-header",
        "cp-blk-hero",
        "cp-blk-body",
        "cp-blk-footer",
    ]
    [hero] = one.all("img")
    assert {"cp-is-full", "cp-cover", "cp-ar-20-13"} <= set(hero["class"].split())
    assert ".cp-ar-20-13{aspect-ratio:20/13}" in css and "cp-bg-000000" in one.with_class("cp-blk-hero")[0]["class"]
    assert [b["class"].split()[1] for b in one.with_class("cp-box")] == ["cp-v", "cp-h", "cp-v"]
    many, _ = draw({"type": "flex", "altText": "x", "contents": {"type": "carousel", "contents": [bubble] * 4}})
    assert many.with_class("cp-scroll")[0]["data-columns"] == "4" and len(many.with_class("cp-bubble-flex")) == 4


def test_every_keyword_class_the_renderer_uses_is_in_the_stylesheet() -> None:
    defined = set(re.findall(r"\.(cp-[a-z0-9-]+)", CSS))
    expected = {
        f"cp-{p}-{k}" for p in ("pa", "pt", "pb", "ps", "pe", "mt", "ml", "r", "sp") for k in chat_preview.SPACES
    }
    expected |= {f"cp-s-{k}" for k in chat_preview.TEXT_SIZES} | {f"cp-ic-{k}" for k in chat_preview.TEXT_SIZES}
    expected |= {f"cp-is-{k}" for k in chat_preview.IMAGE_SIZES} | {f"cp-size-{k}" for k in chat_preview.BUBBLE_SIZES}
    expected |= {f"cp-bw-{k}" for k in chat_preview.BORDER_WIDTHS} | {f"cp-al-{k}" for k in chat_preview.ALIGNS}
    expected |= {f"cp-jc-{k}" for k in chat_preview.JUSTIFY} | {f"cp-ai-{k}" for k in chat_preview.ALIGN_ITEMS}
    expected |= {f"cp-gravity-{k}" for k in chat_preview.GRAVITIES} | {
        f"cp-btn-{k}" for k in chat_preview.BUTTON_STYLES
    }
    expected |= {f"cp-f{n}" for n in range(chat_preview.MAX_FLEX + 1)}
    expected |= {f"cp-lines-{n}" for n in range(1, chat_preview.MAX_LINES + 1)}
    expected |= {f"cp-{v}" for v in chat_preview.LAYOUTS.values()} | {f"cp-{d}" for d in chat_preview.DECORATIONS}
    assert expected - defined == set()


# -- what the chat around the messages shows -------------------------------------------------------


def test_chat_rows_senders_and_quick_reply_of_the_last_message() -> None:
    chips = {
        "items": [
            {
                "type": "action",
                "imageUrl": "https://a.example/i.png",
                "action": {"type": "message", "label": "Yes", "text": "y"},
            }
        ]
    }
    chat = render_chat(
        [
            {"type": "text", "text": "one", "quickReply": chips},  # not the last: LINE shows no chips for it
            {"type": "text", "text": "two"},
            {"type": "text", "text": "three", "sender": {"name": "Cony", "iconUrl": "https://a.example/cony.png"}},
            {"type": "text", "text": "four", "quickReply": chips},
        ],
        bot_name="Brown's Shop",
    )
    assert chat.title == "Brown's Shop"
    assert [(r.name, r.first) for r in chat.rows] == [
        ("Brown's Shop", True),
        ("Brown's Shop", False),
        ("Cony", True),
        ("Brown's Shop", True),
    ]
    assert chat.rows[2].icon == "https://a.example/cony.png" and chat.rows[0].icon is None
    [chip] = chat.quick_reply
    assert Parsed(str(chip)).text == "Yes" and Parsed(str(chip)).srcs == ["https://a.example/i.png"]
    assert render_chat([], bot_name=None).rows == [] and render_chat("nope", bot_name=None).title


# -- hostile and unknown input -------------------------------------------------------------------

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_html_in_any_text_is_escaped() -> None:
    messages = [
        {"type": "text", "text": SCRIPT},
        {
            "type": "template",
            "altText": SCRIPT,
            "template": {
                "type": "buttons",
                "title": SCRIPT,
                "text": SCRIPT,
                "actions": [{"type": "uri", "label": SCRIPT, "uri": SCRIPT}],
            },
        },
        flex(
            box(
                {"type": "text", "text": SCRIPT},
                {"type": "button", "action": {"type": "message", "label": SCRIPT, "text": SCRIPT}},
            )
        ),
        {"type": "sticker", "packageId": SCRIPT, "stickerId": SCRIPT},
        {"type": SCRIPT},
    ]
    chat = render_chat(messages, bot_name=SCRIPT)
    for row in chat.rows:
        parsed = Parsed(str(row.html))
        assert [t for t, _ in parsed.elements if t in ("script", "a")] == [], row.kind
        assert all(a.get("src") != "x" and "onerror" not in a for _, a in parsed.elements), row.kind
        assert "<script>" in parsed.text or 'alert("x")' in parsed.text or row.kind == "sticker", row.kind
    assert "<script" not in str(chat.css)


def test_only_https_urls_become_images() -> None:
    for url in (
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "http://a.example/i.png",
        "data:image/png;base64,AAAA",
        "//a.example/i.png",
        "https:///nohost",
        "https://a.example/ i.png",
        "https://a.example/\ni.png",
        "https://[::1/",
        42,
    ):
        parsed, _ = draw({"type": "image", "originalContentUrl": url, "previewImageUrl": url})
        assert parsed.srcs == [], url
        flexed, _ = draw(flex(box({"type": "image", "url": url}, {"type": "icon", "url": url})))
        assert flexed.srcs == [], url
    quoted, _ = draw({"type": "image", "previewImageUrl": 'https://a.example/"onerror="alert(1)'})
    assert quoted.srcs == ['https://a.example/"onerror="alert(1)'] and "onerror" not in quoted.all("img")[0]


def test_bad_colours_and_lengths_are_dropped_not_written_into_the_css() -> None:
    for bad in ("red", "#12345", "#1234567", "#GGGGGG", "#123456;} body{display:none", "#123456\n", 123456, None):
        parsed, css = draw(flex(box({"type": "text", "text": "t", "color": bad}, paddingAll=bad, width="1e9px")))
        assert css == "", bad
        assert [c for c in parsed.with_class("cp-t")[0]["class"].split() if c.startswith("cp-fg")] == []
    _, css = draw(flex(box(paddingAll="10px;}*{x:y", width="50%")))
    assert css == ".cp-w-50pc{width:50%}"


def test_unknown_and_malformed_messages_degrade_to_labelled_cards() -> None:
    for message, label in (
        ({"type": "carrier-pigeon"}, "carrier-pigeon"),
        ({"text": "no type"}, "(none)"),
        ("just a string", "Not a message object"),
        (None, "Not a message object"),
        ({"type": "template", "altText": "x", "template": {"type": "spinner"}}, "spinner"),
        ({"type": "flex", "altText": "x", "contents": {"type": "poster"}}, "neither a bubble nor a carousel"),
    ):
        parsed, _ = draw(message)
        assert parsed.with_class("cp-unknown") and label in parsed.text, message
    odd, _ = draw(flex(box({"type": "hologram"}, {"type": "text", "text": 5}, "x")))
    assert "[hologram]" in odd.text and "[not a component]" in odd.text
    deep: dict[str, Any] = {"type": "text", "text": "bottom"}
    for _ in range(200):
        deep = box(deep)
    nested, _ = draw(flex(deep))
    assert "nested too deeply" in nested.text and "bottom" not in nested.text


_LINE_KEYS = st.sampled_from(
    [
        "type",
        "text",
        "contents",
        "body",
        "hero",
        "template",
        "columns",
        "actions",
        "action",
        "label",
        "url",
        "color",
        "emojis",
        "index",
        "size",
        "layout",
        "quickReply",
        "items",
        "sender",
        "substitution",
        "baseUrl",
    ]
)
_LINE_VALUES = st.sampled_from(
    [
        "text",
        "flex",
        "bubble",
        "carousel",
        "box",
        "template",
        "buttons",
        "image",
        "icon",
        "span",
        "sticker",
        "$",
        "{x}",
        "#fff",
        "#ffffff",
        "md",
        "full",
        "baseline",
        "javascript:x",
        "https://a.example/i.png",
        "<b>",
    ]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 30) | st.floats(allow_nan=True) | _LINE_VALUES | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_LINE_KEYS, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON, max_size=5))
def test_any_json_renders_without_error_or_live_markup(messages: list[Any]) -> None:
    chat = render_chat(messages, bot_name="bot")
    for row in chat.rows:
        tags = {t for t, _ in Parsed(str(row.html)).elements}
        assert tags <= {"div", "span", "img", "strong"}, tags
        assert all(src.startswith("https://") for src in Parsed(str(row.html)).srcs)
    assert re.fullmatch(r"(\.cp-[a-z0-9_-]+\{[a-z-]+:[#0-9a-f._/%px]+\}\n?)*", str(chat.css))
