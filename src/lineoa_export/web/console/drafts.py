"""Tested credentials waiting for a name: the server-side half of the console's Catalog flow.

Between "Continue" (LINE accepted the credentials) and "Done" (the authentication is named and
stored) the credentials stay here, never in the page: sealed with the vault, bound to the
console session that tested them (by a hash of its CSRF token, which is that session's own
random value), and kept :data:`DRAFT_SECONDS` at most. Logging out drops the session's drafts;
a draft of another session, or an expired one, is not found. The page carries only the draft's
random id, which is worth nothing without its session.

The one rule: a draft's secret leaves this module only as :class:`Credentials` for the
operation that stores them; what a page may show is in :class:`Draft` (no secret).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

import orjson

from ...authentications import BotInfo, Credentials, Kind
from ...clock import Clock
from ...vault import Vault
from .sessions import Session

DRAFT_SECONDS = 15 * 60
MAX_PER_SESSION = 5  # a few tabs at once; an older draft of the session gives way
MAX_DRAFTS = 1000  # the memory they may take, whatever many sessions do


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


@dataclass(frozen=True, slots=True)
class _Held:
    draft: Draft
    owner: str
    sealed: bytes


def _owner(session: Session) -> str:
    return hashlib.sha256(b"draft|" + session.csrf.encode()).hexdigest()


class Drafts:
    """Drafts in this process's memory, like the console's sessions (one process per console)."""

    def __init__(self, vault: Vault, clock: Clock, seconds: float = DRAFT_SECONDS) -> None:
        self._vault = vault
        self._clock = clock
        self.seconds = seconds
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def put(self, session: Session, credentials: Credentials, *, api_url: str, bot: BotInfo) -> Draft:
        """Keep tested credentials for ``session``: the draft its pages show."""
        draft = Draft(
            id=secrets.token_urlsafe(18),
            kind=credentials.kind,
            channel_id=credentials.channel_id,
            api_url=api_url,
            bot=bot,
            webhook_secret=credentials.channel_secret is not None,
            expires_at=self._clock.now() + self.seconds,
        )
        held = _Held(draft, _owner(session), credentials.seal(self._vault))
        with self._lock:
            self._forget_expired()
            mine = [k for k, h in self._held.items() if h.owner == held.owner]
            for key in mine[: max(0, len(mine) - MAX_PER_SESSION + 1)]:  # oldest first (insertion order)
                del self._held[key]
            while len(self._held) >= MAX_DRAFTS:
                del self._held[next(iter(self._held))]
            self._held[draft.id] = held
        return draft

    def get(self, session: Session, draft_id: str) -> Draft | None:
        held = self._find(session, draft_id)
        return held.draft if held else None

    def credentials(self, session: Session, draft_id: str) -> Credentials | None:
        """The tested credentials themselves, for storing them; None when the draft is gone."""
        held = self._find(session, draft_id)
        if held is None:
            return None
        secret: dict[str, str] = orjson.loads(self._vault.open(held.sealed))
        draft = held.draft
        if draft.kind == "access_token":
            return Credentials(
                "access_token", access_token=secret["access_token"], channel_secret=secret.get("channel_secret")
            )
        return Credentials("channel_credentials", channel_id=draft.channel_id, channel_secret=secret["channel_secret"])

    def drop(self, session: Session, draft_id: str) -> None:
        with self._lock:
            held = self._held.get(draft_id)
            if held is not None and held.owner == _owner(session):
                del self._held[draft_id]

    def end(self, session: Session) -> None:
        """The session logged out: its drafts go with it."""
        owner = _owner(session)
        with self._lock:
            self._held = {k: h for k, h in self._held.items() if h.owner != owner}

    def __len__(self) -> int:
        with self._lock:
            self._forget_expired()
            return len(self._held)

    def _find(self, session: Session, draft_id: str) -> _Held | None:
        with self._lock:
            self._forget_expired()
            held = self._held.get(draft_id)
        return held if held is not None and held.owner == _owner(session) else None

    def _forget_expired(self) -> None:
        now = self._clock.now()
        self._held = {k: h for k, h in self._held.items() if h.draft.expires_at > now}
