"""The Catalog flow's drafts: tested credentials kept in the database for one console session,
sealed, for a while; gone once used, discarded, expired, or when their session ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lineoa_export import apikeys
from lineoa_export.authentications import BotInfo, Credentials
from lineoa_export.clock import FakeClock
from lineoa_export.store.database import Database, open_database
from lineoa_export.testing import TEST_SECRET_KEY
from lineoa_export.vault import Vault
from lineoa_export.web.console.drafts import MAX_PER_SESSION, Drafts
from lineoa_export.web.console.sessions import Session, Sessions

BOT = BotInfo("U" + "0" * 32, "Shop", "@shop", "https://profile.line-scdn.net/shop")
API = "https://api.line.me"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path, clock: FakeClock) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'drafts.db'}")
    apikeys.create(database, "ops", now=clock.now())
    yield database
    database.close()


def log_in(sessions: Sessions) -> tuple[str, Session]:
    cookie = sessions.start("ops")
    session = sessions.current(cookie)
    assert session is not None
    return cookie, session


def drafts(db: Database, clock: FakeClock) -> Drafts:
    return Drafts(db, Vault.from_secret(TEST_SECRET_KEY), clock)


def test_a_draft_gives_its_credentials_back_only_to_its_session_and_only_for_15_minutes(
    db: Database, clock: FakeClock
) -> None:
    sessions = Sessions(db, clock)
    (_, ann), (_, bob) = log_in(sessions), log_in(sessions)
    store = drafts(db, clock)
    creds = Credentials("channel_credentials", channel_id="123", channel_secret="s3cret")
    draft = store.put(ann, creds, api_url=API, bot=BOT)
    assert draft is not None
    assert (draft.kind, draft.channel_id, draft.webhook_secret) == ("channel_credentials", "123", True)
    assert drafts(db, clock).get(ann, draft.id) == draft  # another node reads the same draft
    assert store.credentials(ann, draft.id) == creds
    assert store.get(bob, draft.id) is None and store.credentials(bob, draft.id) is None
    store.drop(bob, draft.id)  # not Bob's to drop
    clock.advance(15 * 60 - 1)
    assert store.get(ann, draft.id) == draft
    clock.advance(1)
    assert store.get(ann, draft.id) is None and len(store) == 0
    store.put(bob, creds, api_url=API, bot=BOT)
    assert db.run("console_drafts_count", {"now": 0})[0]["n"] == 1  # the expired one is deleted


def test_the_secrets_are_stored_sealed(db: Database, clock: FakeClock) -> None:
    _, ann = log_in(Sessions(db, clock))
    drafts(db, clock).put(ann, Credentials("access_token", access_token="tok-SECRET"), api_url=API, bot=BOT)
    with db.transaction() as tx:
        [row] = tx._conn.execute("SELECT * FROM console_drafts").fetchall()  # type: ignore[attr-defined]
    assert not any(b"tok-SECRET" in (v if isinstance(v, bytes) else str(v).encode()) for v in row.values())


def test_a_session_keeps_its_newest_drafts_and_ending_it_drops_only_its_own(db: Database, clock: FakeClock) -> None:
    sessions = Sessions(db, clock)
    (ann_cookie, ann), (_, bob) = log_in(sessions), log_in(sessions)
    store = drafts(db, clock)
    token = Credentials("access_token", access_token="tok")
    mine = [store.put(ann, token, api_url=API, bot=BOT) for _ in range(MAX_PER_SESSION + 1)]
    theirs = store.put(bob, token, api_url=API, bot=BOT)
    assert None not in mine and theirs is not None
    assert store.get(ann, mine[0].id) is None  # type: ignore[union-attr]  # the oldest gave way
    assert all(store.get(ann, d.id) for d in mine[1:])  # type: ignore[union-attr]
    store.end(ann)
    assert len(store) == 1 and store.credentials(bob, theirs.id) == token
    # a session that ends (logged out on any node) takes its drafts with it, and takes no new one
    again = store.put(ann, token, api_url=API, bot=BOT)
    assert again is not None
    sessions.end(ann_cookie)
    assert store.get(ann, again.id) is None and len(store) == 1
    assert store.put(ann, token, api_url=API, bot=BOT) is None and len(store) == 1


def test_an_address_that_is_no_draft_id_finds_nothing(db: Database, clock: FakeClock) -> None:
    _, ann = log_in(Sessions(db, clock))
    store = drafts(db, clock)
    for odd in ["", "x" * 25, "a\0b", "../x", "é" * 24]:
        assert store.get(ann, odd) is None and store.credentials(ann, odd) is None
        store.drop(ann, odd)
