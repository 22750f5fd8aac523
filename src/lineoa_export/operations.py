"""The verbs every front end calls: the CLI, the JSON API and the console say the same thing here.

Authentications: create, test, rotate, delete (the console's Catalog flow tests first, then
names and stores). Activations: create (a copy with ``copy_from``),
update, pause, resume, delete, validate (with LINE), preview. Events: trigger, replay, read and
export the activation table; the overview of an activation or a channel. API keys: create (with a
role), list, revoke.

Each rule is checked once, here or in the domain module it belongs to, and nowhere in a front
end: a duplicate authentication name is refused before LINE is asked; a token, channel ID or
secret is one line of printable ASCII (:meth:`Credentials.from_options`); a pause reason is
storable text; a pause holds the activation's events in the store *and* the ones a running
worker already claimed; a trigger or replay is bounded. Front ends only turn their input
(flags, JSON, forms) into arguments and the answers (or :mod:`errors`) into their own words.

The one rule: a verb that changes what a running worker should do tells it through the
:class:`WorkerHandle` it was given, which is safe from any thread; nothing here imports a
front end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import orjson

from . import activation_table, activations, apikeys, authentications, overview
from .context import Context
from .delivery import outbox, rate_limit, triggers, units
from .delivery.lanes import Lane
from .delivery.line_client import DEFAULT_API_URL, PUSH_PATH
from .errors import AlreadyExists, ApiUrlNotAllowed, ConfigurationError, CredentialsRejected, InvalidInput, NotFound
from .insight import quota as line_quota
from .insight import reconcile as reconciliation
from .insight import statistics
from .naming import check_name, is_valid_unicode

MAX_BATCH = 1000  # events per trigger call: a batch is one transaction
MAX_REPLAY = outbox.MAX_REPLAY_IDS  # event ids per replay call (outbox replays them in batches)
MAX_REASON = 500
ExportFormat = Literal["csv", "ndjson"]
Role = Literal["admin", "operator", "trigger", "read"]


class WorkerControl(Protocol):
    """What a running worker offers the front door (``Worker`` has these, on its own loop)."""

    def wake(self) -> None: ...
    def hold_activation(self, name: str) -> None: ...
    def lanes(self) -> dict[str, Lane]: ...
    def rate_limit_degraded(self) -> list[str]: ...


class WorkerHandle:
    """A running worker, reachable from any thread.

    The worker's controls touch an ``asyncio.Event`` and its claim bookkeeping, which only its
    own event loop may touch; this hands each call to that loop with ``call_soon_threadsafe``,
    so API and console code running on the thread pool can call it directly.
    """

    def __init__(self, worker: WorkerControl, loop: asyncio.AbstractEventLoop) -> None:
        self._worker = worker
        self._loop = loop

    @classmethod
    def on_running_loop(cls, worker: WorkerControl) -> WorkerHandle:
        """A handle for ``worker`` whose loop is the one running now."""
        return cls(worker, asyncio.get_running_loop())

    def wake(self) -> None:
        """New events are due: the worker looks now instead of at its next poll."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._worker.wake)

    def hold_activation(self, name: str) -> None:
        """The activation was paused: the worker sends none of its events it already claimed."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._worker.hold_activation, name)

    def lane_state(self, channel_key: str) -> overview.LaneState | None:
        """What the worker holds for a channel now (the overview); None before its first claim there.

        Read from any thread without the loop: a snapshot of a few numbers, as ``/metrics`` reads them.
        """
        lane = self._worker.lanes().get(channel_key)
        if lane is None:
            return None
        degraded = channel_key in self._worker.rate_limit_degraded()
        return overview.LaneState(lane.in_flight, lane.limit(), lane.budget.latency, lane.breaker.open, degraded)


@dataclass(frozen=True, slots=True)
class Triggered:
    results: list[triggers.TriggerResult]

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class Preview:
    """What a push for one event would look like; the token and retry key are placeholders."""

    recipient: str
    url: str
    body: Any

    def public(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "request": {
                "method": "POST",
                "url": self.url,
                "headers": {
                    "Content-Type": "application/json",
                    "Authorization": "Bearer <stored token>",
                    "X-Line-Retry-Key": "<a UUID fixed when the event is accepted>",
                },
                "body": self.body,
            },
        }


AcceptedListener = Callable[[str, list[str]], None]


class Operations:
    """The verbs, bound to one context and (in ``serve``) the worker running beside it.

    Synchronous verbs do database work and are run on a thread by async callers; verbs that ask
    LINE are coroutines (their database work goes to a thread of its own).
    """

    def __init__(
        self,
        ctx: Context,
        worker: WorkerHandle | None = None,
        on_accepted: AcceptedListener | None = None,
    ) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.worker = worker
        self.on_accepted = on_accepted
        self.quotas = line_quota.Quotas(ctx)

    def now(self) -> float:
        return self.ctx.clock.now()

    # -- authentications -------------------------------------------------------------------

    def list_authentications(self) -> list[authentications.Authentication]:
        return authentications.list_all(self.db)

    def get_authentication(self, name: str) -> authentications.Authentication:
        return authentications.get(self.db, name)

    async def create_authentication(
        self,
        name: str,
        *,
        access_token: str | None = None,
        channel_id: str | None = None,
        channel_secret: str | None = None,
        api_url: str = DEFAULT_API_URL,
        skip_test: bool = False,
    ) -> authentications.Authentication:
        """Store credentials after LINE accepted them (unless ``skip_test``)."""
        check_name(name)
        creds = authentications.Credentials.from_options(access_token, channel_id, channel_secret)
        api_url = authentications.check_api_url(api_url, self.ctx.api_hosts)
        # Refused before LINE is asked: a test of credentials that cannot be stored is wasted.
        if await asyncio.to_thread(self._authentication_exists, name):
            raise AlreadyExists(f"authentication {name!r} already exists")
        bot = None if skip_test else await self._test(api_url, creds)
        return await asyncio.to_thread(
            lambda: authentications.create(
                self.db, self.ctx.vault, name=name, credentials=creds, api_url=api_url, bot=bot, now=self.now()
            )
        )

    async def try_credentials(
        self,
        *,
        access_token: str | None = None,
        channel_id: str | None = None,
        channel_secret: str | None = None,
        api_url: str = DEFAULT_API_URL,
    ) -> tuple[authentications.Credentials, str, authentications.BotInfo]:
        """Test credentials with LINE before any name is given (the console's Catalog flow): the
        credentials, the checked ``api_url`` and the bot; nothing is stored."""
        creds = authentications.Credentials.from_options(access_token, channel_id, channel_secret)
        api_url = authentications.check_api_url(api_url, self.ctx.api_hosts)
        return creds, api_url, await self._test(api_url, creds)

    def create_tested_authentication(
        self,
        name: str,
        credentials: authentications.Credentials,
        *,
        api_url: str,
        bot: authentications.BotInfo,
    ) -> authentications.Authentication:
        """Store credentials :meth:`try_credentials` tested, under ``name`` (LINE is not asked again)."""
        check_name(name)
        if self._authentication_exists(name):
            raise AlreadyExists(f"authentication {name!r} already exists")
        return authentications.create(
            self.db, self.ctx.vault, name=name, credentials=credentials, api_url=api_url, bot=bot, now=self.now()
        )

    def _authentication_exists(self, name: str) -> bool:
        try:
            authentications.get(self.db, name)
        except NotFound:
            return False
        return True

    async def test_authentication(self, name: str) -> authentications.BotInfo:
        """Who LINE says the stored credentials belong to; :class:`CredentialsRejected` when they fail."""
        auth = await asyncio.to_thread(authentications.get, self.db, name)
        creds = await asyncio.to_thread(self._stored_credentials, auth)
        return await self._test(auth.api_url, creds)

    async def rotate_authentication(
        self,
        name: str,
        *,
        access_token: str | None = None,
        channel_secret: str | None = None,
        skip_test: bool = False,
    ) -> authentications.Authentication:
        """Replace an authentication's secret (a new token, or the channel's new secret), same channel."""
        auth = await asyncio.to_thread(authentications.get, self.db, name)
        if auth.kind == "access_token":
            if channel_secret:
                raise InvalidInput.single("channel_secret", "this authentication holds an access token: give a new one")
            creds = authentications.Credentials.from_options(access_token or None, None, None)
        else:
            if access_token:
                raise InvalidInput.single("access_token", "this authentication holds a channel secret: give a new one")
            creds = authentications.Credentials.from_options(None, auth.channel_id, channel_secret or None)
        if not skip_test:
            self.ctx.api_hosts.check_stored(auth.api_url)  # its host may be no longer allowed
        bot = None if skip_test else await self._test(auth.api_url, creds)
        return await asyncio.to_thread(
            lambda: authentications.rotate(self.db, self.ctx.vault, name, credentials=creds, bot=bot)
        )

    def delete_authentication(self, name: str) -> None:
        authentications.delete(self.db, name)

    def update_authentication(
        self,
        name: str,
        *,
        forward_webhook: str | None = None,
        no_forward_webhook: bool = False,
        channel_secret: str | None = None,
    ) -> authentications.Authentication:
        """Where verified webhooks are re-sent (or stop: ``no_forward_webhook``), and the webhook secret."""
        if forward_webhook is not None and no_forward_webhook:
            raise InvalidInput.single("forward_webhook", "give a URL or no_forward_webhook, not both")
        auth = authentications.get(self.db, name)
        if channel_secret:
            auth = authentications.set_channel_secret(self.db, self.ctx.vault, name, channel_secret)
        if forward_webhook is not None or no_forward_webhook:
            allowed = self.ctx.settings.forward_hosts
            auth = authentications.set_forward_webhook(self.db, name, forward_webhook, allowed=allowed)
        return auth

    def _stored_credentials(self, auth: authentications.Authentication) -> authentications.Credentials:
        try:
            return authentications.load_credentials(self.db, self.ctx.vault, auth)
        except ApiUrlNotAllowed:
            raise
        except ConfigurationError:
            raise ConfigurationError(
                "its stored credentials cannot be decrypted with this server's secret key (LINEOA_EXPORT_SECRET_KEY"
                " or the key file changed since they were stored): restore that key, or rotate the credentials"
            ) from None

    async def _test(self, api_url: str, creds: authentications.Credentials) -> authentications.BotInfo:
        try:
            return await authentications.test_credentials_at(
                api_url, creds, self.ctx.clock, self.ctx.timeouts, self.ctx.api_hosts
            )
        except InvalidInput:
            raise  # a ValueError too, but ours: it names its field
        except ValueError:  # aiohttp's guard against a line break in a header (never echo the value)
            raise CredentialsRejected("the credentials cannot be sent as an HTTP header (a line break?)") from None

    # -- activations -----------------------------------------------------------------------

    def list_activations(self) -> list[activations.Activation]:
        return activations.list_all(self.db)

    def get_activation(self, name: str) -> activations.Activation:
        if not is_valid_unicode(name):  # no store can hold it, so no activation has it
            raise NotFound(f"activation {name[:64]!r} not found")
        return activations.get(self.db, name)

    def unit_status(self, name: str) -> units.UnitStatus:
        """The activation's aggregation unit this month: none, unused, in use, or withheld (1,000 used up)."""
        activation = self.get_activation(name)
        return units.status(self.db, activation.channel_key, activation.spec.aggregation_unit, self.now())

    def counts(self, name: str) -> dict[str, int]:
        return activations.counts(self.db, name)

    def copied_fields(self, source: str) -> dict[str, Any]:
        """The settings of ``source`` a copy starts from: everything but its name and its aggregation
        unit (a copy's statistics are its own: its unit is derived from its own name unless given)."""
        return self.get_activation(source).spec.model_dump(exclude={"name", "aggregation_unit"})

    def create_activation(
        self, name: str | None, fields: dict[str, Any], *, copy_from: str | None = None
    ) -> activations.Activation:
        """Create ``name`` from ``fields``; fields left out come from ``copy_from``, else the defaults."""
        if not name:
            raise InvalidInput.single("name", "required")
        base = self.copied_fields(copy_from) if copy_from else {}
        spec = activations.parse_spec({**base, **fields, "name": name})
        return activations.create(self.db, spec, now=self.now())

    def update_activation(self, name: str, changes: dict[str, Any]) -> activations.Activation:
        """Change the fields in ``changes``; the others stay as they were. A name cannot change."""
        if changes.get("name") not in (None, name) or changes.get("copy_from"):
            raise InvalidInput.single("name", "an activation cannot be renamed or copied by an update")
        current = self.get_activation(name).spec.model_dump()
        changes = {k: v for k, v in changes.items() if k != "copy_from"}
        if changes.get("no_aggregation_unit"):
            current.pop("aggregation_unit")  # "none" replaces the unit it had
        spec = activations.parse_spec({**current, **changes, "name": name})
        return activations.update(self.db, spec, now=self.now())

    def delete_activation(self, name: str) -> None:
        activations.delete(self.db, name)

    def pause_activation(self, name: str, reason: str) -> activations.Activation:
        """Hold the activation's events: those in the store, and those a running worker claimed."""
        if len(reason) > MAX_REASON or not is_valid_unicode(reason):
            raise InvalidInput.single("reason", f"at most {MAX_REASON} characters of text (no NUL)")
        self.get_activation(name)
        activations.pause(self.db, name, reason, now=self.now())
        if self.worker is not None:
            self.worker.hold_activation(name)
        return activations.get(self.db, name)

    def resume_activation(self, name: str) -> activations.Activation:
        """Put held events back in line (and the channel's, if LINE's answers paused it)."""
        self.get_activation(name)
        activations.resume(self.db, name, now=self.now())
        self._wake()
        return activations.get(self.db, name)

    async def validate_activation(self, name: str, event: dict[str, Any] | None = None) -> None:
        """Check the payload locally and with LINE's validate endpoint; nothing is sent."""
        from .validation import validate_with_line

        activation = await asyncio.to_thread(self.get_activation, name)
        reason = await validate_with_line(self.ctx, activation, event)
        if reason:
            raise InvalidInput.single("messages", f"LINE refused the payload: {reason}")

    def preview_activation(self, name: str, event: dict[str, Any]) -> Preview:
        """What the stored activation would send for ``event``."""
        return self.preview_spec(self.get_activation(name).spec, event)

    def preview_spec(self, spec: activations.ActivationSpec, event: dict[str, Any]) -> Preview:
        """What an activation (perhaps not saved yet: a form being filled) would send for ``event``."""
        try:
            recipient, body = activations.compile_spec(spec).render(event)
        except activations.RenderError as exc:
            raise InvalidInput.single("event", f"this event would be recorded as failed: {exc}") from None
        try:
            api_url = authentications.get(self.db, spec.authentication).api_url
        except NotFound:
            api_url = DEFAULT_API_URL
        return Preview(recipient, api_url + PUSH_PATH, orjson.loads(body))

    # -- what LINE tells afterwards ---------------------------------------------------------

    async def activation_stats(self, name: str, first: str | None = None, last: str | None = None) -> statistics.Stats:
        """LINE's statistics for the activation's unit (``YYYY-MM-DD`` days, UTC+9): fresh when
        the stored ones are older than a few minutes and the hourly budget allows, else the stored ones."""
        await asyncio.to_thread(self.get_activation, name)
        return await statistics.statistics(self.ctx, name, first, last)

    async def reconcile(self, authentication: str, day: str | None = None) -> reconciliation.Reconciliation:
        """LINE's count of the channel's pushes on ``day`` (``YYYY-MM-DD``, UTC+9; default yesterday)
        next to the pushes we recorded as accepted that day; the verdict is stored."""
        return await reconciliation.reconcile(self.ctx, authentication, day)

    def reconciliations(self, authentication: str) -> list[reconciliation.Reconciliation]:
        """The stored verdicts of an authentication, newest day first."""
        authentications.get(self.db, authentication)
        return reconciliation.history(self.db, authentication)

    # -- the overview ----------------------------------------------------------------------

    async def activation_overview(self, name: str) -> overview.Overview:
        """The activation's last hour (pushes per minute, outcomes, retry reasons, latency), its
        queue and lag, its channel's rate, hold and quota, engagement and the latest reconciliation."""
        scope = await asyncio.to_thread(lambda: overview.activation_scope(self.db, self.get_activation(name)))
        return await self._overview(scope)

    async def channel_overview(self, authentication: str) -> overview.Overview:
        """The same for every activation on an authentication's LINE channel."""
        if not is_valid_unicode(authentication):
            raise NotFound(f"authentication {authentication[:64]!r} not found")
        scope = await asyncio.to_thread(
            lambda: overview.channel_scope(self.db, authentications.get(self.db, authentication))
        )
        return await self._overview(scope)

    async def _overview(self, scope: overview.Scope) -> overview.Overview:
        settings = self.ctx.settings
        shared = rate_limit.sharing(settings.redis_url, shared_store=self.db.dialect == "postgres")
        lane = self.worker.lane_state(scope.channel_key) if self.worker is not None else None
        view = await asyncio.to_thread(
            overview.read,
            self.db,
            scope,
            now=self.now(),
            rate_limit=settings.rate_limit,
            rate_sharing=shared,
            lane=lane,
        )
        # LINE is asked at most once a minute per channel; in between the last answer is shown.
        return replace(view, quota=await self.quotas.of(scope.auth))

    # -- events ----------------------------------------------------------------------------

    def trigger(self, name: str, events: Sequence[dict[str, Any]]) -> Triggered:
        """Render and store ``events`` durably (1 to :data:`MAX_BATCH`), then wake the worker."""
        if not events:
            raise InvalidInput.single("events", "at least 1 event")
        if len(events) > MAX_BATCH:
            raise InvalidInput.single("events", f"at most {MAX_BATCH} events per request (got {len(events)})")
        self.get_activation(name)
        result = Triggered(triggers.accept(self.db, name, events, now=self.now()))
        self._wake()
        if self.on_accepted is not None:
            self.on_accepted(name, [r.status for r in result.results])
        return result

    def replay(self, name: str, event_ids: Sequence[str] | None = None) -> outbox.Replay:
        """Queue failed events again with their retry keys (all failed ones when ``event_ids`` is None)."""
        if event_ids is not None:
            if len(event_ids) > MAX_REPLAY:
                raise InvalidInput.single("event_ids", f"at most {MAX_REPLAY} per request (got {len(event_ids)})")
            if not all(is_valid_unicode(e) for e in event_ids):
                raise InvalidInput.single("event_ids", "not valid Unicode (a lone surrogate or a NUL)")
        self.get_activation(name)
        result = outbox.replay_failed(self.db, name, list(event_ids) if event_ids is not None else None, now=self.now())
        self._wake()
        return result

    def table_page(
        self, name: str, filters: activation_table.Filters, *, limit: int, before: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of the activation table, newest first, and the cursor of the next one."""
        self.get_activation(name)
        return activation_table.page(self.db, name, filters=filters, limit=limit, before=before)

    def table_rows(self, name: str, filters: activation_table.Filters) -> Iterator[dict[str, Any]]:
        """Every matching row of the activation table, newest first, read page by page."""
        self.get_activation(name)
        return activation_table.iterate(self.db, name, filters=filters)

    def export(self, name: str, filters: activation_table.Filters, fmt: ExportFormat) -> Iterator[bytes]:
        """The activation table as CSV (cells safe for spreadsheets) or NDJSON, streamed."""
        rows = self.table_rows(name, filters)
        if fmt == "csv":
            return (chunk.encode() for chunk in activation_table.csv_chunks(rows))
        return (orjson.dumps(row) + b"\n" for row in rows)

    def event(self, name: str, event_id: str) -> dict[str, Any]:
        self.get_activation(name)
        if not is_valid_unicode(event_id):
            raise NotFound(f"event {event_id[:64]!r} not found")
        return activation_table.event(self.db, name, event_id)

    # -- API keys --------------------------------------------------------------------------

    def create_apikey(self, name: str, role: str = "admin") -> str:
        """A new key with ``role`` (see :mod:`apikeys`), shown this once."""
        return apikeys.create(self.db, name, now=self.now(), role=role)

    def list_apikeys(self) -> list[apikeys.ApiKey]:
        return apikeys.list_all(self.db)

    def revoke_apikey(self, name: str) -> None:
        apikeys.revoke(self.db, name, now=self.now())

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()
