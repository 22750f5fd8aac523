"""The console's security findings (issue 8): server-side logout, session expiry, the login throttle,
a human sentence when stored credentials cannot be decrypted, no 5xx from any form input, and the
worker touched only from the event loop's thread (through a WorkerHandle)."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from console_support import Console, console_app, csrf_of, img_src
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineoa_export import activations, apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.delivery import triggers
from lineoa_export.operations import WorkerHandle
from lineoa_export.vault import Vault
from lineoa_export.web.console.forms import MAX_FORM_BYTES
from lineoa_export.web.console.sessions import SESSION_SECONDS
from lineoa_export.web.console.throttle import LIMIT, WINDOW

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed(tmp_path: Path, clock: FakeClock) -> Iterator[Console]:
    """The console on a clock the test moves."""
    with console_app(tmp_path, clock=clock) as c:
        yield c


def seed(c: Console) -> None:
    """An authentication ``line``, the activation ``welcome`` and one failed event ``bad``."""
    assert (
        c.post(
            "/console/authentications",
            {"name": "line", "access_token": "tok", "skip_test": "on", "api_url": "https://api.line.me"},
        ).status_code
        == 200
    )
    assert c.post("/console/activations", ACTIVATION, follow=False).status_code == 303
    triggers.accept(
        c.ctx.db, "welcome", [{"event_id": "bad", "line_user_id": "nobody", "name": "x"}], now=c.ctx.clock.now()
    )


# -- finding 6: logout ends the session on the server ---------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_works(logged_in: Console) -> None:
    copied = logged_in.client.cookies.get("lineoa_console")
    page = logged_in.client.get("/console/activations").text
    assert logged_in.post("/console/logout", follow=False).status_code == 303
    # an attacker who kept the cookie (and a CSRF token from a page) gets nothing, GET or POST
    logged_in.client.cookies.set("lineoa_console", copied, domain="testserver.local", path="/console")
    assert logged_in.client.get("/console/activations", allow_redirects=False).status_code == 303
    posted = logged_in.client.post(
        "/console/authentications",
        data={"csrf": csrf_of(page), "name": "line", "access_token": "tok", "skip_test": "on"},
        allow_redirects=False,
    )
    assert posted.status_code == 303 and posted.headers["location"].startswith("/console/login")
    assert authentications.list_all(logged_in.ctx.db) == []


def test_logging_out_one_session_keeps_the_others(tmp_path: Path) -> None:
    with console_app(tmp_path) as c:
        assert c.login().status_code == 303
        first = c.client.cookies.get("lineoa_console")
        c.client.cookies.clear()
        assert c.login().status_code == 303
        assert c.client.cookies.get("lineoa_console") != first
        c.post("/console/logout")
        c.client.cookies.set("lineoa_console", first, domain="testserver.local", path="/console")
        assert c.client.get("/console/activations", allow_redirects=False).status_code == 200


def test_the_cookie_holds_neither_the_key_nor_its_name(console: Console) -> None:
    response = console.login()
    cookie = console.client.cookies.get("lineoa_console")
    assert cookie and console.key not in cookie and "ops" not in cookie
    assert f"Max-Age={SESSION_SECONDS}" in response.headers["set-cookie"]


def test_sessions_expire(timed: Console, clock: FakeClock) -> None:
    assert timed.login().status_code == 303
    clock.advance(SESSION_SECONDS - 1)
    assert timed.client.get("/console/activations", allow_redirects=False).status_code == 200
    clock.advance(2)
    assert timed.client.get("/console/activations", allow_redirects=False).status_code == 303


def test_each_session_has_its_own_csrf_token(tmp_path: Path) -> None:
    with console_app(tmp_path) as c:
        c.login()
        first = csrf_of(c.client.get("/console/activations").text)
        assert csrf_of(c.client.get("/console/authentications").text) == first  # stable within a session
        c.post("/console/logout")
        c.login()
        second = csrf_of(c.client.get("/console/activations").text)
        assert second != first
        stale = c.client.post(
            "/console/authentications",
            data={"csrf": first, "name": "line", "access_token": "tok", "skip_test": "on"},
            allow_redirects=False,
        )
        assert stale.status_code == 403


def test_revoking_the_key_ends_its_sessions_posts_included(logged_in: Console) -> None:
    page = logged_in.client.get("/console/activations").text
    apikeys.revoke(logged_in.ctx.db, "ops", now=logged_in.ctx.clock.now())
    posted = logged_in.client.post(
        "/console/authentications",
        data={"csrf": csrf_of(page), "name": "line", "access_token": "tok", "skip_test": "on"},
        allow_redirects=False,
    )
    assert posted.status_code == 303 and posted.headers["location"].startswith("/console/login")
    assert authentications.list_all(logged_in.ctx.db) == []


# -- finding 9: the login throttle -------------------------------------------------------------------------


def test_failed_logins_are_throttled_with_a_clear_wait(timed: Console, clock: FakeClock) -> None:
    for _ in range(LIMIT):
        assert timed.login("lxk_wrong").status_code == 401
        clock.advance(1)
    throttled = timed.login()  # even the right key waits: guessing learns nothing meanwhile
    assert throttled.status_code == 429
    wait = WINDOW - LIMIT
    assert f"Too many failed logins from your address: try again in {wait:g} s." in unescape(throttled.text)
    assert throttled.headers["retry-after"] == f"{wait:g}"
    assert "lineoa_console" not in timed.client.cookies
    clock.advance(wait)
    assert timed.login().status_code == 303


def test_a_successful_login_clears_the_count(timed: Console) -> None:
    for _ in range(LIMIT - 1):
        assert timed.login("lxk_wrong").status_code == 401
    assert timed.login().status_code == 303
    timed.client.cookies.clear()
    for _ in range(LIMIT - 1):
        assert timed.login("lxk_wrong").status_code == 401
    assert timed.login().status_code == 303


# -- finding 9: the Test button speaks in sentences ------------------------------------------------------


def test_undecryptable_credentials_are_a_sentence_not_json(logged_in: Console) -> None:
    seed(logged_in)
    logged_in.ctx.vault = Vault.from_secret("a different server key, so the stored secret cannot be opened")
    tested = logged_in.post("/console/authentications/line/test", page="/console/authentications")
    assert tested.status_code == 200 and tested.headers["content-type"].startswith("text/html")
    text = unescape(tested.text)
    assert "Test of 'line' failed: its stored credentials cannot be decrypted with this server's secret key" in text
    assert '"error"' not in text and "bad_request" not in text


# -- finding 9 (and 5): no 5xx from any form input, on either store --------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    """A logged-in console on SQLite and on the real PostgreSQL server (a schema of its own)."""
    if request.param == "sqlite":
        with console_app(tmp_path) as c:
            assert c.login().status_code == 303
            yield c
        return
    import psycopg

    schema = "test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        with console_app(tmp_path, database_url=f"{POSTGRES}?options=-csearch_path%3D{schema}") as c:
            assert c.login().status_code == 303
            yield c
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


POSTS = {
    "/console/authentications": {
        "name": "x",
        "access_token": "tok",
        "skip_test": "on",
        "api_url": "https://api.line.me",
    },
    "/console/activations": {**ACTIVATION, "name": "other"},
    "/console/activations/welcome/edit": ACTIVATION,
    "/console/activations/welcome/pause": {},
    "/console/activations/welcome/replay": {"event_id": "bad"},
    "/console/authentications/line/delete": {"confirm": "yes"},
    "/console/activations/welcome/delete": {"confirm": "no"},
}


@pytest.mark.parametrize("path", POSTS)
def test_a_nul_in_any_field_is_a_4xx_naming_the_field(any_store: Console, path: str) -> None:
    seed(any_store)
    for field in [*POSTS[path], "action", "sample_event"]:
        response = any_store.post(path, {**POSTS[path], field: "a\0b"})
        assert response.status_code == 422, (path, field, response.status_code)
        assert f"{field}: must not contain a NUL character" in unescape(response.text)
        assert response.headers["content-type"].startswith("text/html")
    assert activations.get(any_store.ctx.db, "welcome").pause_reason is None


@pytest.mark.parametrize(
    "path",
    [
        "/console/activations/we%00lcome",
        "/console/activations/welcome/events/b%00ad",
        "/console/activations/welcome/table.csv?state=%00",
        "/console/activations/new?copy_from=%00",
        "/console/activations/welcome?status_code=%00&before=%00&delivered=%00",
    ],
)
def test_a_nul_in_an_address_is_never_a_5xx(any_store: Console, path: str) -> None:
    seed(any_store)
    assert any_store.client.get(path).status_code in (200, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/console/authentications/li%00ne/test",
        "/console/authentications/li%00ne/delete",
        "/console/activations/we%00lcome/pause",
        "/console/activations/we%00lcome/replay",
    ],
)
def test_a_nul_in_a_posted_address_is_a_404(any_store: Console, path: str) -> None:
    seed(any_store)
    assert any_store.post(path, {"confirm": "yes"}).status_code == 404


@pytest.mark.parametrize("value", ["1e999", "nan", "-inf", "9" * 5000, "0x10", "１２", "", " ", "-0", "1" * 30])
@pytest.mark.parametrize("field", ["max_retries", "initial_retry_delay", "retry_delay_multiple"])
def test_bad_numbers_are_field_errors(logged_in: Console, field: str, value: str) -> None:
    seed(logged_in)
    response = logged_in.post("/console/activations", {**ACTIVATION, "name": "other", field: value}, follow=False)
    assert response.status_code in (303, 422), (field, value, response.status_code)
    if response.status_code == 422:
        assert re.search(rf"{field}: ", unescape(response.text)), response.text[:2000]


def test_huge_fields_are_4xx(logged_in: Console) -> None:
    seed(logged_in)
    for field in ("name", "description", "recipient", "messages", "sample_event", "max_retries"):
        big = logged_in.post("/console/activations", {**ACTIVATION, field: "x" * (MAX_FORM_BYTES // 2)})
        assert big.status_code == 422, field
    too_big = logged_in.post("/console/activations", {**ACTIVATION, "description": "x" * (MAX_FORM_BYTES + 1)})
    assert too_big.status_code == 413 and "over 2 MB" in too_big.text
    many = logged_in.post("/console/activations", {f"f{i}": "1" for i in range(500)})
    assert many.status_code == 422 and "more than 100 fields" in unescape(many.text)


def test_a_streamed_form_is_stopped_at_the_limit(logged_in: Console) -> None:
    html = logged_in.client.get("/console/activations").text

    def chunks() -> Iterator[bytes]:
        yield f"csrf={csrf_of(html)}&description=".encode()
        for _ in range(MAX_FORM_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = logged_in.client.post(
        "/console/activations", data=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413


def test_unknown_console_pages_are_html_404s(logged_in: Console) -> None:
    for response in (logged_in.client.get("/console/no/such/page"), logged_in.post("/console/activations/x/y")):
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.fixed_dictionaries(
        {}, optional={f: TEXT for f in [*ACTIVATION, "action", "copy_from", "sample_event", "notification_disabled"]}
    )
)
def test_no_activation_form_answers_5xx(logged_in: Console, fields: dict[str, str]) -> None:
    if not activations.list_all(logged_in.ctx.db):
        seed(logged_in)  # once: hypothesis keeps the fixture across examples
    for path in ("/console/activations", "/console/activations/welcome/edit"):
        response = logged_in.post(path, fields, follow=False)
        assert response.status_code < 500, (path, fields, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.fixed_dictionaries(
        {"skip_test": st.just("on")},
        optional={f: TEXT for f in ("name", "access_token", "channel_id", "channel_secret", "api_url")},
    )
)
def test_no_authentication_form_answers_5xx(logged_in: Console, fields: dict[str, str]) -> None:
    response = logged_in.post("/console/authentications", fields, follow=False)
    assert response.status_code < 500, (fields, response.status_code)
    if response.status_code != 303:  # created: a redirect to the list, no body
        assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]


# -- the worker is touched from the event loop's thread only --------------------------------------------


class LoopOnlyWorker:
    """Refuses to be called outside its event loop's thread, as asyncio.Event.set() should."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.loop_thread: int | None = None

    def _check(self) -> None:
        asyncio.get_running_loop()  # RuntimeError on a thread-pool thread
        assert threading.get_ident() == self.loop_thread

    def wake(self) -> None:
        self._check()
        self.calls.append("wake")

    def hold_activation(self, name: str) -> None:
        self._check()
        self.calls.append(f"hold {name}")


def test_pause_resume_and_replay_reach_the_worker_on_its_loop(tmp_path: Path) -> None:
    worker = LoopOnlyWorker()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    worker.loop_thread = thread.ident
    try:
        with console_app(tmp_path, worker=WorkerHandle(worker, loop)) as c:
            c.login()
            seed(c)
            page = "/console/activations/welcome"
            for action in ("pause", "resume", "replay"):
                assert c.post(f"{page}/{action}", page=page, follow=False).status_code == 303, action
        # Whatever the routes handed over has run once the loop has taken one more turn.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
    assert worker.calls == ["hold welcome", "wake", "wake"]


# -- images: from the console only, unless a page shows pictures from elsewhere -------------------------


def test_a_console_page_loads_images_from_the_console_only(console: Console) -> None:
    """No data: URL and no outside host on pages that show no outside picture (the chat previews and
    the Catalog's tested bot do, and say so in their own answers: see their tests)."""
    assert img_src(console.client.get("/console/login")) == "img-src 'self'"
    assert console.login().status_code == 303
    seed(console)
    paths = [
        "/console/activations",
        "/console/activations/welcome",
        "/console/activations/welcome/live",
        "/console/activations/welcome/events/bad",
        "/console/activations/new",
        "/console/authentications",
        "/console/integrations/catalog",
        "/console/integrations/line-oa/new",
        "/console/overview",
        "/console/no-such-page",
    ]
    for path in paths:
        answer = console.client.get(path)
        assert answer.status_code in (200, 404), path
        assert img_src(answer) == "img-src 'self'", path
