"""API keys for ``lineoa-export serve``: shown once at creation, stored only as SHA-256 hashes.

Keys are 256-bit random tokens, so a plain hash is enough (no salt or slow KDF needed:
there is nothing to brute-force). The final comparison uses ``hmac.compare_digest`` so
it takes the same time whatever the input.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .errors import AlreadyExists, NotFound
from .naming import check_name
from .store.database import Database

PREFIX = "lxk_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    created_at: float
    revoked_at: float | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(db: Database, name: str, *, now: float) -> str:
    """Create a key and return it: the only time it is ever visible."""
    check_name(name)
    key = PREFIX + secrets.token_urlsafe(32)
    if not db.run("apikey_insert", {"name": name, "key_hash": _hash(key), "now": now}):
        raise AlreadyExists(f"API key {name!r} already exists")
    return key


def list_all(db: Database) -> list[ApiKey]:
    return [ApiKey(r["name"], r["created_at"], r["revoked_at"]) for r in db.run("apikey_list")]


def revoke(db: Database, name: str, *, now: float) -> None:
    if not db.run("apikey_revoke", {"name": name, "now": now}):
        raise NotFound(f"no active API key named {name!r}")


def verify(db: Database, presented: str) -> str | None:
    """The key's name when ``presented`` is an active key, else None."""
    digest = _hash(presented)
    rows = db.run("apikey_by_hash", {"key_hash": digest})
    if rows and hmac.compare_digest(rows[0]["key_hash"], digest):
        return str(rows[0]["name"])
    return None
