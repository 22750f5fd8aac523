"""The Integrations Hub's Catalog and its Create Authentication flow, in process.

Catalog (search by name) → Credentials → Continue (tested with the LINE simulator: the bot, or
LINE's reason) → a name → Done. Admin only, CSRF on every POST, the tested credentials kept on
the server (sealed, bound to the session, 15 minutes, dropped on logout) and never in a page.
"""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest
import requests
from console_support import Console, console_app, csrf_of, img_src
from schemathesis.python.asgi import ASGIClient

from lineoa_export import apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.simulator.options import DEFAULT_ACCESS_TOKEN, DEFAULT_CHANNEL_ID
from lineoa_export.testing import ThreadedSimulator

FLOW = "/console/integrations/line-oa"
NEW = FLOW + "/new"
TOKEN = "catalog-secret-token-DO-NOT-SHOW"
CHANNEL_SECRET = "catalog-channel-secret-DO-NOT-SHOW"
PICTURE = "https://profile.line-scdn.net/0hDemoOfficialAccount"


@pytest.fixture
def line(sim: ThreadedSimulator) -> ThreadedSimulator:
    """The simulator's channel takes our own secrets (so a page can be searched for them) and has a picture."""
    channel = sim.options.channels[0]
    channel.access_tokens = [TOKEN, DEFAULT_ACCESS_TOKEN]
    channel.channel_secret = CHANNEL_SECRET
    channel.picture_url = PICTURE
    return sim


def bot_info_asked(sim: ThreadedSimulator) -> int:
    """How many times LINE (the simulator) was asked who credentials belong to."""
    return sum(sim.stats()["requests_by_endpoint"].get("bot_info", {}).values())


def carry_on(c: Console, sim: ThreadedSimulator, **fields: str) -> requests.Response:
    """Post the Credentials step ("Continue") with a good token unless ``fields`` say otherwise."""
    data = {"kind": "access_token", "access_token": TOKEN, "channel_secret": CHANNEL_SECRET, "api_url": sim.url}
    return c.post(NEW, {**data, **fields}, page=NEW, follow=False)


def draft_page(response: requests.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(NEW + "/") and len(location) > len(NEW) + 10, location
    return location


def names(c: Console) -> list[str]:
    return [a.name for a in authentications.list_all(c.ctx.db)]


# -- the Catalog ---------------------------------------------------------------------------------


def test_the_hub_opens_on_the_catalog_with_the_line_tile(logged_in: Console) -> None:
    hub = logged_in.client.get("/console/integrations", allow_redirects=False)
    assert hub.headers["location"] == "/console/integrations/catalog"
    page = logged_in.client.get("/console/integrations/catalog").text
    assert "Integrations Hub" in page  # in the nav, for an admin
    assert "LINE OA Streaming Export" in page and 'src="/console/static/line-oa.svg"' in page
    assert f'href="{NEW}"' in page and "Create Authentication" in page
    assert logged_in.client.get("/console/static/line-oa.svg").headers["content-type"].startswith("image/svg")
    # the Authentications page's "Create" leads here
    listing = logged_in.client.get("/console/authentications").text
    assert 'href="/console/integrations/catalog">Create authentication</a>' in listing


@pytest.mark.parametrize("query", ["line", "LINE OA", "  streaming   export ", "official account"])
def test_search_finds_the_tile_by_its_names(logged_in: Console, query: str) -> None:
    page = logged_in.client.get("/console/integrations/catalog", params={"q": query}).text
    assert f'href="{NEW}"' in page and "1 integration matching" in page


def test_search_for_another_name_shows_none_and_says_so(logged_in: Console) -> None:
    page = logged_in.client.get("/console/integrations/catalog", params={"q": "<salesforce>"}).text
    assert f'href="{NEW}"' not in page
    assert "No integration matches “&lt;salesforce&gt;”" in page  # escaped, never markup
    assert "0 integrations" in page


# -- 1 credentials → Continue ---------------------------------------------------------------------


def test_a_good_token_shows_the_bot_then_a_name_makes_it(logged_in: Console, line: ThreadedSimulator) -> None:
    form = logged_in.client.get(NEW).text
    assert 'value="https://api.line.me"' in form  # the API URL's default, under "advanced"
    assert 'name="kind" value="access_token"' in form and 'name="channel_secret"' in form
    assert img_src(logged_in.client.get(NEW)) == "img-src 'self'"
    step2 = draft_page(carry_on(logged_in, line))
    assert len(logged_in.ctx.db.run("auth_list")) == 0  # nothing stored before a name is given
    named = logged_in.client.get(step2)
    assert img_src(named) == "img-src 'self' https:"  # the bot's picture, from LINE's CDN
    page = named.text
    assert "LINE accepted the credentials" in page
    assert "Demo Official Account" in page and "@000demo" in page
    assert f'<img src="{PICTURE}"' in page  # the browser loads it; the server never does
    assert 'value="demo-official-account"' in page  # a name suggested from the bot's
    assert "given: LINE's webhooks can be verified" in page

    done = logged_in.post(step2, {"name": "my-oa"}, page=step2, follow=False)
    assert done.headers["location"] == f"{FLOW}/done/my-oa"
    auth = authentications.get(logged_in.ctx.db, "my-oa")
    assert (auth.kind, auth.bot_name, auth.webhook_secret_set) == ("access_token", "Demo Official Account", True)
    assert auth.api_url == line.url
    finished = logged_in.client.get(done.headers["location"]).text
    assert "Authentication “my-oa” created" in finished
    assert "/line/webhook/my-oa</code>" in finished  # the webhook URL to give LINE
    assert 'href="/console/activations/new?authentication=my-oa"' in finished
    # the draft is used up: the same name step again starts over
    again = logged_in.client.get(step2, allow_redirects=False)
    assert again.headers["location"] == NEW


def test_done_leads_to_a_triggered_activation_with_the_new_authentication(logged_in: Console) -> None:
    for name in ("first", "second"):
        data = {"name": name, "access_token": "tok", "api_url": "https://api.line.me", "skip_test": "on"}
        logged_in.post("/console/authentications", data)
    page = logged_in.client.get("/console/activations/new", params={"authentication": "second"}).text
    assert '<option value="second" selected>' in page
    unknown = logged_in.client.get("/console/activations/new", params={"authentication": "nope"}).text
    assert " selected>" not in unknown.split('name="authentication"')[1].split("</select>")[0]


def test_a_channel_id_and_secret_work_too(logged_in: Console, line: ThreadedSimulator) -> None:
    step2 = draft_page(
        carry_on(logged_in, line, kind="channel_credentials", access_token="ignored", channel_id=DEFAULT_CHANNEL_ID)
    )
    page = logged_in.client.get(step2).text
    assert "Demo Official Account" in page and f"Channel ID {DEFAULT_CHANNEL_ID} + Channel secret" in page
    logged_in.post(step2, {"name": "by-channel"}, page=step2)
    auth = authentications.get(logged_in.ctx.db, "by-channel")
    assert (auth.kind, auth.channel_id, auth.webhook_secret_set) == ("channel_credentials", DEFAULT_CHANNEL_ID, True)


def test_a_token_without_the_channel_secret_key_says_webhooks_cannot_be_received(
    logged_in: Console, line: ThreadedSimulator
) -> None:
    step2 = draft_page(carry_on(logged_in, line, channel_secret=""))
    assert "not given: LINE's webhooks cannot be received" in logged_in.client.get(step2).text
    logged_in.post(step2, {"name": "no-hooks"}, page=step2)
    finished = logged_in.client.get(f"{FLOW}/done/no-hooks").text
    assert "No Channel Secret Key was given" in finished and "/line/webhook/" not in finished


def test_a_refused_token_shows_lines_reason_and_keeps_the_form(logged_in: Console, line: ThreadedSimulator) -> None:
    refused = carry_on(logged_in, line, access_token="wrong-token-DO-NOT-SHOW", channel_id="42")
    assert refused.status_code == 422
    page = unescape(refused.text)
    assert "The credentials were not accepted" in page
    assert "LINE refused the credentials (HTTP 401): Authentication failed" in page  # LINE's own message
    assert "wrong-token-DO-NOT-SHOW" not in page and CHANNEL_SECRET not in page
    assert f'value="{line.url}"' in refused.text and '<details class="advanced" open>' in refused.text
    assert 'value="42"' in refused.text  # the non-secret fields are kept
    assert names(logged_in) == [] and len(logged_in.ctx.db.run("auth_list")) == 0
    assert len(logged_in.app.state.console.drafts) == 0


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"access_token": ""}, "access_token: required"),
        ({"kind": "channel_credentials"}, "channel_id: required"),
        ({"kind": "channel_credentials", "channel_id": "12", "channel_secret": ""}, "channel_secret: required with"),
        ({"kind": "channel_credentials", "channel_id": "abc"}, "channel_id: must be the channel's numeric ID"),
        ({"access_token": "two words"}, "access_token: one line of printable ASCII"),
        ({"api_url": "https://example.com"}, "api_url:"),
    ],
)
def test_bad_credentials_are_named_by_field_before_line_is_asked(
    logged_in: Console, line: ThreadedSimulator, fields: dict[str, str], named: str
) -> None:
    response = carry_on(logged_in, line, **fields)
    assert response.status_code == 422
    assert named in unescape(response.text)
    assert bot_info_asked(line) == 0
    assert CHANNEL_SECRET not in response.text and TOKEN not in response.text


# -- 2 a name ------------------------------------------------------------------------------------


def test_a_taken_name_is_refused_without_asking_line_again(logged_in: Console, line: ThreadedSimulator) -> None:
    logged_in.post("/console/authentications", {"name": "line", "access_token": "t", "skip_test": "on"})
    step2 = draft_page(carry_on(logged_in, line))
    asked = bot_info_asked(line)
    taken = logged_in.post(step2, {"name": "line"}, page=step2)
    assert taken.status_code == 422
    assert "authentication &#39;line&#39; already exists: choose another name" in taken.text
    assert 'value="line"' in taken.text and "Demo Official Account" in taken.text  # the bot is still shown
    bad = logged_in.post(step2, {"name": "no spaces"}, page=step2)
    assert bad.status_code == 422 and "name: must be 1-64 letters" in bad.text
    assert bot_info_asked(line) == asked  # the name step never asks LINE
    assert logged_in.post(step2, {"name": "line-2"}, page=step2, follow=False).status_code == 303
    assert names(logged_in) == ["line", "line-2"]


def test_the_suggested_name_is_never_one_already_taken(logged_in: Console, line: ThreadedSimulator) -> None:
    data = {"name": "demo-official-account", "access_token": "t", "skip_test": "on"}
    logged_in.post("/console/authentications", data)
    step2 = draft_page(carry_on(logged_in, line))
    assert 'value="000demo"' in logged_in.client.get(step2).text  # then the basic ID's


def test_back_discards_the_tested_credentials(logged_in: Console, line: ThreadedSimulator) -> None:
    step2 = draft_page(carry_on(logged_in, line))
    back = logged_in.post(step2 + "/discard", page=step2, follow=False)
    assert back.headers["location"] == NEW
    assert len(logged_in.app.state.console.drafts) == 0
    assert logged_in.post(step2, {"name": "late"}, page=NEW, follow=False).headers["location"] == NEW
    assert names(logged_in) == []


def test_the_draft_expires_after_15_minutes(tmp_path: Path, line: ThreadedSimulator) -> None:
    clock = FakeClock()
    with console_app(tmp_path, clock=clock) as c:
        c.login()
        step2 = draft_page(carry_on(c, line))
        clock.advance(14 * 60)
        assert "for 1 more minute" in c.client.get(step2).text
        clock.advance(61)
        gone = c.client.get(step2)
        assert "The tested credentials are no longer kept (at most 15 minutes" in unescape(gone.text)
        assert gone.url.endswith(NEW)
        late = c.post(step2, {"name": "late"}, page=NEW, follow=False)
        assert late.headers["location"] == NEW
        assert names(c) == [] and len(c.app.state.console.drafts) == 0


def test_logging_out_drops_the_draft(logged_in: Console, line: ThreadedSimulator) -> None:
    step2 = draft_page(carry_on(logged_in, line))
    logged_in.post("/console/logout", page=NEW)
    assert len(logged_in.app.state.console.drafts) == 0
    logged_in.login()
    assert logged_in.client.get(step2, allow_redirects=False).headers["location"] == NEW
    assert logged_in.post(step2, {"name": "after"}, page=NEW, follow=False).headers["location"] == NEW
    assert names(logged_in) == []


def test_another_session_cannot_use_the_draft(logged_in: Console, line: ThreadedSimulator) -> None:
    step2 = draft_page(carry_on(logged_in, line))
    with ASGIClient(logged_in.app) as client:
        other = Console(logged_in.ctx, logged_in.app, logged_in.key, client)  # the same key, logged in again
        other.login()
        assert other.client.get(step2, allow_redirects=False).headers["location"] == NEW
        assert other.post(step2, {"name": "stolen"}, page=NEW, follow=False).headers["location"] == NEW
    assert names(logged_in) == []
    assert logged_in.client.get(step2).status_code == 200  # still the owner's


# -- who may, CSRF, secrets ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["read", "operator"])
def test_only_admins_use_the_hub(logged_in: Console, line: ThreadedSimulator, role: str) -> None:
    step2 = draft_page(carry_on(logged_in, line))
    logged_in.post("/console/logout", page=NEW)
    key = apikeys.create(logged_in.ctx.db, role, now=logged_in.ctx.clock.now(), role=role)
    logged_in.login(key)
    assert "Integrations Hub" not in logged_in.client.get("/console/activations").text
    for path in ("/console/integrations/catalog", NEW, step2):
        assert logged_in.client.get(path).status_code == 403, path
    page = logged_in.client.get("/console/activations").text
    for path, data in ((NEW, {"access_token": TOKEN, "api_url": line.url}), (step2, {"name": "x"})):
        response = logged_in.client.post(path, data={"csrf": csrf_of(page), **data})
        assert response.status_code == 403 and "This needs a key with the role admin" in response.text
    assert bot_info_asked(line) == 1 and names(logged_in) == []


@pytest.mark.parametrize("csrf", [None, "stale"])
def test_every_post_of_the_flow_needs_the_csrf_token(
    logged_in: Console, line: ThreadedSimulator, csrf: str | None
) -> None:
    step2 = draft_page(carry_on(logged_in, line))
    token = {} if csrf is None else {"csrf": csrf}
    posts = {
        NEW: {"access_token": TOKEN, "api_url": line.url},
        step2: {"name": "forged"},
        step2 + "/discard": {},
    }
    for path, data in posts.items():
        response = logged_in.client.post(path, data={**token, **data}, allow_redirects=False)
        assert response.status_code == 403 and "CSRF token" in response.text, path
    assert bot_info_asked(line) == 1 and names(logged_in) == []
    assert logged_in.client.get(step2).status_code == 200  # the forged discard did nothing


def test_no_secret_in_any_page_of_the_flow(logged_in: Console, line: ThreadedSimulator) -> None:
    pages = [logged_in.client.get("/console/integrations/catalog"), logged_in.client.get(NEW)]
    pages.append(carry_on(logged_in, line, access_token="refused-DO-NOT-SHOW"))
    pages.append(carry_on(logged_in, line, kind="channel_credentials", channel_id="x"))
    step2 = draft_page(carry_on(logged_in, line))
    pages.append(logged_in.client.get(step2))
    pages.append(logged_in.post(step2, {"name": "bad name"}, page=step2))
    pages.append(logged_in.post(step2, {"name": "oa"}, page=step2))  # follows to Done
    pages.append(logged_in.client.get("/console/authentications"))
    for page in pages:
        for secret in (TOKEN, CHANNEL_SECRET, "refused-DO-NOT-SHOW"):
            assert secret not in page.text, (page.url, secret)
    assert "Authentication “oa” created" in pages[-2].text
    stored = authentications.get(logged_in.ctx.db, "oa")
    assert authentications.load_credentials(logged_in.ctx.db, logged_in.ctx.vault, stored).access_token == TOKEN


def test_the_draft_holds_the_secrets_sealed(logged_in: Console, line: ThreadedSimulator) -> None:
    draft_page(carry_on(logged_in, line))
    with logged_in.ctx.db.transaction() as tx:
        [row] = tx._conn.execute("SELECT * FROM console_drafts").fetchall()  # type: ignore[attr-defined]
    stored = b"|".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert TOKEN.encode() not in stored and CHANNEL_SECRET.encode() not in stored


@pytest.mark.parametrize("path", [NEW + "/a%00b", FLOW + "/done/a%00b", FLOW + "/done/missing"])
def test_odd_addresses_are_never_a_5xx(logged_in: Console, path: str) -> None:
    assert logged_in.client.get(path).status_code in (200, 404)
