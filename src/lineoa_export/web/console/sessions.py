"""Console sessions: who is logged in, with which role, until when, and each session's CSRF token.

A session lives on the server, in the database, so that every ``serve`` on it knows it: several
``serve --no-worker`` nodes behind a load balancer, and the same one after a restart. The cookie
holds only a random id (256 bits); the database keeps its SHA-256 (``id_hash``, so a leaked store
holds no usable cookie), the API key's *name*, the session's CSRF token and when it expires.
Logging out deletes the session, so a cookie copied before logout stops working at once, on
every node, POSTs included. Every lookup also checks that the key is still active and reads its
role then: revoking a key ends its sessions, and a role change applies at the next request.

The one rule: a request belongs to a session only when the store says so *now*; nothing the
cookie carries besides the id is trusted.

The login form's CSRF token and the one-shot flash message are not sessions: they are signed
(HMAC) under a key derived from the vault's key, which every host of one database shares
(README, Security), so a login form one node served is accepted by another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ... import apikeys
from ...clock import Clock
from ...store.database import Database

SESSION_SECONDS = 12 * 3600
# What a console page or action needs; :func:`apikeys.allows` decides who may. A ``trigger``
# key (what a journey engine holds) may do none of them, so it cannot use the console at all.
Role = Literal["read", "operator", "admin"]
CONSOLE_ROLES = apikeys.MAY["read"]


def role_of(key: apikeys.ApiKey) -> str:
    return key.role


def allows(role: str, need: Role) -> bool:
    return apikeys.allows(role, need)


@dataclass(frozen=True, slots=True)
class Session:
    key: str  # the API key's name, never the key
    role: str
    csrf: str
    id_hash: str  # the SHA-256 of the cookie's id: what the session is stored under (and its drafts)

    def can(self, need: Role) -> bool:
        return allows(self.role, need)


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    """Start, look up and end console sessions for the API keys of ``db``, kept in ``db``."""

    def __init__(self, db: Database, clock: Clock, seconds: float = SESSION_SECONDS) -> None:
        self.db = db
        self.clock = clock
        self.seconds = seconds

    def start(self, key_name: str) -> str:
        """A new session for the key: the cookie value to hand to the browser."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock.now()
        row = {"id_hash": _hash(cookie), "api_key": key_name, "csrf": secrets.token_urlsafe(32)}
        with self.db.transaction() as tx:
            # Expired sessions go when a new one starts: the table stays as small as the live ones.
            tx.run("console_sessions_expire", {"now": now})
            tx.run("console_session_insert", {**row, "created_at": now, "expires_at": now + self.seconds})
        return cookie

    def current(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 100:
            return None
        id_hash = _hash(cookie)
        rows = self.db.run("console_session_get", {"id_hash": id_hash, "now": self.clock.now()})
        if not rows:
            return None
        stored = rows[0]
        key = self.active_key(stored["api_key"])
        if key is None or key.created_at > stored["created_at"]:
            return None  # revoked since (or a newer key took the name)
        return Session(stored["api_key"], role_of(key), stored["csrf"], id_hash)

    def end(self, cookie: str | None) -> None:
        if cookie and len(cookie) <= 100:
            self.db.run("console_session_delete", {"id_hash": _hash(cookie)})

    def active_key(self, name: str) -> apikeys.ApiKey | None:
        return next((k for k in apikeys.list_all(self.db) if k.name == name and k.revoked_at is None), None)


class Signer:
    """HMAC-SHA256 signatures under ``secret``: the same on every node that should accept them."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        data = base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")
        return f"{data}.{self.mac(purpose, data)}"

    def unsign(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        if not value or value.count(".") != 1 or len(value) > 4096:
            return None
        data, mac = value.split(".")
        if not hmac.compare_digest(mac, self.mac(purpose, data)):
            return None
        try:
            payload = orjson.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None

    def login_token(self, cookie: str | None) -> tuple[str, str | None]:
        """The login form's CSRF token, and a new pre-login cookie value when there was none."""
        payload = self.unsign("login", cookie)
        if payload and isinstance(payload.get("nonce"), str):
            return self.mac("login", payload["nonce"]), None
        nonce = secrets.token_urlsafe(16)
        return self.mac("login", nonce), self.sign("login", {"nonce": nonce})
