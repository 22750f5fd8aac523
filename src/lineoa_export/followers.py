"""Who can still receive a push: each channel's follower state, kept from LINE's webhooks.

Owns receiving one webhook request for an authentication: the signature is checked with the
channel secret on the raw bytes (see :mod:`.webhooks`), then every follow / unfollow event is
stored in one transaction, before LINE is answered. Its one rule: a ``webhookEventId`` counts
once per channel, and a user's state is the one of the newest ``timestamp`` seen, whatever
order (or how many times) the events arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import authentications
from .authentications import Authentication
from .errors import InvalidInput, LineoaExportError, NotFound
from .store.database import Database
from .vault import Vault
from .webhooks import WebhookBodyError, follow_facts, signature_is_valid


class WebhookRefused(LineoaExportError):
    """Not a request LINE signed for this authentication (unknown name, no secret, bad signature).

    Its message is the same for every cause, so a caller without the secret learns no names;
    ``why`` says which it was, for the server's log.
    """

    def __init__(self, why: str) -> None:
        super().__init__("the request is not signed by LINE for this channel (x-line-signature)")
        self.why = why


@dataclass(frozen=True, slots=True)
class Received:
    """What one verified request did: follow / unfollow events in it, new ones, states changed."""

    authentication: Authentication
    events: int
    new: int
    changed: int


def receive(db: Database, vault: Vault, name: str, body: bytes, signature: str | None, *, now: float) -> Received:
    """Verify and store one webhook request; :class:`WebhookRefused` when it is not LINE's."""
    try:
        auth, secret = authentications.webhook_secret(db, vault, name)
    except (NotFound, InvalidInput):
        raise WebhookRefused("no such authentication") from None
    if secret is None:
        raise WebhookRefused(f"authentication {name!r} holds no channel secret (auth update --channel-secret)")
    if not signature_is_valid(secret, body, signature):
        raise WebhookRefused(f"missing or wrong x-line-signature for {name!r}")
    try:
        facts = follow_facts(body)
    except WebhookBodyError as error:
        raise InvalidInput.single("body", str(error).removeprefix("body: ")) from None
    new = changed = 0
    with db.transaction() as tx:
        for fact in facts:
            key = {"channel_key": auth.channel_key, "webhook_event_id": fact.webhook_event_id, "now": now}
            if not tx.run("webhook_event_seen", key):
                continue  # a duplicate or a redelivery already counted
            new += 1
            state = {
                "channel_key": auth.channel_key,
                "user_id": fact.user_id,
                "following": fact.following,
                "changed_at_ms": fact.timestamp_ms,
            }
            changed += len(tx.run("follower_upsert", state))
    return Received(auth, len(facts), new, changed)


#: How long a ``webhookEventId`` is remembered (seconds): LINE redelivers and repeats an event
#: within a limited time, far shorter than this. An older repeat changes no state anyway: a user's
#: state only moves to a newer ``timestamp``.
SEEN_KEPT = 30 * 86_400.0
#: Ids deleted in one transaction when pruning: the first prune after an upgrade can meet 30 days
#: and more of them, and SQLite's one writer (webhooks, the worker) waits while a transaction runs.
PRUNE_BATCH = 5_000


def forget_old_event_ids(db: Database, *, now: float, batch: int = PRUNE_BATCH) -> int:
    """Delete the webhook event ids received more than :data:`SEEN_KEPT` ago, at most ``batch`` in
    each transaction (other writers go in between); how many went."""
    params = {"before": now - SEEN_KEPT, "batch": batch}
    forgotten = 0
    while True:
        with db.transaction() as tx:
            deleted = tx.run_changed("webhook_events_prune", params)
        forgotten += deleted
        if deleted < batch:
            return forgotten


@dataclass(frozen=True, slots=True)
class FollowState:
    following: bool
    changed_at_ms: int


def state_of(db: Database, channel_key: str, user_id: str) -> FollowState | None:
    """What the channel's webhooks said last about ``user_id`` (None: nothing yet)."""
    rows = db.run("follower_get", {"channel_key": channel_key, "user_id": user_id})
    return FollowState(bool(rows[0]["following"]), int(rows[0]["changed_at_ms"])) if rows else None


def blocked_count(db: Database, channel_key: str) -> int:
    """How many users the channel knows as blocked (their last event was an unfollow)."""
    return int(db.run("followers_blocked_count", {"channel_key": channel_key})[0]["n"])


def blocked_counts(db: Database, channel_keys: Iterable[str]) -> dict[str, int]:
    return {key: blocked_count(db, key) for key in set(channel_keys)}
