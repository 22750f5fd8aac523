"""The visual preview in a real browser: Debian's Chromium driven by Playwright, the app under uvicorn.

An activation whose five messages are a text with a LINE emoji, a sticker, a buttons template, a
carousel and a flex bubble is opened on its Preview page: the chat shows each of them (texts,
labels, the flex text in its JSON colour) beside the exact JSON, and the page logs no error (a CSP
violation would be one). Images on https hosts (LINE's CDN, the payload's pictures) are answered by
the test with small generated PNGs: nothing leaves the machine, and the README's screenshot shows
what a user with a network sees.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    browser_settings,
    collect_console_errors,
    log_in,
    playwright_or_skip,
    screenshot,
    served,
)

from lineoa_export import apikeys, authentications
from lineoa_export.authentications import BotInfo, Credentials
from lineoa_export.context import open_context
from lineoa_export.operations import Operations
from lineoa_export.testing import user_id

sync_api = playwright_or_skip()

EMOJI = {"index": 0, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001"}
SAME = [{"type": "message", "label": "Add to cart", "text": "add"}]


def _product(name: str, price: str) -> dict[str, Any]:
    url = f"https://cdn.example.com/{name.lower().replace(' ', '-')}.jpg"
    return {"thumbnailImageUrl": url, "title": name, "text": price, "actions": SAME}


def _row(item: str, price: str, **style: Any) -> dict[str, Any]:
    return {
        "type": "box",
        "layout": "horizontal",
        "contents": [
            {"type": "text", "text": item, "size": "sm", "color": "#555555", "flex": 0, **style},
            {"type": "text", "text": price, "size": "sm", "color": "#111111", "align": "end", **style},
        ],
    }


RECEIPT = {
    "type": "bubble",
    "hero": {
        "type": "image",
        "url": "https://cdn.example.com/cafe.jpg",
        "size": "full",
        "aspectRatio": "20:13",
        "aspectMode": "cover",
    },
    "body": {
        "type": "box",
        "layout": "vertical",
        "contents": [
            {"type": "text", "text": "RECEIPT", "weight": "bold", "color": "#1DB446", "size": "sm"},
            {"type": "text", "text": "LINE Cafe", "weight": "bold", "size": "xxl", "margin": "md"},
            {"type": "text", "text": "Shibuya, Tokyo", "size": "xs", "color": "#aaaaaa", "wrap": True},
            {"type": "separator", "margin": "xxl"},
            {
                "type": "box",
                "layout": "vertical",
                "margin": "xxl",
                "spacing": "sm",
                "contents": [
                    _row("Teapot", "¥2,400"),
                    _row("Mug", "¥800"),
                    {"type": "separator", "margin": "md"},
                    _row("TOTAL", "¥3,200", weight="bold"),
                ],
            },
        ],
    },
    "footer": {
        "type": "box",
        "layout": "vertical",
        "spacing": "sm",
        "contents": [
            {
                "type": "button",
                "style": "primary",
                "color": "#06c755",
                "action": {"type": "uri", "label": "View order", "uri": "https://shop.example.com/o/1024"},
            },
            {"type": "button", "style": "link", "action": {"type": "message", "label": "Contact us", "text": "help"}},
        ],
    },
    "styles": {"footer": {"separator": True}},
}
MESSAGES = [
    {"type": "text", "text": "$ Hello {{name}}!\nYour order #1024 has shipped.", "emojis": [EMOJI]},
    {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    {
        "type": "template",
        "altText": "Your order",
        "template": {
            "type": "buttons",
            "thumbnailImageUrl": "https://cdn.example.com/parcel.jpg",
            "title": "Order #1024",
            "text": "2 items, ¥3,200. Arrives Friday.",
            "actions": [
                {"type": "uri", "label": "Track delivery", "uri": "https://shop.example.com/track/1024"},
                {"type": "message", "label": "Change address", "text": "address"},
            ],
        },
    },
    {
        "type": "template",
        "altText": "You may also like",
        "template": {
            "type": "carousel",
            "columns": [_product("Teapot", "¥2,400"), _product("Mug", "¥800"), _product("Green tea", "¥1,200")],
        },
    },
    {
        "type": "flex",
        "altText": "Receipt",
        "contents": RECEIPT,
        "quickReply": {
            "items": [
                {"type": "action", "action": {"type": "message", "label": "Thanks!", "text": "thanks"}},
                {"type": "action", "action": {"type": "message", "label": "Where is it?", "text": "where"}},
            ]
        },
    },
]


# -- pictures for the https hosts the page asks (no network here) ---------------------------------


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    """A small RGBA PNG drawn by ``pixel(x, y)``."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def face(size: int, skin: tuple[int, int, int]) -> bytes:
    """A round face with two eyes (the sticker, the emoji)."""
    r = size / 2

    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        for ex in (0.35, 0.65):
            if (x - ex * size) ** 2 + (y - 0.42 * size) ** 2 < (size * 0.07) ** 2:
                return (40, 30, 20, 255)
        inside = (x - r) ** 2 + (y - r) ** 2 < (r - 1) ** 2
        return (*skin, 255) if inside else (0, 0, 0, 0)

    return png(size, size, pixel)


def photo(url: str) -> bytes:
    """A soft two-colour gradient, its colours picked by the URL."""
    seed = zlib.crc32(url.encode())
    a = (seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF)
    b = (255 - a[1] // 2, 200, 160 + a[0] // 4)
    w, h = 120, 80
    return png(w, h, lambda x, y: (*(int(a[i] + (b[i] - a[i]) * (x + y) / (w + h)) for i in range(3)), 255))


def answer_images(page: Any) -> list[str]:
    """Answer every https request of ``page`` with a picture; the URLs asked, in order."""
    asked: list[str] = []
    pictures = {"sticon": face(40, (255, 204, 0)), "sticker": face(150, (176, 120, 72))}

    def fulfil(route: Any) -> None:
        url = route.request.url
        asked.append(url)
        kind = "sticon" if "/sticonshop/" in url else "sticker" if "/stickershop/" in url else None
        body = pictures[kind] if kind else photo(url)
        route.fulfill(status=200, content_type="image/png", body=body)

    page.route(re.compile(r"^https://"), fulfil)
    return asked


def test_preview_shows_a_line_chat_beside_the_json(tmp_path: Path) -> None:
    settings = browser_settings(tmp_path, "preview")
    ctx = open_context(settings)
    authentications.create(
        ctx.db,
        ctx.vault,
        name="line",
        credentials=Credentials.from_options("token", None, None),
        bot=BotInfo(user_id(9), "LINE Cafe"),
        now=ctx.clock.now(),
    )
    Operations(ctx).create_activation(
        "order-shipped",
        {"authentication": "line", "recipient": "{{line_user_id}}", "messages": MESSAGES},
    )
    key = apikeys.create(ctx.db, "ops", now=ctx.clock.now())
    with served(ctx) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors = collect_console_errors(page)
            asked = answer_images(page)
            log_in(page, base, key, start="/console/activations/order-shipped")
            page.click("a.button:has-text('Preview')")
            page.wait_for_url(f"{base}/console/activations/order-shipped/preview")
            check_chat(page, asked)
            check_json(page)
            screenshot(page, "preview", readme=True)

            # the activation form's Preview draws the same chat (its own nonce, its own CSP)
            page.goto(f"{base}/console/activations/order-shipped/edit")
            page.click("button[value=preview]")
            page.wait_for_selector(".cp-phone")
            assert page.locator(".cp-phone .cp-row").count() == 5
            flex_text = page.locator(".cp-t", has_text="RECEIPT")
            assert flex_text.evaluate("e => getComputedStyle(e).color") == "rgb(29, 180, 70)"
            screenshot(page, "preview-form")
            assert errors == []
        finally:
            browser.close()
            ctx.close()


def check_chat(page: Any, asked: list[str]) -> None:
    phone = page.locator(".cp-phone")
    assert phone.is_visible()
    assert page.locator(".cp-title").inner_text() == "LINE Cafe"
    assert page.locator(".cp-phone .cp-row").count() == 5
    # 1: the text, its LINE emoji in place of the $ (the first thing in the bubble), loaded
    text = page.locator(".cp-text").first
    assert "Hello Ann!\nYour order #1024 has shipped." in text.inner_text()
    emoji = text.locator("img.cp-emoji")
    assert emoji.get_attribute("src").endswith("/sticon/5ac1bfd5040ab15980c9b435/iPhone/001.png")
    assert text.evaluate("e => e.firstChild.nodeName") == "IMG"
    assert emoji.evaluate("e => e.complete && e.naturalWidth") == 40
    # 2: the sticker, its IDs as alt text
    sticker = page.locator("img.cp-sticker")
    assert sticker.get_attribute("alt") == "sticker 446/1988" and sticker.is_visible()
    assert any(u.endswith("/stickershop/v1/sticker/1988/android/sticker.png") for u in asked)
    # 3: the buttons template
    for label in ("Order #1024", "2 items, ¥3,200. Arrives Friday.", "Track delivery", "Change address"):
        assert page.get_by_text(label, exact=True).is_visible(), label
    # 4: the carousel, three columns side by side in a strip that scrolls
    columns = page.locator(".cp-scroll .cp-col")
    assert columns.count() == 3
    assert page.locator(".cp-scroll").evaluate("e => getComputedStyle(e).overflowX") == "auto"
    boxes = [columns.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    assert page.locator(".cp-col", has_text="Green tea").locator(".cp-tpl-btn").inner_text() == "Add to cart"
    # 5: the flex bubble: the text in its JSON colour, sizes, the buttons
    receipt = page.locator(".cp-t", has_text="RECEIPT")
    assert receipt.evaluate("e => getComputedStyle(e).color") == "rgb(29, 180, 70)"
    assert receipt.evaluate("e => getComputedStyle(e).fontWeight") == "700"
    assert page.locator(".cp-t", has_text="LINE Cafe").evaluate("e => getComputedStyle(e).fontSize") == "29px"
    button = page.locator(".cp-btn-primary")
    assert button.inner_text() == "View order"
    assert button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(6, 199, 85)"
    assert page.locator(".cp-btn-link").inner_text() == "Contact us"
    total = page.locator(".cp-box.cp-h", has_text="TOTAL")
    assert total.locator(".cp-t").nth(1).evaluate("e => getComputedStyle(e).textAlign") == "end"
    # the last message's quick reply, as chips
    assert page.locator(".cp-quick .cp-chip").all_inner_texts() == ["Thanks!", "Where is it?"]


def check_json(page: Any) -> None:
    """The exact request body beside (not under) the chat."""
    pre = page.locator("pre.cp-json")
    body = json.loads(pre.inner_text())
    assert body["to"] == "U0123456789abcdef0123456789abcdef"
    assert [m["type"] for m in body["messages"]] == ["text", "sticker", "template", "template", "flex"]
    assert body["messages"][0]["text"] == "$ Hello Ann!\nYour order #1024 has shipped."
    phone, json_box = page.locator(".cp-phone").bounding_box(), pre.bounding_box()
    assert json_box["x"] >= phone["x"] + phone["width"] and json_box["y"] < phone["y"] + phone["height"]
