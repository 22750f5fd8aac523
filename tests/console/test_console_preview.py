"""The console's previews, in process: the activation form's Preview and an activation's Preview page
show the messages as a LINE chat next to the exact JSON, under a CSP whose only inline style is the
page's nonce'd block of validated rules."""

from __future__ import annotations

import json
import re
from html import unescape

from console_support import Console, csrf_of, img_src

from lineoa_export import activations, apikeys, authentications
from lineoa_export.authentications import BotInfo, Credentials
from lineoa_export.testing import user_id
from lineoa_export.web.console import forms

MESSAGES = [
    {"type": "text", "text": "$ Hi {{name}}, your {{order.items.0.name}} shipped"},
    {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    {
        "type": "flex",
        "altText": "Receipt",
        "contents": {
            "type": "bubble",
            "body": {
                "type": "box",
                "layout": "vertical",
                "contents": [{"type": "text", "text": "RECEIPT", "color": "#1DB446", "weight": "bold"}],
            },
        },
    },
]
MESSAGES[0]["emojis"] = [{"index": 0, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001"}]
PREVIEW = "/console/activations/order/preview"


def setup(c: Console, messages: list[dict[str, object]] | None = None) -> None:
    authentications.create(
        c.ctx.db,
        c.ctx.vault,
        name="line",
        credentials=Credentials.from_options("tok", None, None),
        api_url="https://api.line.me",
        bot=BotInfo(user_id(9), "Brown's Shop"),
        now=c.ctx.clock.now(),
    )
    fields = {
        "name": "order",
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": json.dumps(messages or MESSAGES),
        "max_retries": "3",
        "initial_retry_delay": "2",
        "retry_delay_multiple": "2",
    }
    assert c.post("/console/activations", fields, follow=False).status_code == 303


def nonce_of(response: object) -> str:
    csp = response.headers["Content-Security-Policy"]  # type: ignore[attr-defined]
    match = re.search(r"style-src 'self' 'nonce-([A-Za-z0-9_-]{20,})';", csp)
    assert match, csp
    assert "unsafe-inline" not in csp and "script-src 'self';" in csp
    return match.group(1)


def test_an_activations_preview_page_shows_the_chat_and_the_exact_json(logged_in: Console) -> None:
    setup(logged_in)
    table = logged_in.client.get("/console/activations/order").text
    assert 'href="/console/activations/order/preview"' in table
    page = logged_in.client.get(PREVIEW)
    assert page.status_code == 200
    html, text = page.text, unescape(page.text)
    # the sample event: a value for every placeholder (the recipient's a valid user ID)
    assert '"line_user_id": "U0123456789abcdef0123456789abcdef"' in text and '"name": "Ann"' in text
    assert '"name": "[order.items.0.name]"' in text
    # the exact request, as JSON
    assert "POST https://api.line.me/v2/bot/message/push" in text
    assert '"text": "$ Hi Ann, your [order.items.0.name] shipped"' in text and '"stickerId": "1988"' in text
    # the chat: the bot's name, the text with its emoji image, the sticker, the flex text and its colour
    assert 'class="cp-phone"' in html and "Brown's Shop" in text
    assert " Hi Ann, your [order.items.0.name] shipped</div>" in text
    assert "sticon/5ac1bfd5040ab15980c9b435/iPhone/001.png" in html
    assert 'alt="sticker 446/1988"' in html and "stickershop/v1/sticker/1988/android/sticker.png" in html
    assert re.search(r'<div class="cp-t cp-bold cp-fg-1db446">RECEIPT</div>', html)
    # the colour's rule is in the page's one nonce'd style block; no style attribute anywhere
    nonce = nonce_of(page)
    assert f'<style nonce="{nonce}">.cp-fg-1db446{{color:#1db446}}</style>' in html
    assert " style=" not in html and html.count("<style") == 1
    assert img_src(page) == "img-src 'self' https:"  # the messages' images, from their own hosts


def test_the_preview_takes_a_typed_event_and_says_why_one_fails(logged_in: Console) -> None:
    setup(logged_in)
    event = {"line_user_id": user_id(1), "name": "Cony", "order": {"items": [{"name": "teapot"}]}}
    ok = logged_in.post(PREVIEW, {"sample_event": json.dumps(event)}, page=PREVIEW)
    assert ok.status_code == 200 and " Hi Cony, your teapot shipped</div>" in unescape(ok.text)
    assert f'"to": "{user_id(1)}"' in unescape(ok.text)
    for bad, says in (
        ("{not json", "The sample event is not valid JSON"),
        ("[1]", "must be a JSON object"),
        (json.dumps({"line_user_id": user_id(1)}), "This event would be recorded as failed: variable not found: name"),
    ):
        page = logged_in.post(PREVIEW, {"sample_event": bad}, page=PREVIEW)
        assert page.status_code == 200 and says in unescape(page.text), bad
        assert "cp-phone" not in page.text


def test_a_read_key_may_preview_and_nothing_is_sent_or_stored(logged_in: Console) -> None:
    setup(logged_in)
    reader = apikeys.create(logged_in.ctx.db, "viewer", now=logged_in.ctx.clock.now(), role="read")
    logged_in.client.post("/console/logout", data={"csrf": csrf_of(logged_in.client.get("/console/activations").text)})
    assert logged_in.login(reader).status_code == 303
    assert logged_in.client.get(PREVIEW).status_code == 200
    assert logged_in.post(PREVIEW, {"sample_event": "{}"}, page=PREVIEW).status_code == 200
    assert "No events" in logged_in.client.get("/console/activations/order").text


def test_hostile_payload_is_escaped_in_the_preview(logged_in: Console) -> None:
    hostile = [
        {"type": "text", "text": "<script>alert(1)</script>"},
        {
            "type": "flex",
            "altText": "x",
            "contents": {
                "type": "bubble",
                "hero": {"type": "image", "url": "https://a.example/i.png?<b>", "size": "full"},
                "body": {
                    "type": "box",
                    "layout": "vertical",
                    "contents": [{"type": "text", "text": "</style><script>x()</script>", "color": "#ABCDEF"}],
                },
            },
        },
    ]
    setup(logged_in, hostile)
    html = logged_in.client.get(PREVIEW).text
    assert "<script>" not in html and "</style><script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'src="https://a.example/i.png?&lt;b&gt;"' in html


def test_the_form_preview_shows_the_chat_beside_the_json(logged_in: Console) -> None:
    setup(logged_in)
    form = {
        "name": "draft",
        "authentication": "line",
        "recipient": "{{line_user_id}}",
        "messages": json.dumps(MESSAGES),
        "max_retries": "3",
        "initial_retry_delay": "2",
        "retry_delay_multiple": "2",
        "action": "preview",
        "sample_event": json.dumps(
            {"line_user_id": user_id(2), "name": "Sally", "order": {"items": [{"name": "mug"}]}}
        ),
    }
    page = logged_in.post("/console/activations", form)
    text = unescape(page.text)
    assert page.status_code == 200 and 'class="cp-pair"' in page.text
    assert '"text": "$ Hi Sally, your mug shipped"' in text  # the JSON
    assert " Hi Sally, your mug shipped</div>" in text and "Brown's Shop" in text  # the chat
    assert f'<style nonce="{nonce_of(page)}">' in page.text
    assert img_src(page) == "img-src 'self' https:"
    plain = logged_in.client.get("/console/activations/new")
    assert "'nonce-" not in plain.headers["Content-Security-Policy"]  # only a preview's answer carries one
    assert img_src(plain) == "img-src 'self'"  # and only it lets in images from elsewhere


def test_the_sample_event_has_a_value_for_every_placeholder() -> None:
    spec = activations.ActivationSpec.model_construct(
        recipient="{{to}}",
        messages=[
            {"type": "text", "text": "{{name}} {{cart}} {{cart.total}} {{items.1.name}} {{x.9999}}"},
            {"type": "image", "originalContentUrl": "{{photo_url}}", "previewImageUrl": "{{photo_url}}"},
        ],
    )
    assert forms.placeholder_event(spec) == {
        "to": "U0123456789abcdef0123456789abcdef",  # the recipient's: a valid ID, so the preview renders
        "name": "Ann",  # as in the form's default sample event
        "cart": {"total": "[cart.total]"},  # an object (deepest first), shown as JSON where {{cart}} is
        "items": [None, {"name": "[items.1.name]"}],
        "photo_url": "https://example.com/photo_url",
        "x": [],  # an index over 99 is left out (the preview then says which value is missing)
    }
