"""The console's routes, in process: sessions, CSRF, forms, validation errors, and no secret in any page."""

from __future__ import annotations

import asyncio
import re
from html import unescape

import pytest
from console_support import Console, csrf_of

from lineoa_export import activation_table, activations, apikeys, authentications
from lineoa_export.activations import NEGATIVE_DELAY
from lineoa_export.delivery import triggers
from lineoa_export.delivery.worker import Worker
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN
from lineoa_export.testing import ThreadedSimulator, user_id

TOKEN = "console-secret-token-DO-NOT-SHOW"
CHANNEL_SECRET = "console-channel-secret-DO-NOT-SHOW"
PAGES = ("/console/activations", "/console/authentications", "/console/activations/new")
ACTIVATION = {
    "name": "welcome",
    "description": "Say hello",
    "authentication": "line",
    "recipient": "{{line_user_id}}",
    "messages": '[{"type": "text", "text": "Hello {{name}}"}]',
    "max_retries": "3",
    "initial_retry_delay": "2",
    "retry_delay_multiple": "2",
}


def value_of(html: str, field: str) -> str:
    """The value of ``<input name=field>`` or the text of ``<textarea name=field>``."""
    match = re.search(rf'<input[^>]*name="{field}"[^>]*value="([^"]*)"', html)
    if match is None:
        match = re.search(rf'<textarea[^>]*name="{field}"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, f"no field {field!r}"
    return unescape(match.group(1))


def selected(html: str, field: str) -> str | None:
    select = re.search(rf'<select[^>]*name="{field}".*?</select>', html, re.S)
    assert select, f"no select {field!r}"
    match = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    return unescape(match.group(1)) if match else None


def add_auth(c: Console, name: str = "line", **fields: str) -> None:
    data = {"name": name, "access_token": TOKEN, "api_url": "https://api.line.me", "skip_test": "on", **fields}
    assert c.post("/console/authentications", data).status_code == 200


def add_activation(c: Console, **fields: str) -> None:
    response = c.post("/console/activations", {**ACTIVATION, **fields}, follow=False)
    assert response.status_code == 303, response.text


# -- sessions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/console/activations/welcome", "/console/activations/welcome/table.csv"])
def test_pages_require_login(console: Console, path: str) -> None:
    response = console.client.get(path, allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_posts_require_login(console: Console) -> None:
    response = console.client.post("/console/authentications", data={"name": "x"}, allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


def test_a_bad_key_is_refused(console: Console) -> None:
    response = console.login("lxk_not-a-key")
    assert response.status_code == 401
    assert "not valid" in response.text
    assert "lineoa_console" not in console.client.cookies
    assert console.client.get("/console/activations", allow_redirects=False).status_code == 303


def test_login_sets_a_signed_httponly_strict_cookie_without_the_key(console: Console) -> None:
    response = console.login()
    assert response.status_code == 303
    assert response.headers["location"] == "/console/activations"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert console.key not in cookie
    page = console.client.get("/console/activations")
    assert page.status_code == 200 and "Triggered activations" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_login_goes_back_to_the_page_asked_for(console: Console) -> None:
    first = console.client.get("/console/authentications", allow_redirects=False)
    page = console.client.get(first.headers["location"])
    response = console.client.post(
        first.headers["location"],
        data={"csrf": csrf_of(page.text), "api_key": console.key, "next": "/console/authentications"},
        allow_redirects=False,
    )
    assert response.headers["location"] == "/console/authentications"


def test_login_never_redirects_off_site(console: Console) -> None:
    page = console.client.get("/console/login")
    response = console.client.post(
        "/console/login",
        data={"csrf": csrf_of(page.text), "api_key": console.key, "next": "//evil.example/console"},
        allow_redirects=False,
    )
    assert response.headers["location"] == "/console/activations"


def test_login_without_its_csrf_token_is_refused(console: Console) -> None:
    response = console.client.post("/console/login", data={"api_key": console.key}, allow_redirects=False)
    assert response.status_code == 403
    assert "lineoa_console" not in console.client.cookies


def test_a_forged_cookie_is_not_a_session(console: Console) -> None:
    console.client.cookies.set(
        "lineoa_console", "eyJrZXkiOiJvcHMifQ.deadbeef", domain="testserver.local", path="/console"
    )
    assert console.client.get("/console/activations", allow_redirects=False).status_code == 303


def test_logout_ends_the_session(logged_in: Console) -> None:
    response = logged_in.post("/console/logout", follow=False)
    assert response.headers["location"] == "/console/login"
    assert logged_in.client.get("/console/activations", allow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(logged_in: Console) -> None:
    apikeys.revoke(logged_in.ctx.db, "ops", now=logged_in.ctx.clock.now())
    assert logged_in.client.get("/console/activations", allow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_forbidden(logged_in: Console) -> None:
    response = logged_in.client.post(
        "/console/authentications",
        data={"name": "line", "access_token": TOKEN, "skip_test": "on"},
        allow_redirects=False,
    )
    assert response.status_code == 403
    assert "CSRF" in response.text
    wrong = logged_in.client.post(
        "/console/authentications",
        data={"csrf": "0" * 64, "name": "line", "access_token": TOKEN, "skip_test": "on"},
        allow_redirects=False,
    )
    assert wrong.status_code == 403
    assert authentications.list_all(logged_in.ctx.db) == []


@pytest.mark.parametrize("path", PAGES)
def test_each_page_renders(logged_in: Console, path: str) -> None:
    response = logged_in.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'name="csrf"' in response.text


def test_the_stylesheet_is_served(console: Console) -> None:
    response = console.client.get("/console/static/console.css")
    assert response.status_code == 200 and "--green" in response.text


# -- authentications ----------------------------------------------------------------------------------


def test_create_authentication_with_skip_test(logged_in: Console) -> None:
    response = logged_in.post(
        "/console/authentications",
        {"name": "line", "access_token": TOKEN, "api_url": "https://api.line.me", "skip_test": "on"},
        follow=False,
    )
    assert response.status_code == 303
    page = logged_in.client.get(response.headers["location"])
    assert "Authentication &#39;line&#39; created (stored without a test)" in page.text
    assert "<strong>line</strong>" in page.text and "Channel access token" in page.text
    assert TOKEN not in page.text
    [auth] = authentications.list_all(logged_in.ctx.db)
    assert auth.kind == "access_token"
    # the flash shows once
    assert "created (stored without a test)" not in logged_in.client.get("/console/authentications").text


def test_authentication_errors_are_shown_by_their_field_with_the_input_kept(logged_in: Console) -> None:
    add_auth(logged_in)
    taken = logged_in.post(
        "/console/authentications",
        {
            "name": "line",
            "channel_id": "1234",
            "channel_secret": CHANNEL_SECRET,
            "skip_test": "on",
            "api_url": "http://127.0.0.1:9",
        },
    )
    assert taken.status_code == 422
    assert "authentication &#39;line&#39; already exists" in taken.text
    assert value_of(taken.text, "name") == "line"
    assert value_of(taken.text, "channel_id") == "1234"
    assert value_of(taken.text, "api_url") == "http://127.0.0.1:9"
    assert CHANNEL_SECRET not in taken.text and TOKEN not in taken.text
    both = logged_in.post(
        "/console/authentications",
        {
            "name": "other",
            "access_token": TOKEN,
            "channel_id": "1234",
            "channel_secret": CHANNEL_SECRET,
            "skip_test": "on",
            "api_url": "https://api.line.me",
        },
    )
    assert both.status_code == 422
    assert "credentials: give either an access token, or a channel ID and channel secret" in both.text
    bad_id = logged_in.post(
        "/console/authentications",
        {
            "name": "other",
            "channel_id": "abc",
            "channel_secret": CHANNEL_SECRET,
            "skip_test": "on",
            "api_url": "https://api.line.me",
        },
    )
    assert "channel_id: must be the channel&#39;s numeric ID" in bad_id.text
    bad_name = logged_in.post(
        "/console/authentications",
        {"name": "no spaces", "access_token": TOKEN, "skip_test": "on", "api_url": "https://api.line.me"},
    )
    assert "name: must be 1-64 letters" in bad_name.text


def test_line_refusing_the_credentials_is_shown_on_the_form(logged_in: Console, sim: ThreadedSimulator) -> None:
    refused = logged_in.post(
        "/console/authentications", {"name": "line", "access_token": "wrong-token", "api_url": sim.url}
    )
    assert refused.status_code == 422
    assert "LINE refused the credentials (HTTP 401)" in refused.text
    assert "wrong-token" not in refused.text
    accepted = logged_in.post(
        "/console/authentications", {"name": "line", "access_token": DEFAULT_ACCESS_TOKEN, "api_url": sim.url}
    )
    assert "LINE accepted the credentials" in accepted.text
    assert "Demo Official Account" in accepted.text
    tested = logged_in.post("/console/authentications/line/test", page="/console/authentications")
    assert "LINE accepted &#39;line&#39;: Demo Official Account." in tested.text
    assert DEFAULT_ACCESS_TOKEN not in tested.text


def test_delete_authentication_asks_first_and_refuses_when_used(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(logged_in)
    asked = logged_in.post("/console/authentications/line/delete", page="/console/authentications")
    assert "Are you sure?" in asked.text
    used = logged_in.post("/console/authentications/line/delete", {"confirm": "yes"}, page="/console/authentications")
    assert "is used by activations: welcome" in used.text
    add_auth(logged_in, "spare")
    gone = logged_in.post("/console/authentications/spare/delete", {"confirm": "yes"}, page="/console/authentications")
    assert "Authentication &#39;spare&#39; deleted." in gone.text
    assert [a.name for a in authentications.list_all(logged_in.ctx.db)] == ["line"]


# -- activations ---------------------------------------------------------------------------------------


def test_the_new_activation_form_shows_the_products_defaults(logged_in: Console) -> None:
    add_auth(logged_in)
    page = logged_in.client.get("/console/activations/new").text
    assert (
        value_of(page, "max_retries"),
        value_of(page, "initial_retry_delay"),
        value_of(page, "retry_delay_multiple"),
    ) == ("3", "2", "2")
    for label in (
        "Copy triggered activation from",
        "Triggered activation name",
        "Description",
        "Authentication",
        "Recipient ID",
        "Messages Payload",
        "Maximum Number Of Retry",
        "Initial Retry Delay",
        "Retry Delay Multiple",
    ):
        assert label in page
    assert selected(page, "authentication") == "line"  # the only one


def test_create_activation_with_the_defaults(logged_in: Console) -> None:
    add_auth(logged_in)
    fields = {
        k: v for k, v in ACTIVATION.items() if k not in ("max_retries", "initial_retry_delay", "retry_delay_multiple")
    }
    response = logged_in.post("/console/activations", fields, page="/console/activations/new", follow=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/activations/welcome"
    spec = activations.get(logged_in.ctx.db, "welcome").spec
    assert (spec.max_retries, spec.initial_retry_delay, spec.retry_delay_multiple) == (3, 2.0, 2.0)
    assert spec.messages == [{"type": "text", "text": "Hello {{name}}"}]
    listing = logged_in.client.get("/console/activations").text
    assert "welcome" in listing and "Say hello" in listing and "active" in listing


def test_validation_errors_are_listed_with_their_paths(logged_in: Console) -> None:
    add_auth(logged_in)
    response = logged_in.post(
        "/console/activations",
        {
            **ACTIVATION,
            "messages": '[{"type": "text", "text": "' + "x" * 5001 + '"}]',
            "initial_retry_delay": "-2",
            "max_retries": "many",
            "retry_delay_multiple": "0.5",
        },
    )
    assert response.status_code == 422
    text = unescape(response.text)
    assert "messages[0].text: longer than 5000" in text
    assert f"initial_retry_delay: {NEGATIVE_DELAY}" in text
    assert "max_retries: must be a whole number (got 'many')" in text
    assert "retry_delay_multiple: Input should be greater than or equal to 1" in text
    # each next to its field, and the input kept
    assert value_of(response.text, "initial_retry_delay") == "-2"
    assert value_of(response.text, "name") == "welcome"
    assert activations.list_all(logged_in.ctx.db) == []


def test_bad_json_and_missing_fields(logged_in: Console) -> None:
    add_auth(logged_in)
    response = logged_in.post(
        "/console/activations", {**ACTIVATION, "messages": "[{", "recipient": "", "authentication": "nope"}
    )
    text = unescape(response.text)
    assert "messages: not valid JSON" in text
    assert "recipient: String should have at least 1 character" in text
    fixed = logged_in.post("/console/activations", {**ACTIVATION, "authentication": "nope"})
    assert "authentication: no authentication named &#39;nope&#39;" in fixed.text


def test_a_taken_name_is_shown_on_the_name_field(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(logged_in)
    response = logged_in.post("/console/activations", ACTIVATION)
    assert response.status_code == 422
    assert "name: activation &#39;welcome&#39; already exists" in response.text


def test_copy_from_prefills_the_form(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(
        logged_in,
        max_retries="5",
        initial_retry_delay="1.5",
        description="the original",
        messages='[{"type": "text", "text": "Hi {{name}}"}]',
    )
    copied = logged_in.post(
        "/console/activations",
        {"action": "copy", "copy_from": "welcome", "name": "welcome-2"},
        page="/console/activations/new",
    )
    assert copied.status_code == 200
    page = copied.text
    assert selected(page, "copy_from") == "welcome"
    assert value_of(page, "name") == "welcome-2"  # what the user typed is kept
    assert value_of(page, "description") == "the original"
    assert value_of(page, "max_retries") == "5" and value_of(page, "initial_retry_delay") == "1.5"
    assert "Hi {{name}}" in value_of(page, "messages")
    assert selected(page, "authentication") == "line"
    by_link = logged_in.client.get("/console/activations/new?copy_from=welcome").text
    assert value_of(by_link, "max_retries") == "5"
    # and the copy saves as a new activation
    form = {
        f: value_of(page, f)
        for f in (
            "name",
            "description",
            "recipient",
            "messages",
            "max_retries",
            "initial_retry_delay",
            "retry_delay_multiple",
        )
    }
    saved = logged_in.post("/console/activations", {**form, "authentication": "line"}, follow=False)
    assert saved.status_code == 303
    assert activations.get(logged_in.ctx.db, "welcome-2").spec.max_retries == 5


def test_edit_updates_and_keeps_the_name(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(logged_in)
    page = logged_in.client.get("/console/activations/welcome/edit").text
    assert value_of(page, "max_retries") == "3"
    form = {
        f: value_of(page, f)
        for f in ("description", "recipient", "messages", "initial_retry_delay", "retry_delay_multiple")
    }
    response = logged_in.post(
        "/console/activations/welcome/edit",
        {**form, "authentication": "line", "max_retries": "7", "name": "renamed"},
        follow=False,
    )
    assert response.status_code == 303
    assert activations.get(logged_in.ctx.db, "welcome").spec.max_retries == 7
    bad = logged_in.post(
        "/console/activations/welcome/edit", {**form, "authentication": "line", "initial_retry_delay": "-1"}
    )
    assert bad.status_code == 422 and "initial_retry_delay: must be 0 or more seconds" in bad.text


def test_preview_renders_the_request_body_or_the_error(logged_in: Console) -> None:
    add_auth(logged_in)
    uid = user_id(1)
    ok = logged_in.post(
        "/console/activations",
        {**ACTIVATION, "action": "preview", "sample_event": f'{{"line_user_id": "{uid}", "name": "Ann"}}'},
    )
    text = unescape(ok.text)
    assert "POST https://api.line.me/v2/bot/message/push" in text
    assert '"text": "Hello Ann"' in text and f'"to": "{uid}"' in text
    assert activations.list_all(logged_in.ctx.db) == []  # a preview saves nothing
    missing = logged_in.post(
        "/console/activations", {**ACTIVATION, "action": "preview", "sample_event": f'{{"line_user_id": "{uid}"}}'}
    )
    assert "This event would be recorded as failed" in missing.text and "name" in missing.text
    bad_user = logged_in.post(
        "/console/activations",
        {**ACTIVATION, "action": "preview", "sample_event": '{"line_user_id": "bob", "name": "x"}'},
    )
    assert "invalid recipient" in bad_user.text


def test_pause_resume_and_delete(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(logged_in)
    page = "/console/activations/welcome"
    assert "paused" in logged_in.post(f"{page}/pause", page=page).text
    assert activations.get(logged_in.ctx.db, "welcome").pause_reason == "paused in the console by ops"
    logged_in.post(f"{page}/resume", page=page)
    assert activations.get(logged_in.ctx.db, "welcome").pause_reason is None
    asked = logged_in.post(f"{page}/delete", page=page)
    assert "Are you sure?" in asked.text
    assert activations.list_all(logged_in.ctx.db) != []
    logged_in.post(f"{page}/delete", {"confirm": "yes"}, page=page)
    assert activations.list_all(logged_in.ctx.db) == []
    assert logged_in.client.get(page).status_code == 404


# -- the activation table -----------------------------------------------------------------------------


def seed_table(c: Console, n: int = 60) -> list[str]:
    add_auth(c)
    add_activation(c)
    events = [{"event_id": f"ev-{i:03d}", "line_user_id": user_id(i), "name": f"user {i}"} for i in range(n)]
    events.append({"event_id": "ev-bad", "line_user_id": "nobody", "name": "x"})  # fails to render
    results = triggers.accept(c.ctx.db, "welcome", events, now=c.ctx.clock.now())
    return [r.event_id for r in results]


def test_the_activation_table_pages_and_filters(logged_in: Console) -> None:
    seed_table(logged_in)
    page = logged_in.client.get("/console/activations/welcome")
    assert page.status_code == 200
    assert page.text.count('<tr class="') == 50
    assert "ev-bad" in page.text and "invalid recipient" in page.text
    older = re.search(r'href="(/console/activations/welcome\?before=\d+)">Older', page.text)
    assert older, "no link to older events"
    rest = logged_in.client.get(unescape(older.group(1))).text
    assert rest.count('<tr class="') == 11 and "ev-000" in rest and "Older" not in rest
    failed = logged_in.client.get("/console/activations/welcome?state=failed").text
    assert failed.count('<tr class="') == 1 and "ev-bad" in failed
    queued = logged_in.client.get("/console/activations/welcome?state=queued&delivered=no").text
    assert "ev-bad" not in queued
    none = logged_in.client.get("/console/activations/welcome?status_code=500").text
    assert "No events match these filters" in none
    odd = logged_in.client.get("/console/activations/welcome?status_code=abc&state=weird").text
    assert "ignored" in odd


def test_event_detail_shows_attempts_and_the_retry_key(logged_in: Console) -> None:
    seed_table(logged_in, 1)
    page = logged_in.client.get("/console/activations/welcome/events/ev-000")
    assert page.status_code == 200
    event = activation_table.event(logged_in.ctx.db, "welcome", "ev-000")
    assert event["retry_key"] in page.text
    assert "Hello user 0" in page.text  # the request body
    assert logged_in.client.get("/console/activations/welcome/events/nope").status_code == 404


def run_worker(c: Console) -> None:
    worker = Worker(c.ctx.db, c.ctx.vault, c.ctx.settings, clock=c.ctx.clock)
    asyncio.run(worker.run(until_idle=True))


def test_delivery_outcomes_show_in_the_table_and_failed_events_replay(
    logged_in: Console, sim: ThreadedSimulator
) -> None:
    add_auth(logged_in, access_token=DEFAULT_ACCESS_TOKEN, api_url=sim.url)
    add_activation(logged_in)
    sim.options.script = {user_id(1): [400]}
    triggers.accept(
        logged_in.ctx.db,
        "welcome",
        [
            {"event_id": "refused", "line_user_id": user_id(1), "name": "A"},
            {"event_id": "sent", "line_user_id": user_id(2), "name": "B"},
        ],
        now=logged_in.ctx.clock.now(),
    )
    run_worker(logged_in)
    page = "/console/activations/welcome"
    table = logged_in.client.get(page).text
    row = re.search(r'<tr class="failed">.*?</tr>', table, re.S)
    assert row and "refused" in row.group(0) and ">400<" in row.group(0)
    assert re.search(r'<tr class="delivered">.*?>200<', table, re.S)
    only_400 = logged_in.client.get(f"{page}?status_code=400").text
    assert "refused" in only_400 and ">sent<" not in only_400
    detail_path = f"{page}/events/refused"
    detail = logged_in.client.get(detail_path).text
    key = activation_table.event(logged_in.ctx.db, "welcome", "refused")["retry_key"]
    assert key in detail and "Replay this event" in detail
    attempt = re.search(r"<h2>Attempts</h2>.*?</table>", detail, re.S)
    assert attempt and ">400<" in attempt.group(0) and " ms<" in attempt.group(0)
    replayed = logged_in.post(f"{page}/replay", {"event_id": "refused"}, page=detail_path)
    assert "1 failed event(s) queued again" in replayed.text
    after = activation_table.event(logged_in.ctx.db, "welcome", "refused")
    assert after["state"] == "queued" and after["retry_key"] == key
    run_worker(logged_in)
    assert activation_table.event(logged_in.ctx.db, "welcome", "refused")["state"] == "delivered"
    again = logged_in.post(f"{page}/replay", {"event_id": "refused"}, page=page)
    assert "Not replayed" in again.text


def test_csv_download_with_the_cookie_session(logged_in: Console) -> None:
    seed_table(logged_in, 3)
    response = logged_in.client.get("/console/activations/welcome/table.csv?state=failed")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="welcome.csv"' in response.headers["content-disposition"]
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("event_id,recipient,state,delivered,status_code,error")
    assert len(lines) == 2 and lines[1].startswith("ev-bad,")


# -- escaping and secrets -----------------------------------------------------------------------------


def test_user_input_is_escaped(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(logged_in, description='<script>alert("x")</script>')
    for path in ("/console/activations", "/console/activations/welcome", "/console/activations/welcome/edit"):
        html = logged_in.client.get(path).text
        assert "<script>" not in html
        assert "&lt;script&gt;" in html


def test_no_secret_appears_in_any_page(logged_in: Console) -> None:
    add_auth(logged_in, "token-auth")
    add_auth(logged_in, "channel-auth", access_token="", channel_id="1234567", channel_secret=CHANNEL_SECRET)
    add_activation(logged_in, authentication="token-auth")
    triggers.accept(
        logged_in.ctx.db,
        "welcome",
        [{"event_id": "e1", "line_user_id": user_id(1), "name": "A"}],
        now=logged_in.ctx.clock.now(),
    )
    pages = [
        *PAGES,
        "/console/activations/welcome",
        "/console/activations/welcome/edit",
        "/console/activations/welcome/events/e1",
        "/console/activations/welcome/table.csv",
        "/console/activations/new?copy_from=welcome",
    ]
    for path in pages:
        body = logged_in.client.get(path).text
        for secret in (TOKEN, CHANNEL_SECRET, logged_in.key):
            assert secret not in body, f"{secret!r} in {path}"
    preview = logged_in.post(
        "/console/activations/welcome/edit",
        {
            **ACTIVATION,
            "authentication": "token-auth",
            "action": "preview",
            "sample_event": f'{{"line_user_id": "{user_id(1)}", "name": "A"}}',
        },
    )
    assert TOKEN not in preview.text and "Hello A" in unescape(preview.text)


def test_a_token_with_a_line_break_is_a_form_error_not_a_crash(logged_in: Console, sim: ThreadedSimulator) -> None:
    response = logged_in.post(
        "/console/authentications", {"name": "line", "access_token": "abc\r\nX-Injected: 1", "api_url": sim.url}
    )
    assert response.status_code == 422
    assert "access_token: one line of printable ASCII: no spaces or line breaks" in response.text
    assert "X-Injected" not in response.text


# -- the verbs the console shares with the CLI and the API ------------------------------------------


def test_rotate_keeps_the_old_token_when_line_refuses_the_new_one(logged_in: Console, sim: ThreadedSimulator) -> None:
    add_auth(logged_in, access_token=DEFAULT_ACCESS_TOKEN, api_url=sim.url, skip_test="")
    page = "/console/authentications"
    refused = logged_in.post(f"{page}/line/rotate", {"secret": "wrong-token"}, page=page)
    assert "Credentials of &#39;line&#39; not rotated: LINE refused the credentials (HTTP 401)" in refused.text
    assert "wrong-token" not in refused.text
    assert "LINE accepted" in logged_in.post(f"{page}/line/test", page=page).text
    rotated = logged_in.post(f"{page}/line/rotate", {"secret": DEFAULT_ACCESS_TOKEN}, page=page)
    assert "Credentials of &#39;line&#39; rotated." in rotated.text
    assert DEFAULT_ACCESS_TOKEN not in rotated.text


def test_validate_asks_line_and_says_what_it_answered(logged_in: Console, sim: ThreadedSimulator) -> None:
    add_auth(logged_in, access_token=DEFAULT_ACCESS_TOKEN, api_url=sim.url)
    add_activation(logged_in)
    page = "/console/activations/welcome"
    valid = logged_in.post(f"{page}/validate", page=page)
    assert "Valid: checked here and by LINE (nothing was sent)." in valid.text
    assert sim.stats()["requests_by_endpoint"]["validate_push"] == {"200": 1}
    missing = logged_in.post(f"{page}/validate", {"sample_event": '{"line_user_id": "U' + "0" * 32 + '"}'}, page=page)
    assert "Not valid: event:" in unescape(missing.text) and "name" in missing.text


def test_trigger_records_an_event_in_the_activation_table(logged_in: Console) -> None:
    add_auth(logged_in)
    add_activation(logged_in)
    page = "/console/activations/welcome"
    event = f'{{"event_id": "by-hand", "line_user_id": "{user_id(1)}", "name": "Ann"}}'
    triggered = logged_in.post(f"{page}/trigger", {"event": event}, page=page)
    assert "Event &#39;by-hand&#39;: accepted." in triggered.text
    assert [e["event_id"] for e in activation_table.iterate(logged_in.ctx.db, "welcome")] == ["by-hand"]
    bad = logged_in.post(f"{page}/trigger", {"event": "[1]"}, page=page)
    assert "The event must be a JSON object" in bad.text


def test_a_tripped_channel_shows_as_tripped_with_since_and_why(logged_in: Console) -> None:
    from lineoa_export.delivery import pauses

    add_auth(logged_in)
    add_activation(logged_in)
    db = logged_in.ctx.db
    key = activations.get(db, "welcome").channel_key
    pauses.trip(db, key, reason="circuit breaker: LINE did not answer 5 pushes in a row", trips=1, now=1_800_000_000)
    for page in ("/console/activations", "/console/activations/welcome"):
        html = unescape(logged_in.client.get(page).text)
        assert ">tripped<" in html, page
        assert "channel tripped since 2027-01-15T08:00:00Z: circuit breaker: LINE did not answer" in html, page


def test_frequency_cap_and_quiet_hours_are_form_fields_with_errors_by_field(logged_in: Console) -> None:
    add_auth(logged_in)
    bad = {**ACTIVATION, "quiet_hours": "25:00-08:00", "time_zone": "Asia/Tokio", "frequency_cap": "1/24h"}
    refused = logged_in.post("/console/activations", bad)
    assert refused.status_code == 422
    text = unescape(refused.text)
    assert 'quiet_hours: "25:00-08:00" is not HH:MM-HH:MM' in text
    assert 'time_zone: unknown zone "Asia/Tokio"' in text
    assert value_of(refused.text, "quiet_hours") == "25:00-08:00"

    good = {**bad, "quiet_hours": "22:00-08:00", "time_zone": "Asia/Bangkok", "over_cap": "defer"}
    created = logged_in.post("/console/activations", good, page="/console/activations/new", follow=False)
    assert created.status_code == 303
    spec = activations.get(logged_in.ctx.db, "welcome").spec
    assert (spec.frequency_cap, spec.over_cap, spec.quiet_hours, spec.time_zone) == (
        "1/24h",
        "defer",
        "22:00-08:00",
        "Asia/Bangkok",
    )
    edit = logged_in.client.get("/console/activations/welcome/edit").text
    assert value_of(edit, "frequency_cap") == "1/24h" and value_of(edit, "quiet_hours") == "22:00-08:00"
    page = unescape(logged_in.client.get("/console/activations/welcome").text)
    assert "1/24h per recipient · over it: defer" in page and "22:00-08:00 Asia/Bangkok" in page


def test_the_activation_page_says_how_its_aggregation_unit_stands(logged_in: Console) -> None:
    seed_table(logged_in)
    page = logged_in.client.get("/console/activations/welcome")
    assert page.status_code == 200
    assert "Aggregation unit" in page.text and "welcome (no push yet in" in page.text


def test_the_webhook_form_sets_the_channel_secret_and_refuses_a_forward_host_not_allowed(logged_in: Console) -> None:
    add_auth(logged_in)
    page = "/console/authentications"
    saved = logged_in.post(
        "/console/authentications/line/webhook", {"channel_secret": "s3cret-of-the-channel"}, page=page
    )
    assert "Webhook of &#39;line&#39; saved." in saved.text or "Webhook of 'line' saved." in unescape(saved.text)
    assert authentications.get(logged_in.ctx.db, "line").webhook_secret_set
    assert "s3cret-of-the-channel" not in logged_in.client.get(page).text  # write-only
    refused = logged_in.post(
        "/console/authentications/line/webhook", {"forward_webhook": "https://bot.example/hook"}, page=page
    )
    assert "not saved" in unescape(refused.text) and "forward_webhook" in unescape(refused.text)
    assert authentications.get(logged_in.ctx.db, "line").forward_webhook is None
