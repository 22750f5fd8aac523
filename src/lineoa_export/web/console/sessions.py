"""Console sessions: who is logged in, with which role, until when, and each session's CSRF token.

A session lives on the server. The cookie holds only a random id (256 bits); the server keeps
its SHA-256 (``id_hash``, so a leaked store holds no usable cookie), the API key's *name*, the
session's CSRF token and when it expires. Logging out deletes the session, so a cookie copied
before logout stops working at once, POSTs included. Every lookup also checks that the key is
still active and reads its role then: revoking a key ends its sessions, and a role change
applies at the next request.

The one rule: a request belongs to a session only when the store says so *now*; nothing the
cookie carries besides the id is trusted.

The login form's CSRF token and the one-shot flash message are not sessions: they are signed
(HMAC) under a secret drawn when the console is mounted, because they protect nothing a
restart must keep.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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

    def can(self, need: Role) -> bool:
        return allows(self.role, need)


@dataclass(frozen=True, slots=True)
class Stored:
    api_key: str
    csrf: str
    created_at: float
    expires_at: float


class SessionStore(Protocol):
    """Where sessions live, by the SHA-256 of their cookie's id."""

    def put(self, id_hash: str, session: Stored) -> None: ...
    def get(self, id_hash: str, *, now: float) -> Stored | None: ...
    def delete(self, id_hash: str) -> None: ...


class MemorySessions:
    """Sessions in this process's memory: a restart logs everyone out (one process per console)."""

    def __init__(self) -> None:
        self._rows: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def put(self, id_hash: str, session: Stored) -> None:
        with self._lock:
            # Expired sessions go when a new one starts: the table stays as small as the live ones.
            self._rows = {h: s for h, s in self._rows.items() if s.expires_at > session.created_at}
            self._rows[id_hash] = session

    def get(self, id_hash: str, *, now: float) -> Stored | None:
        with self._lock:
            stored = self._rows.get(id_hash)
        return stored if stored is not None and now < stored.expires_at else None

    def delete(self, id_hash: str) -> None:
        with self._lock:
            self._rows.pop(id_hash, None)


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    """Start, look up and end console sessions for the API keys of ``db``."""

    def __init__(
        self, db: Database, clock: Clock, store: SessionStore | None = None, seconds: float = SESSION_SECONDS
    ) -> None:
        self.db = db
        self.clock = clock
        self.store = store or MemorySessions()
        self.seconds = seconds

    def start(self, key_name: str) -> str:
        """A new session for the key: the cookie value to hand to the browser."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.store.put(_hash(cookie), Stored(key_name, secrets.token_urlsafe(32), now, now + self.seconds))
        return cookie

    def current(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 100:
            return None
        stored = self.store.get(_hash(cookie), now=self.clock.now())
        if stored is None:
            return None
        key = self.active_key(stored.api_key)
        if key is None or key.created_at > stored.created_at:
            return None  # revoked since (or a newer key took the name)
        return Session(stored.api_key, role_of(key), stored.csrf)

    def end(self, cookie: str | None) -> None:
        if cookie:
            self.store.delete(_hash(cookie))

    def active_key(self, name: str) -> apikeys.ApiKey | None:
        return next((k for k in apikeys.list_all(self.db) if k.name == name and k.revoked_at is None), None)


class Signer:
    """HMAC-SHA256 signatures under a secret that lives as long as the process."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

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
