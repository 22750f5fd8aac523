"""Tests for lineoa_export.line_messages: LINE message and push body validation."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineoa_export.errors import FieldProblem
from lineoa_export.line_messages import MAX_MESSAGES, validate_messages, validate_push_request

HTTPS = "https://example.com/a.png"
USER = "U" + "0123456789abcdef" * 2


def problems(value: object, *, templated: bool = False) -> list[str]:
    return [str(p) for p in validate_messages(value, templated=templated)]


def action(kind: str = "message", **extra: Any) -> dict[str, Any]:
    base: dict[str, dict[str, Any]] = {
        "message": {"type": "message", "label": "Yes", "text": "yes"},
        "postback": {"type": "postback", "label": "Buy", "data": "action=buy&id=1", "displayText": "Buy"},
        "uri": {"type": "uri", "label": "Open", "uri": "https://example.com"},
        "datetimepicker": {"type": "datetimepicker", "label": "When", "data": "d", "mode": "datetime"},
        "camera": {"type": "camera", "label": "Camera"},
        "cameraRoll": {"type": "cameraRoll", "label": "Roll"},
        "location": {"type": "location", "label": "Where"},
        "richmenuswitch": {"type": "richmenuswitch", "label": "Menu", "richMenuAliasId": "a", "data": "x"},
        "clipboard": {"type": "clipboard", "label": "Copy", "clipboardText": "CODE123"},
    }
    return {**base[kind], **extra}


def bubble(**extra: Any) -> dict[str, Any]:
    return {
        "type": "bubble",
        "size": "mega",
        "hero": {"type": "image", "url": HTTPS, "size": "full", "aspectMode": "cover"},
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {"type": "text", "text": "Title", "weight": "bold", "size": "xl"},
                {"type": "separator"},
                {"type": "text", "contents": [{"type": "span", "text": "a", "weight": "bold"}]},
                {"type": "box", "layout": "baseline", "contents": [{"type": "icon", "url": HTTPS}]},
                {"type": "filler"},
            ],
        },
        "footer": {
            "type": "box",
            "layout": "horizontal",
            "contents": [{"type": "button", "style": "primary", "action": action("uri")}],
        },
        **extra,
    }


VALID: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": "Hello $", "emojis": [{"index": 6, "productId": "p", "emojiId": "001"}]},
    "textV2": {
        "type": "textV2",
        "text": "Hi {user}! {smile} {{literal}}",
        "substitution": {
            "user": {"type": "mention", "mentionee": {"type": "user", "userId": USER}},
            "smile": {"type": "emoji", "productId": "p", "emojiId": "001"},
        },
    },
    "sticker": {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    "image": {"type": "image", "originalContentUrl": HTTPS, "previewImageUrl": HTTPS},
    "video": {"type": "video", "originalContentUrl": HTTPS, "previewImageUrl": HTTPS, "trackingId": "t1"},
    "audio": {"type": "audio", "originalContentUrl": HTTPS, "duration": 60000},
    "location": {
        "type": "location",
        "title": "Office",
        "address": "Tokyo",
        "latitude": 35.6,
        "longitude": 139,
    },
    "imagemap": {
        "type": "imagemap",
        "baseUrl": "https://example.com/map",
        "altText": "map",
        "baseSize": {"width": 1040, "height": 1040},
        "actions": [
            {
                "type": "uri",
                "linkUri": "https://example.com",
                "area": {"x": 0, "y": 0, "width": 520, "height": 1040},
            },
            {"type": "message", "text": "hi", "area": {"x": 520, "y": 0, "width": 520, "height": 1040}},
        ],
    },
    "buttons": {
        "type": "template",
        "altText": "buttons",
        "template": {
            "type": "buttons",
            "thumbnailImageUrl": HTTPS,
            "imageAspectRatio": "rectangle",
            "title": "Menu",
            "text": "Please select",
            "defaultAction": {"type": "uri", "uri": "https://example.com"},
            "actions": [action("postback"), action("message"), action("uri"), action("datetimepicker")],
        },
    },
    "confirm": {
        "type": "template",
        "altText": "confirm",
        "template": {
            "type": "confirm",
            "text": "Sure?",
            "actions": [action(), action(label="No", text="no")],
        },
    },
    "carousel": {
        "type": "template",
        "altText": "carousel",
        "template": {
            "type": "carousel",
            "columns": [
                {"thumbnailImageUrl": HTTPS, "title": "A", "text": "a", "actions": [action("uri")]},
                {"thumbnailImageUrl": HTTPS, "title": "B", "text": "b", "actions": [action("clipboard")]},
            ],
        },
    },
    "image_carousel": {
        "type": "template",
        "altText": "images",
        "template": {"type": "image_carousel", "columns": [{"imageUrl": HTTPS, "action": action("uri")}]},
    },
    "flex_bubble": {"type": "flex", "altText": "flex", "contents": bubble()},
    "flex_carousel": {
        "type": "flex",
        "altText": "flex",
        "contents": {"type": "carousel", "contents": [bubble()] * 3},
    },
    "coupon": {"type": "coupon", "couponId": "01JABCDEF"},
    "with_common_fields": {
        "type": "text",
        "text": "pick one",
        "sender": {"name": "Cony", "iconUrl": HTTPS},
        "quickReply": {"items": [{"type": "action", "action": action(k)} for k in ("camera", "location", "message")]},
    },
    "tel_uri_action": {
        "type": "template",
        "altText": "call",
        "template": {"type": "buttons", "text": "Call us", "actions": [action("uri", uri="tel:0312345678")]},
    },
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_of_every_type_has_no_problems(name: str) -> None:
    assert problems([VALID[name]]) == []
    assert problems([VALID[name]], templated=True) == []


def test_five_valid_messages_together() -> None:
    msgs = [VALID["text"], VALID["sticker"], VALID["image"], VALID["flex_bubble"], VALID["buttons"]]
    assert problems(msgs) == []


def test_every_action_type_is_accepted_in_quick_reply() -> None:
    kinds = ["message", "postback", "uri", "datetimepicker", "camera", "cameraRoll", "location"]
    kinds += ["richmenuswitch", "clipboard"]
    items = [{"type": "action", "action": action(k)} for k in kinds]
    assert problems([{"type": "text", "text": "x", "quickReply": {"items": items}}]) == []


def text(s: object, **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": s, **extra}]


def template(tpl: dict[str, Any], alt: str = "alt") -> list[dict[str, Any]]:
    return [{"type": "template", "altText": alt, "template": tpl}]


def image(url: str) -> list[dict[str, Any]]:
    return [{"type": "image", "originalContentUrl": url, "previewImageUrl": HTTPS}]


def qr(n: int) -> list[dict[str, Any]]:
    return text("x", quickReply={"items": [{"type": "action", "action": action()}] * n})


def buttons(text_: str, **extra: Any) -> list[dict[str, Any]]:
    return template({"type": "buttons", "text": text_, "actions": [action()], **extra})


URL_2000 = "https://example.com/" + "a" * (2000 - len("https://example.com/"))
URI_1000 = "https://example.com/" + "a" * (1000 - len("https://example.com/"))
EMOJI = "\U0001f600"  # one code point, two UTF-16 code units

# (case id, messages, expected problems as "path: reason"; [] means valid)
BOUNDARIES: list[tuple[str, object, list[str]]] = [
    ("text 5000 units", text("a" * 5000), []),
    ("text 5001 units", text("a" * 5001), ["messages[0].text: longer than 5000"]),
    ("text 2500 emojis = 5000 units", text(EMOJI * 2500), []),
    ("text 2500 emojis + 1", text(EMOJI * 2500 + "a"), ["messages[0].text: longer than 5000"]),
    ("text 4999 + emoji", text("a" * 4999 + EMOJI), ["messages[0].text: longer than 5000"]),
    ("text 5000 non-BMP-free unicode", text("あ" * 5000), []),
    ("empty text", text(""), ["messages[0].text: must not be empty"]),
    ("text not a string", text(5), ["messages[0].text: must be a string"]),
    ("20 emojis", text("$", emojis=[{"index": 0, "productId": "p", "emojiId": "1"}] * 20), []),
    (
        "21 emojis",
        text("$", emojis=[{"index": 0, "productId": "p", "emojiId": "1"}] * 21),
        ["messages[0].emojis: at most 20 emojis"],
    ),
    ("altText 1500", template(VALID["confirm"]["template"], "a" * 1500), []),
    (
        "altText 1501",
        template(VALID["confirm"]["template"], "a" * 1501),
        ["messages[0].altText: longer than 1500"],
    ),
    (
        "flex altText 1501",
        [{**VALID["flex_bubble"], "altText": "x" * 1501}],
        ["messages[0].altText: longer than 1500"],
    ),
    ("url 2000", image(URL_2000), []),
    ("url 2001", image(URL_2000 + "a"), ["messages[0].originalContentUrl: longer than 2000"]),
    (
        "http refused",
        image("http://example.com/a.png"),
        ["messages[0].originalContentUrl: must be an https URL"],
    ),
    ("no scheme", image("example.com/a.png"), ["messages[0].originalContentUrl: must be an https URL"]),
    ("bare https", image("https://"), ["messages[0].originalContentUrl: must be an https URL"]),
    ("13 quick reply items", qr(13), []),
    ("14 quick reply items", qr(14), ["messages[0].quickReply.items: at most 13 items"]),
    ("0 quick reply items", qr(0), ["messages[0].quickReply.items: at least 1 item"]),
    ("sender name 20", text("x", sender={"name": "n" * 20}), []),
    ("sender name 21", text("x", sender={"name": "n" * 21}), ["messages[0].sender.name: longer than 20"]),
    (
        "sender icon http",
        text("x", sender={"iconUrl": "http://example.com/i.png"}),
        ["messages[0].sender.iconUrl: must be an https URL"],
    ),
    ("5 messages", [VALID["text"]] * 5, []),
    ("6 messages", [VALID["text"]] * 6, ["messages: at most 5 messages"]),
    ("0 messages", [], ["messages: at least 1 message"]),
    ("unknown type", [{"type": "foo"}], ["messages[0].type: unknown message type 'foo'"]),
    ("missing type", [{"text": "x"}], ["messages[0].type: required"]),
    ("missing text", [{"type": "text"}], ["messages[0].text: required"]),
    (
        "missing sticker ids",
        [{"type": "sticker"}],
        ["messages[0].packageId: required", "messages[0].stickerId: required"],
    ),
    (
        "sticker id int",
        [{"type": "sticker", "packageId": 1, "stickerId": "2"}],
        ["messages[0].packageId: must be a string"],
    ),
    (
        "audio duration 0",
        [{"type": "audio", "originalContentUrl": HTTPS, "duration": 0}],
        ["messages[0].duration: must be positive"],
    ),
    (
        "audio duration bool",
        [{"type": "audio", "originalContentUrl": HTTPS, "duration": True}],
        ["messages[0].duration: must be an integer"],
    ),
    (
        "location title 101",
        [{**VALID["location"], "title": "t" * 101}],
        ["messages[0].title: longer than 100"],
    ),
    (
        "location latitude string",
        [{**VALID["location"], "latitude": "35"}],
        ["messages[0].latitude: must be a number"],
    ),
    ("buttons text 160 no title", buttons("t" * 160), []),
    ("buttons text 161 no title", buttons("t" * 161), ["messages[0].template.text: longer than 160"]),
    ("buttons text 60 with title", buttons("t" * 60, title="T"), []),
    (
        "buttons text 61 with title",
        buttons("t" * 61, title="T"),
        ["messages[0].template.text: longer than 60"],
    ),
    (
        "buttons text 61 with thumbnail",
        buttons("t" * 61, thumbnailImageUrl=HTTPS),
        ["messages[0].template.text: longer than 60"],
    ),
    ("buttons title 41", buttons("t", title="T" * 41), ["messages[0].template.title: longer than 40"]),
    (
        "buttons 5 actions",
        template({"type": "buttons", "text": "t", "actions": [action()] * 5}),
        ["messages[0].template.actions: at most 4 actions"],
    ),
    (
        "action label 21",
        template({"type": "buttons", "text": "t", "actions": [action(label="L" * 21)]}),
        ["messages[0].template.actions[0].label: longer than 20"],
    ),
    (
        "action label missing",
        template({"type": "buttons", "text": "t", "actions": [{"type": "message", "text": "x"}]}),
        ["messages[0].template.actions[0].label: required"],
    ),
    ("confirm text 240", template({"type": "confirm", "text": "t" * 240, "actions": [action()] * 2}), []),
    (
        "confirm text 241",
        template({"type": "confirm", "text": "t" * 241, "actions": [action()] * 2}),
        ["messages[0].template.text: longer than 240"],
    ),
    (
        "confirm 3 actions",
        template({"type": "confirm", "text": "t", "actions": [action()] * 3}),
        ["messages[0].template.actions: at most 2 actions"],
    ),
    (
        "confirm 1 action",
        template({"type": "confirm", "text": "t", "actions": [action()]}),
        ["messages[0].template.actions: at least 2 actions"],
    ),
    (
        "carousel 10 columns",
        template({"type": "carousel", "columns": [{"text": "c", "actions": [action()]}] * 10}),
        [],
    ),
    (
        "carousel 11 columns",
        template({"type": "carousel", "columns": [{"text": "c", "actions": [action()]}] * 11}),
        ["messages[0].template.columns: at most 10 columns"],
    ),
    (
        "carousel uneven actions",
        template(
            {
                "type": "carousel",
                "columns": [{"text": "c", "actions": [action()]}, {"text": "c", "actions": [action()] * 2}],
            }
        ),
        ["messages[0].template.columns[1].actions: must have as many actions as the first column (1)"],
    ),
    (
        "image carousel 11 columns",
        template({"type": "image_carousel", "columns": [{"imageUrl": HTTPS, "action": action()}] * 11}),
        ["messages[0].template.columns: at most 10 columns"],
    ),
    (
        "unknown template type",
        template({"type": "list"}),
        ["messages[0].template.type: unknown template type 'list'"],
    ),
    (
        "action uri 1000",
        template({"type": "buttons", "text": "t", "actions": [action("uri", uri=URI_1000)]}),
        [],
    ),
    (
        "action uri 1001",
        template({"type": "buttons", "text": "t", "actions": [action("uri", uri=URI_1000 + "a")]}),
        ["messages[0].template.actions[0].uri: longer than 1000"],
    ),
    (
        "action uri http and line accepted",
        template(
            {
                "type": "buttons",
                "text": "t",
                "actions": [action("uri", uri="http://x.jp"), action("uri", uri="line://nv/camera/")],
            }
        ),
        [],
    ),
    (
        "action uri javascript refused",
        template({"type": "buttons", "text": "t", "actions": [action("uri", uri="javascript:alert(1)")]}),
        ["messages[0].template.actions[0].uri: must be an http, https, line or tel URL"],
    ),
    (
        "unknown action type",
        template({"type": "buttons", "text": "t", "actions": [{"type": "teleport", "label": "go"}]}),
        ["messages[0].template.actions[0].type: unknown action type 'teleport'"],
    ),
    (
        "datetimepicker bad mode",
        template({"type": "buttons", "text": "t", "actions": [action("datetimepicker", mode="week")]}),
        ["messages[0].template.actions[0].mode: must be one of date, datetime, time"],
    ),
    (
        "postback data 301",
        template({"type": "buttons", "text": "t", "actions": [action("postback", data="d" * 301)]}),
        ["messages[0].template.actions[0].data: longer than 300"],
    ),
    (
        "flex carousel 12 bubbles",
        [{"type": "flex", "altText": "a", "contents": {"type": "carousel", "contents": [bubble()] * 12}}],
        [],
    ),
    (
        "flex carousel 13 bubbles",
        [{"type": "flex", "altText": "a", "contents": {"type": "carousel", "contents": [bubble()] * 13}}],
        ["messages[0].contents.contents: at most 12 bubbles"],
    ),
    (
        "flex bad size",
        [{"type": "flex", "altText": "a", "contents": bubble(size="huge")}],
        ["messages[0].contents.size: must be one of deca, giga, hecto, kilo, mega, micro, nano"],
    ),
    (
        "flex unknown container",
        [{"type": "flex", "altText": "a", "contents": {"type": "box"}}],
        ["messages[0].contents.type: unknown flex container type 'box'"],
    ),
    ("coupon id missing", [{"type": "coupon"}], ["messages[0].couponId: required"]),
    (
        "textV2 missing substitution key",
        [{"type": "textV2", "text": "Hi {user}"}],
        ["messages[0].substitution.user: required: text references {user}"],
    ),
    (
        "textV2 bad substitution type",
        [{"type": "textV2", "text": "{a}", "substitution": {"a": {"type": "sticker"}}}],
        ["messages[0].substitution.a.type: unknown substitution type 'sticker'"],
    ),
    (
        "imagemap baseSize not ints",
        [{**VALID["imagemap"], "baseSize": {"width": "1040", "height": 1040.5}}],
        ["messages[0].baseSize.width: must be an integer", "messages[0].baseSize.height: must be an integer"],
    ),
    (
        "quick reply item type",
        text("x", quickReply={"items": [{"type": "button", "action": action()}]}),
        ["messages[0].quickReply.items[0].type: must be 'action'"],
    ),
    (
        "quick reply item without action",
        text("x", quickReply={"items": [{"type": "action"}]}),
        ["messages[0].quickReply.items[0].action: required"],
    ),
]


@pytest.mark.parametrize(("messages", "expected"), [c[1:] for c in BOUNDARIES], ids=[c[0] for c in BOUNDARIES])
def test_limits_and_exact_paths(messages: object, expected: list[str]) -> None:
    assert problems(messages) == expected


def test_quick_reply_item_path_index() -> None:
    items: list[dict[str, Any]] = [{"type": "action", "action": action()} for _ in range(14)]
    items[13] = {"type": "action", "action": {"type": "message", "label": "x"}}
    assert problems(text("x", quickReply={"items": items[:13]})) == []
    assert "messages[0].quickReply.items[12].action.text: required" in problems(
        text("x", quickReply={"items": items[1:]})
    )


def test_nested_flex_action_path() -> None:
    b = bubble()
    b["body"]["contents"][2] = {
        "type": "box",
        "layout": "vertical",
        "contents": [],
        "action": {"type": "uri", "uri": "ftp://example.com"},
    }
    msgs = [VALID["text"], {"type": "flex", "altText": "a", "contents": b}]
    assert problems(msgs) == [
        "messages[1].contents.body.contents[2].action.uri: must be an http, https, line or tel URL"
    ]


def test_every_problem_is_reported_not_just_the_first() -> None:
    msgs = [{"type": "text", "text": ""}, {"type": "image"}, {"type": "nope"}]
    assert problems(msgs) == [
        "messages[0].text: must not be empty",
        "messages[1].originalContentUrl: required",
        "messages[1].previewImageUrl: required",
        "messages[2].type: unknown message type 'nope'",
    ]


def test_custom_path_prefix() -> None:
    assert validate_messages([{"type": "text"}], path="body.messages") == [
        FieldProblem("body.messages[0].text", "required")
    ]


def _flex_of_size(target: int) -> dict[str, Any]:
    """A bubble whose compact JSON is exactly ``target`` bytes."""
    b: dict[str, Any] = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "contents": []},
        "pad": "",
    }
    size = len(json.dumps(b, separators=(",", ":")).encode())
    b["pad"] = "x" * (target - size)
    assert len(json.dumps(b, separators=(",", ":")).encode()) == target
    return b


@pytest.mark.parametrize(
    ("size", "expected"),
    [(30_000, []), (30_001, ["messages[0].contents: larger than 30000 bytes"])],
)
def test_flex_bubble_size_limit(size: int, expected: list[str]) -> None:
    assert problems([{"type": "flex", "altText": "a", "contents": _flex_of_size(size)}]) == expected


def test_flex_carousel_size_limits() -> None:
    big = _flex_of_size(20_000)
    carousel = {"type": "carousel", "contents": [big, big, big]}  # about 60 KB in all
    assert problems([{"type": "flex", "altText": "a", "contents": carousel}]) == [
        "messages[0].contents: larger than 50000 bytes"
    ]
    too_big_bubble = {"type": "carousel", "contents": [_flex_of_size(30_001)]}
    assert problems([{"type": "flex", "altText": "a", "contents": too_big_bubble}]) == [
        "messages[0].contents.contents[0]: larger than 30000 bytes"
    ]


# --------------------------------------------------------------------------- templated mode


def test_templated_accepts_placeholder_url_but_plain_mode_does_not() -> None:
    msg = image("{{url}}")
    assert problems(msg, templated=True) == []
    assert problems(msg) == ["messages[0].originalContentUrl: must be an https URL"]


def test_templated_still_requires_the_key() -> None:
    assert problems([{"type": "image", "previewImageUrl": "{{preview}}"}], templated=True) == [
        "messages[0].originalContentUrl: required"
    ]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "audio", "originalContentUrl": "{{u}}", "duration": "{{ms}}"},
        {
            "type": "location",
            "title": "{{t}}",
            "address": "{{a}}",
            "latitude": "{{lat}}",
            "longitude": "{{lon}}",
        },
        {"type": "text", "text": "{{name}}" + "x" * 6000},
        {"type": "flex", "altText": "{{alt}}", "contents": bubble(size="{{size}}")},
        {"type": "text", "text": "hi", "sender": {"name": "{{sender_name_that_is_long}}"}},
    ],
)
def test_templated_skips_content_checks(message: dict[str, Any]) -> None:
    assert problems([message], templated=True) == []
    assert problems([message]) != []


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"type": "{{kind}}"}], ["messages[0].type: unknown message type '{{kind}}'"]),
        ([], ["messages: at least 1 message"]),
        (qr(14), ["messages[0].quickReply.items: at most 13 items"]),
        (
            template({"type": "confirm", "text": "{{q}}", "actions": "{{actions}}"}),
            ["messages[0].template.actions: must be a list"],
        ),
    ],
)
def test_templated_still_checks_structure(messages: object, expected: list[str]) -> None:
    assert problems(messages, templated=True) == expected


# --------------------------------------------------------------------------- weird input


def _deep_dict(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    cur = root
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return root


def _deep_box(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {"type": "box", "layout": "vertical", "contents": []}
    cur = root
    for _ in range(depth):
        child: dict[str, Any] = {"type": "box", "layout": "vertical", "contents": []}
        cur["contents"].append(child)
        cur = child
    return root


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["messages: required"]),
        ("hello", ["messages: must be a list"]),
        ({"type": "text", "text": "x"}, ["messages: must be a list"]),
        ([1, 2], ["messages[0]: must be an object", "messages[1]: must be an object"]),
        ([None], ["messages[0]: must be an object"]),
        ([{"type": 7}], ["messages[0].type: must be a string"]),
        (_deep_dict(10_000), ["messages: must be a list"]),
        ([_deep_dict(10_000)], ["messages[0].type: required"]),
        ([{"type": "text", "text": "x", "extra": _deep_dict(10_000)}], []),
        ([{"type": "text", "text": "\ud800"}], []),  # lone surrogate from json.loads
        (
            [
                {
                    "type": "location",
                    "title": "t",
                    "address": "a",
                    "latitude": float("nan"),
                    "longitude": 1e999,
                }
            ],
            [
                "messages[0].latitude: must be between -90 and 90",
                "messages[0].longitude: must be between -180 and 180",
            ],
        ),
        (
            [{"type": "text", "text": "x", "quickReply": [], "sender": "me"}],
            ["messages[0].quickReply: must be an object", "messages[0].sender: must be an object"],
        ),
    ],
)
def test_weird_input_returns_problems(value: object, expected: list[str]) -> None:
    assert problems(value) == expected


def test_huge_numbers_are_problems_not_crashes() -> None:
    loc = {"type": "location", "title": "t", "address": "a", "latitude": 10**400, "longitude": -(10**400)}
    assert problems([loc]) == [
        "messages[0].latitude: must be between -90 and 90",
        "messages[0].longitude: must be between -180 and 180",
    ]
    audio = {"type": "audio", "originalContentUrl": HTTPS, "duration": 2**63}
    assert problems([audio]) == [f"messages[0].duration: must be at most {2**63 - 1}"]
    flex = {"type": "flex", "altText": "a", "contents": {**bubble(), "x": 10**400}}
    assert problems([flex]) == ["messages[0].contents: is not plain JSON"]


def test_push_with_one_short_text_is_fast() -> None:
    body = push()
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        validate_push_request(body)
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 100e-6  # about 3 µs on a laptop; generous bound so CI noise never trips it


def test_deeply_nested_flex_reports_instead_of_overflowing() -> None:
    msg = [{"type": "flex", "altText": "a", "contents": {"type": "bubble", "body": _deep_box(10_000)}}]
    found = problems(msg)
    assert any("nested too deeply" in p for p in found)
    deep_extra = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "contents": [], "x": _deep_dict(10_000)},
    }
    assert problems([{"type": "flex", "altText": "a", "contents": deep_extra}]) == [
        "messages[0].contents: nested too deeply"
    ]


def test_huge_input_is_handled() -> None:
    many = [VALID["text"]] * 10_000
    assert problems(many) == ["messages: at most 5 messages"]
    assert problems(text("a" * 1_000_000)) == ["messages[0].text: longer than 5000"]


def test_input_is_not_mutated() -> None:
    msgs = [copy.deepcopy(VALID[name]) for name in ("flex_carousel", "buttons", "textV2")]
    before = copy.deepcopy(msgs)
    validate_messages(msgs)
    assert msgs == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=40,
)

MESSAGE_KEYS = [
    "text",
    "emojis",
    "substitution",
    "originalContentUrl",
    "previewImageUrl",
    "duration",
    "title",
    "address",
    "latitude",
    "longitude",
    "baseUrl",
    "altText",
    "baseSize",
    "actions",
    "template",
    "contents",
    "quickReply",
    "sender",
    "couponId",
    "packageId",
    "stickerId",
    "video",
    "items",
    "action",
    "columns",
    "body",
    "hero",
    "layout",
    "uri",
    "label",
    "type",
    "mode",
    "size",
]
TYPES = [
    "text",
    "textV2",
    "sticker",
    "image",
    "video",
    "audio",
    "location",
    "imagemap",
    "template",
    "flex",
    "coupon",
    "buttons",
    "confirm",
    "carousel",
    "image_carousel",
    "bubble",
    "box",
    "button",
    "uri",
    "message",
    "action",
    "mention",
    "emoji",
    "span",
    "image",
]
# Values shaped like messages, so that the fuzzing reaches the type-specific checkers.
message_like: st.SearchStrategy[Any] = st.recursive(
    st.sampled_from([*TYPES, "https://example.com/x", "{{x}}", "", 0, -1, 3.5, True, None]) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(MESSAGE_KEYS), children, max_size=6)
        | st.fixed_dictionaries({"type": st.sampled_from(TYPES)}, optional={k: children for k in MESSAGE_KEYS[:10]})
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_never_raises_on_arbitrary_json(value: object, templated: bool) -> None:
    result = validate_messages(value, templated=templated)
    assert all(isinstance(p, FieldProblem) for p in result)
    assert validate_messages([value], templated=templated) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(message_like, max_size=6), st.booleans())
def test_never_raises_on_message_shaped_values(value: list[Any], templated: bool) -> None:
    for p in validate_messages(value, templated=templated):
        assert p.path.startswith("messages")
        assert p.reason


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["to", "messages", "notificationDisabled", "customAggregationUnits"]), message_like)
)
def test_push_request_never_raises(body: dict[str, Any]) -> None:
    validate_push_request(body)


# --------------------------------------------------------------------------- push requests


def push(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": USER, "messages": [{"type": "text", "text": "hi"}]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


PUSH_CASES: list[tuple[str, object, list[str]]] = [
    ("user", push(), []),
    ("group", push(to="C" + "a" * 32), []),
    ("room", push(to="R" + "0" * 32), []),
    (
        "unknown keys ignored",
        push(extra=1, notificationDisabled=True, customAggregationUnits=["promo_2024"]),
        [],
    ),
    (
        "uppercase hex",
        push(to="U" + "A" * 32),
        ["to: must be a user, group or room ID (U, C or R and 32 lowercase hex digits)"],
    ),
    (
        "wrong prefix",
        push(to="X" + "0" * 32),
        ["to: must be a user, group or room ID (U, C or R and 32 lowercase hex digits)"],
    ),
    (
        "31 hex",
        push(to="U" + "0" * 31),
        ["to: must be a user, group or room ID (U, C or R and 32 lowercase hex digits)"],
    ),
    (
        "trailing newline",
        push(to=USER + "\n"),
        ["to: must be a user, group or room ID (U, C or R and 32 lowercase hex digits)"],
    ),
    ("to missing", push(to=...), ["to: required"]),
    ("to int", push(to=5), ["to: must be a string"]),
    ("messages missing", push(messages=...), ["messages: required"]),
    (
        "messages bad",
        push(messages=[{"type": "text", "text": "a" * 5001}]),
        ["messages[0].text: longer than 5000"],
    ),
    ("6 messages", push(messages=[{"type": "text", "text": "a"}] * 6), ["messages: at most 5 messages"]),
    (
        "notificationDisabled str",
        push(notificationDisabled="true"),
        ["notificationDisabled: must be true or false"],
    ),
    ("units empty list", push(customAggregationUnits=[]), []),
    ("unit 30 chars", push(customAggregationUnits=["a" * 30]), []),
    (
        "unit 31 chars",
        push(customAggregationUnits=["a" * 31]),
        ["customAggregationUnits[0]: must be 1 to 30 letters, digits or underscores"],
    ),
    (
        "unit bad chars",
        push(customAggregationUnits=["a-b"]),
        ["customAggregationUnits[0]: must be 1 to 30 letters, digits or underscores"],
    ),
    (
        "unit empty",
        push(customAggregationUnits=[""]),
        ["customAggregationUnits[0]: must be 1 to 30 letters, digits or underscores"],
    ),
    ("two units", push(customAggregationUnits=["a", "b"]), ["customAggregationUnits: at most 1 unit"]),
    ("units not list", push(customAggregationUnits="a"), ["customAggregationUnits: must be a list"]),
    ("body list", [], ["request body must be a JSON object"]),
    ("body none", None, ["request body must be a JSON object"]),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in PUSH_CASES], ids=[c[0] for c in PUSH_CASES])
def test_push_request(body: object, expected: list[str]) -> None:
    assert [str(p) for p in validate_push_request(body)] == expected


def test_max_messages_constant() -> None:
    assert MAX_MESSAGES == 5
