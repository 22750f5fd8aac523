"""API keys for ``lineoa-export serve``: shown once at creation, stored only as SHA-256 hashes.

Keys are 256-bit random tokens, so a plain hash is enough (no salt or slow KDF needed:
there is nothing to brute-force). The final comparison uses ``hmac.compare_digest`` so
it takes the same time whatever the input.

Each key has a role, chosen when it is made (keys made before roles existed are ``admin``):

=========  =====================================================================
admin      everything, API keys and credentials (authentications) included
operator   activations (create, update, copy, pause, resume, replay, validate,
           preview, delete), triggers and the activation table; no credentials, no keys
trigger    only ``POST /v1/activations/{name}/triggers``: what a journey engine holds
read       the activation table and metrics
=========  =====================================================================

The one rule: what a role may do is decided by :func:`allows` and nowhere else; a front end
states the *need* of each of its routes (``read``, ``trigger``, ``operator``, ``admin``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import AlreadyExists, InvalidInput, NotFound
from .naming import check_name
from .store.database import Database

PREFIX = "lxk_"
Role = Literal["admin", "operator", "trigger", "read"]
ROLES: tuple[str, ...] = get_args(Role)
# The roles that may do what a route needs, weakest first.
MAY: dict[str, tuple[str, ...]] = {
    "admin": ("admin",),
    "operator": ("operator", "admin"),
    "trigger": ("trigger", "operator", "admin"),
    "read": ("read", "operator", "admin"),
}


def allows(role: str, need: str) -> bool:
    """Whether a key with ``role`` may do what needs ``need``."""
    return role in MAY[need]


def who_may(need: str) -> str:
    """The roles that may, in words: ``"operator or admin"``."""
    roles = MAY[need]
    return roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " or " + roles[-1]


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    created_at: float
    revoked_at: float | None
    role: str = "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput.single("role", f"must be one of {', '.join(ROLES)}")
    return role


def create(db: Database, name: str, *, now: float, role: str = "admin") -> str:
    """Create a key with ``role`` and return it: the only time it is ever visible."""
    check_name(name)
    check_role(role)
    key = PREFIX + secrets.token_urlsafe(32)
    if not db.run("apikey_insert", {"name": name, "key_hash": _hash(key), "now": now, "role": role}):
        raise AlreadyExists(f"API key {name!r} already exists")
    return key


def list_all(db: Database) -> list[ApiKey]:
    return [ApiKey(r["name"], r["created_at"], r["revoked_at"], r["role"]) for r in db.run("apikey_list")]


def revoke(db: Database, name: str, *, now: float) -> None:
    if not db.run("apikey_revoke", {"name": name, "now": now}):
        raise NotFound(f"no active API key named {name!r}")


def verify(db: Database, presented: str) -> ApiKey | None:
    """The key (name, role; never the key itself) when ``presented`` is an active key, else None."""
    digest = _hash(presented)
    rows = db.run("apikey_by_hash", {"key_hash": digest})
    if rows and hmac.compare_digest(rows[0]["key_hash"], digest):
        row = rows[0]
        return ApiKey(row["name"], row["created_at"], None, row["role"])
    return None
