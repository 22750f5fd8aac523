"""The Catalog flow's drafts: tested credentials kept for one console session, sealed, for a while."""

from __future__ import annotations

from lineoa_export.authentications import BotInfo, Credentials
from lineoa_export.clock import FakeClock
from lineoa_export.testing import TEST_SECRET_KEY
from lineoa_export.vault import Vault
from lineoa_export.web.console.drafts import MAX_PER_SESSION, Drafts
from lineoa_export.web.console.sessions import Session

BOT = BotInfo("U" + "0" * 32, "Shop")
ANN = Session("ops", "admin", "csrf-of-ann")
BOB = Session("ops", "admin", "csrf-of-bob")


def drafts(clock: FakeClock) -> Drafts:
    return Drafts(Vault.from_secret(TEST_SECRET_KEY), clock)


def test_a_draft_gives_its_credentials_back_only_to_its_session_and_only_for_15_minutes() -> None:
    clock = FakeClock()
    store = drafts(clock)
    creds = Credentials("channel_credentials", channel_id="123", channel_secret="s3cret")
    draft = store.put(ANN, creds, api_url="https://api.line.me", bot=BOT)
    assert (draft.kind, draft.channel_id, draft.webhook_secret) == ("channel_credentials", "123", True)
    assert store.credentials(ANN, draft.id) == creds
    assert store.get(BOB, draft.id) is None and store.credentials(BOB, draft.id) is None
    clock.advance(15 * 60 - 1)
    assert store.get(ANN, draft.id) == draft
    clock.advance(1)
    assert store.get(ANN, draft.id) is None and len(store) == 0


def test_a_session_keeps_its_newest_drafts_and_logging_out_drops_only_its_own() -> None:
    store = drafts(FakeClock())
    token = Credentials("access_token", access_token="tok")
    mine = [store.put(ANN, token, api_url="https://api.line.me", bot=BOT) for _ in range(MAX_PER_SESSION + 1)]
    theirs = store.put(BOB, token, api_url="https://api.line.me", bot=BOT)
    assert store.get(ANN, mine[0].id) is None  # the oldest gave way
    assert all(store.get(ANN, d.id) for d in mine[1:])
    store.drop(BOB, mine[1].id)  # not Bob's to drop
    assert store.get(ANN, mine[1].id) is not None
    store.end(ANN)
    assert len(store) == 1 and store.credentials(BOB, theirs.id) == token
