"""Tested credentials waiting for a name: the server-side half of the console's Catalog flow.

Between "Continue" (LINE accepted the credentials) and "Done" (the authentication is named and
stored) the credentials stay here, never in the page: in the database (table ``console_drafts``),
so that whichever node of a load-balanced console serves the next step finds them; sealed with the
vault; bound to the console session that tested them (by the session's ``id_hash``, the key of its
own row, which takes its drafts with it when it ends); and kept :data:`DRAFT_SECONDS` at most.
A draft is deleted when it is used, discarded, or its session logs out, and expired ones when the
next draft is made. A draft of another session, or an expired one, is not found. The page carries
only the draft's random id, which is worth nothing without its session.

The one rule: a draft's secret leaves this module only as :class:`Credentials` for the
operation that stores them; what a page may show is in :class:`Draft` (no secret).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from typing import cast

import orjson

from ...authentications import BotInfo, Credentials, Kind
from ...clock import Clock
from ...store.database import Database, Row
from ...vault import Vault
from .sessions import Session

DRAFT_SECONDS = 15 * 60
MAX_PER_SESSION = 5  # a few tabs at once; an older draft of the session gives way
_ID = re.compile(r"[A-Za-z0-9_-]{24}")  # secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class Draft:
    """What the pages of the flow show about tested credentials (no secret)."""

    id: str
    kind: Kind
    channel_id: str | None
    api_url: str
    bot: BotInfo
    webhook_secret: bool  # the Channel Secret Key is among them (LINE's webhooks can be verified)
    expires_at: float


def _draft(row: Row) -> Draft:
    return Draft(
        id=row["id"],
        kind=cast(Kind, row["kind"]),
        channel_id=row["channel_id"],
        api_url=row["api_url"],
        bot=BotInfo(**orjson.loads(row["bot"])),
        webhook_secret=bool(row["webhook_secret"]),
        expires_at=row["expires_at"],
    )


class Drafts:
    """Drafts in the database, like the console's sessions: every node of one database sees them."""

    def __init__(self, db: Database, vault: Vault, clock: Clock, seconds: float = DRAFT_SECONDS) -> None:
        self._db = db
        self._vault = vault
        self._clock = clock
        self.seconds = seconds

    def put(self, session: Session, credentials: Credentials, *, api_url: str, bot: BotInfo) -> Draft | None:
        """Keep tested credentials for ``session``: the draft its pages show; None when the session has
        ended meanwhile (nothing is kept then)."""
        now = self._clock.now()
        draft = Draft(
            id=secrets.token_urlsafe(18),
            kind=credentials.kind,
            channel_id=credentials.channel_id,
            api_url=api_url,
            bot=bot,
            webhook_secret=credentials.channel_secret is not None,
            expires_at=now + self.seconds,
        )
        row = {**asdict(draft), "bot": orjson.dumps(asdict(bot)).decode(), "session_hash": session.id_hash}
        with self._db.transaction() as tx:
            tx.run("console_drafts_expire", {"now": now})
            tx.run("console_drafts_keep_newest", {"session_hash": session.id_hash, "keep": MAX_PER_SESSION - 1})
            kept = tx.run("console_draft_insert", {**row, "sealed": credentials.seal(self._vault)})
        return draft if kept else None

    def get(self, session: Session, draft_id: str) -> Draft | None:
        row = self._find(session, draft_id)
        return _draft(row) if row else None

    def credentials(self, session: Session, draft_id: str) -> Credentials | None:
        """The tested credentials themselves, for storing them; None when the draft is gone."""
        row = self._find(session, draft_id)
        if row is None:
            return None
        secret: dict[str, str] = orjson.loads(self._vault.open(row["sealed"]))
        if row["kind"] == "access_token":
            return Credentials(
                "access_token", access_token=secret["access_token"], channel_secret=secret.get("channel_secret")
            )
        return Credentials("channel_credentials", channel_id=row["channel_id"], channel_secret=secret["channel_secret"])

    def drop(self, session: Session, draft_id: str) -> None:
        """The draft was used or discarded (only its own session may)."""
        if _ID.fullmatch(draft_id):
            self._db.run("console_draft_delete", {"id": draft_id, "session_hash": session.id_hash})

    def end(self, session: Session) -> None:
        """The session logged out: its drafts go with it."""
        self._db.run("console_drafts_end", {"session_hash": session.id_hash})

    def __len__(self) -> int:
        """How many drafts are kept (not expired), every session's."""
        return int(self._db.run("console_drafts_count", {"now": self._clock.now()})[0]["n"])

    def _find(self, session: Session, draft_id: str) -> Row | None:
        if not _ID.fullmatch(draft_id):
            return None  # not an id this module made (a store need not see it)
        rows = self._db.run(
            "console_draft_get", {"id": draft_id, "session_hash": session.id_hash, "now": self._clock.now()}
        )
        return rows[0] if rows else None
