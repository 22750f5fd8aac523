"""The JSON API (``/v1``) of ``lineoa-export serve``, described by ``/openapi.json``.

Every endpoint but the health checks and ``/openapi.json`` needs ``Authorization: Bearer
<API key>``, checked before a request's body is read (see :mod:`.request_guard`, which also
bounds bodies in size and time). The OpenAPI document is public: it describes the API and
holds no data. No docs page is served (FastAPI's loads its scripts from a third-party CDN);
load ``/openapi.json`` into any OpenAPI viewer. Errors have one shape, naming each bad field::

    {"error": "invalid_input", "message": "...", "problems": [{"field": "messages[0].text",
                                                               "reason": "longer than 5000"}]}

Database work runs on the thread pool (the store is synchronous); trigger endpoints wake
the in-process worker so an accepted event leaves at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, activation_table, activations, apikeys, authentications
from ..context import Context
from ..delivery import outbox, triggers
from ..delivery.line_client import DEFAULT_API_URL, PUSH_PATH
from ..delivery.worker import Worker
from ..errors import (
    AlreadyExists,
    CredentialsRejected,
    FieldProblem,
    InvalidInput,
    LineoaExportError,
    NotFound,
    StorageFull,
)
from ..naming import check_name, is_valid_unicode, storable
from .console import mount_console
from .metrics import Metrics
from .request_guard import VERIFIED_KEY, RequestGuard

MAX_BATCH = 1000
# 1,000 events of a few hundred bytes each fit many times over; anything bigger is refused
# as it streams in, so one request cannot fill the memory of the process.
MAX_BODY_BYTES = 16 * 1024 * 1024
# A client that stops sending its body mid-way gives its connection back after this long.
BODY_READ_TIMEOUT = 30.0
bearer = HTTPBearer(auto_error=False, description="An API key from `lineoa-export apikey create NAME`.")


# -- bodies ------------------------------------------------------------------------------------


class Problem(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    error: str
    message: str
    problems: list[Problem] = []


class AuthenticationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-64 letters, digits, '_', '.', '-'")
    access_token: SecretStr | None = Field(default=None, description="Long-lived channel access token")
    channel_id: str | None = Field(default=None, description="Channel ID, with channel_secret: tokens are minted")
    channel_secret: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    skip_test: bool = Field(default=False, description="Store without testing the credentials with LINE")


class AuthenticationOut(BaseModel):
    name: str
    kind: str
    api_url: str
    channel_id: str | None
    bot_user_id: str | None
    bot_name: str | None
    created_at: float
    paused: bool
    paused_reason: str | None


class ActivationIn(BaseModel):
    """An activation. On create, fields left out come from ``copy_from`` or the defaults."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    copy_from: str | None = None
    description: str | None = None
    authentication: str | None = None
    recipient: str | None = Field(default=None, description="Recipient ID template, e.g. {{line_user_id}}")
    messages: list[Any] | None = Field(default=None, description="Messages Payload: 1-5 LINE message objects")
    max_retries: int | None = Field(default=None, description="Maximum Number Of Retry (default 3)")
    initial_retry_delay: float | None = Field(default=None, description="Initial Retry Delay, seconds (default 2)")
    retry_delay_multiple: float | None = Field(default=None, description="Retry Delay Multiple (default 2)")
    notification_disabled: bool | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"copy_from", "name"})


class ActivationOut(BaseModel):
    name: str
    description: str
    authentication: str
    recipient: str
    messages: Any
    max_retries: int
    initial_retry_delay: float
    retry_delay_multiple: float
    notification_disabled: bool
    paused: bool
    paused_reason: str | None
    created_at: float
    updated_at: float
    counts: dict[str, int] = {}


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: dict[str, Any] | None = Field(default=None, description="One event: profile attributes")
    events: list[dict[str, Any]] | None = Field(default=None, description=f"Up to {MAX_BATCH} events")


class TriggerOut(BaseModel):
    results: list[dict[str, Any]]
    counts: dict[str, int]


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: dict[str, Any] | None = None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_ids: list[str] | None = Field(
        default=None,
        max_length=outbox.MAX_REPLAY_IDS,
        description=f"Failed events to replay (at most {outbox.MAX_REPLAY_IDS}); all when left out",
    )

    @field_validator("event_ids")
    @classmethod
    def _unicode(cls, ids: list[str] | None) -> list[str] | None:
        if ids and not all(is_valid_unicode(i) for i in ids):
            raise ValueError("not valid Unicode (a lone surrogate)")
        return ids


class ReplayOut(BaseModel):
    replayed: list[str]
    not_replayable: list[str]


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="paused through the API", max_length=500)


class LogPage(BaseModel):
    events: list[dict[str, Any]]
    next_cursor: str | None


# -- errors ------------------------------------------------------------------------------------


def _error(status: int, error: str, message: str, problems: list[FieldProblem] | None = None) -> JSONResponse:
    body = {
        "error": error,
        # Messages may quote input: a lone surrogate in it could not be encoded as UTF-8.
        "message": storable(message),
        "problems": [{"field": storable(p.path), "reason": storable(p.reason)} for p in problems or []],
    }
    return JSONResponse(body, status_code=status)


def _path_of(loc: tuple[Any, ...]) -> str:
    """FastAPI prefixes where a field came from; the field's own path is what users need."""
    return activations.field_path(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return _error(422, "invalid_input", str(exc), list(exc.problems))

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(AlreadyExists)
    async def exists(_: Request, exc: AlreadyExists) -> JSONResponse:
        return _error(409, "already_exists", str(exc))

    @app.exception_handler(CredentialsRejected)
    async def rejected(_: Request, exc: CredentialsRejected) -> JSONResponse:
        return _error(422, "credentials_rejected", str(exc), [FieldProblem("credentials", str(exc))])

    @app.exception_handler(StorageFull)
    async def full(_: Request, exc: StorageFull) -> JSONResponse:
        return _error(503, "storage_full", str(exc))

    @app.exception_handler(LineoaExportError)
    async def other(_: Request, exc: LineoaExportError) -> JSONResponse:
        return _error(400, "bad_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        problems = [FieldProblem(_path_of(tuple(e.get("loc", ()))), str(e.get("msg", "invalid"))) for e in errors]
        return _error(422, "invalid_input", "; ".join(str(p) for p in problems), problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "too_large",
        }
        response = _error(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 422)}


async def api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The name of the caller's API key (the RequestGuard checked it already); 401 without a valid one."""
    name: str | None = request.scope.get("state", {}).get(VERIFIED_KEY)
    if name is None and credentials:
        name = await run_in_threadpool(apikeys.verify, request.app.state.ctx.db, credentials.credentials)
    if name is None:
        raise StarletteHTTPException(
            401, "a valid API key is required (Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"}
        )
    return name


Auth = Annotated[str, Depends(api_key)]


# -- the app -----------------------------------------------------------------------------------


def create_api(ctx: Context, *, worker: Worker | None = None, metrics: Metrics | None = None) -> FastAPI:
    app = FastAPI(
        title="lineoa-export",
        version=__version__,
        description="Triggered activations pushed to LINE exactly once, and their activation table.",
        responses=ERRORS,
        docs_url=None,
        redoc_url=None,
    )
    metrics = metrics or Metrics(ctx.db, rate_limit=ctx.settings.rate_limit)
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(
        RequestGuard,
        verify_key=lambda token: apikeys.verify(ctx.db, token),
        error=_error,
        max_body_bytes=MAX_BODY_BYTES,
        body_timeout=BODY_READ_TIMEOUT,
    )

    db = ctx.db

    def now() -> float:
        return ctx.clock.now()

    # -- health ----------------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"model": ErrorBody}})
    def readyz() -> Response:
        if not db.ping():
            return _error(503, "not_ready", "the database is not reachable")
        if db.storage_full:
            return _error(503, "storage_full", "the database's disk is full: writes fail until space is freed")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics_endpoint(_: Auth) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    # -- authentications -------------------------------------------------------------------

    @app.post("/v1/authentications", status_code=201, tags=["authentications"])
    async def create_authentication(body: AuthenticationIn, _: Auth) -> AuthenticationOut:
        creds = authentications.Credentials.from_options(
            body.access_token.get_secret_value() if body.access_token else None,
            body.channel_id,
            body.channel_secret.get_secret_value() if body.channel_secret else None,
        )
        check_name(body.name)
        api_url = authentications.check_api_url(body.api_url, ctx.api_hosts)
        bot = None
        if not body.skip_test:
            bot = await authentications.test_credentials_at(api_url, creds, ctx.clock, ctx.timeouts, ctx.api_hosts)
        auth = await run_in_threadpool(
            lambda: authentications.create(
                db, ctx.vault, name=body.name, credentials=creds, api_url=api_url, bot=bot, now=now()
            )
        )
        return AuthenticationOut(**auth.public())

    @app.get("/v1/authentications", tags=["authentications"])
    def list_authentications(_: Auth) -> list[AuthenticationOut]:
        return [AuthenticationOut(**a.public()) for a in authentications.list_all(db)]

    @app.get("/v1/authentications/{name}", tags=["authentications"])
    def get_authentication(name: str, _: Auth) -> AuthenticationOut:
        return AuthenticationOut(**authentications.get(db, name).public())

    @app.delete("/v1/authentications/{name}", status_code=204, tags=["authentications"])
    def delete_authentication(name: str, _: Auth) -> Response:
        authentications.delete(db, name)
        return Response(status_code=204)

    @app.post("/v1/authentications/{name}/test", tags=["authentications"])
    async def test_authentication(name: str, _: Auth) -> dict[str, Any]:
        auth = await run_in_threadpool(authentications.get, db, name)
        creds = await run_in_threadpool(authentications.load_credentials, db, ctx.vault, auth)
        bot = await authentications.test_credentials_at(auth.api_url, creds, ctx.clock, ctx.timeouts, ctx.api_hosts)
        return {"ok": True, "bot_user_id": bot.user_id, "bot_name": bot.display_name}

    # -- activations -----------------------------------------------------------------------

    def activation_out(a: activations.Activation, with_counts: bool = True) -> ActivationOut:
        counts = activations.counts(db, a.name) if with_counts else {}
        return ActivationOut(**a.public(), counts=counts)

    @app.post("/v1/activations", status_code=201, tags=["activations"])
    def create_activation(body: ActivationIn, _: Auth) -> ActivationOut:
        if not body.name:
            raise InvalidInput.single("name", "required")
        base = activations.get(db, body.copy_from).spec.model_dump() if body.copy_from else {}
        spec = activations.parse_spec({**base, **body.fields(), "name": body.name})
        return activation_out(activations.create(db, spec, now=now()))

    @app.get("/v1/activations", tags=["activations"])
    def list_activations(_: Auth) -> list[ActivationOut]:
        return [activation_out(a) for a in activations.list_all(db)]

    @app.get("/v1/activations/{name}", tags=["activations"])
    def get_activation(name: str, _: Auth) -> ActivationOut:
        return activation_out(activations.get(db, name))

    @app.patch("/v1/activations/{name}", tags=["activations"])
    def update_activation(name: str, body: ActivationIn, _: Auth) -> ActivationOut:
        if body.name not in (None, name) or body.copy_from:
            raise InvalidInput.single("name", "an activation cannot be renamed or copied by an update")
        current = activations.get(db, name).spec.model_dump()
        spec = activations.parse_spec({**current, **body.fields()})
        return activation_out(activations.update(db, spec, now=now()))

    @app.delete("/v1/activations/{name}", status_code=204, tags=["activations"])
    def delete_activation(name: str, _: Auth) -> Response:
        activations.delete(db, name)
        return Response(status_code=204)

    @app.post("/v1/activations/{name}/pause", tags=["activations"])
    def pause_activation(name: str, _: Auth, body: PauseIn | None = None) -> ActivationOut:
        activations.pause(db, name, (body or PauseIn()).reason, now=now())
        if worker is not None:
            worker.hold_activation(name)
        return activation_out(activations.get(db, name))

    @app.post("/v1/activations/{name}/resume", tags=["activations"])
    async def resume_activation(name: str, _: Auth) -> ActivationOut:
        await run_in_threadpool(lambda: activations.resume(db, name, now=now()))
        if worker is not None:
            worker.wake()
        return await run_in_threadpool(lambda: activation_out(activations.get(db, name)))

    @app.post("/v1/activations/{name}/validate", tags=["activations"])
    async def validate_activation(name: str, _: Auth, body: SampleIn | None = None) -> dict[str, Any]:
        from ..validation import validate_with_line

        activation = await run_in_threadpool(activations.get, db, name)
        reason = await validate_with_line(ctx, activation, (body or SampleIn()).event)
        if reason:
            raise InvalidInput.single("messages", f"LINE refused the payload: {reason}")
        return {"valid": True, "checked": ["local", "line"]}

    @app.post("/v1/activations/{name}/preview", tags=["activations"])
    def preview_activation(name: str, body: SampleIn, _: Auth) -> dict[str, Any]:
        activation = activations.get(db, name)
        auth = authentications.get(db, activation.spec.authentication)
        compiled = activations.compile_spec(activation.spec)
        try:
            recipient, request_body = compiled.render(body.event or {})
        except activations.RenderError as exc:
            raise InvalidInput.single("event", str(exc)) from None
        return {
            "recipient": recipient,
            "request": {
                "method": "POST",
                "url": auth.api_url + PUSH_PATH,
                "headers": {
                    "Content-Type": "application/json",
                    "Authorization": "Bearer <stored token>",
                    "X-Line-Retry-Key": "<a UUID fixed when the event is accepted>",
                },
                "body": orjson.loads(request_body),
            },
        }

    # -- triggers --------------------------------------------------------------------------

    @app.post("/v1/activations/{name}/triggers", status_code=202, tags=["triggers"])
    async def trigger(name: str, body: TriggerIn, _: Auth) -> TriggerOut:
        if (body.event is None) == (body.events is None):
            raise InvalidInput.single("body", "give exactly one of 'event' or 'events'")
        events = [body.event] if body.event is not None else (body.events or [])
        if not events:
            raise InvalidInput.single("events", "at least 1 event")
        if len(events) > MAX_BATCH:
            raise InvalidInput.single("events", f"at most {MAX_BATCH} events per request (got {len(events)})")
        results = await run_in_threadpool(lambda: triggers.accept(db, name, events, now=now()))
        if worker is not None:
            worker.wake()
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        metrics.on_accepted(name, [r.status for r in results])
        return TriggerOut(results=[r.public() for r in results], counts=counts)

    # -- activation table ------------------------------------------------------------------

    @app.get("/v1/activations/{name}/log", tags=["activation table"], response_model=LogPage)
    def read_log(
        name: str,
        _: Auth,
        delivered: bool | None = None,
        state: Literal["queued", "retrying", "paused", "delivered", "failed"] | None = None,
        status_code: Annotated[int | None, Query(ge=100, le=599)] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601; events accepted at or after")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601; events accepted before")] = None,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        format: Literal["json", "csv", "ndjson"] = "json",
    ) -> Response:
        activations.get(db, name)
        filters = activation_table.Filters(
            state=state,
            delivered=delivered,
            status_code=status_code,
            since=_timestamp(since, "since"),
            until=_timestamp(until, "until"),
        )
        if format == "json":
            entries, next_before = activation_table.page(
                db, name, filters=filters, limit=limit, before=int(cursor) if cursor else None
            )
            body = {"events": entries, "next_cursor": str(next_before) if next_before else None}
            return Response(orjson.dumps(body), media_type="application/json")
        rows = activation_table.iterate(db, name, filters=filters)
        if format == "csv":
            return StreamingResponse(
                activation_table.csv_chunks(rows),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        return StreamingResponse((orjson.dumps(e) + b"\n" for e in rows), media_type="application/x-ndjson")

    @app.get("/v1/activations/{name}/events/{event_id}", tags=["activation table"])
    def read_event(name: str, event_id: str, _: Auth) -> dict[str, Any]:
        return activation_table.event(db, name, event_id)

    @app.post("/v1/activations/{name}/replay", tags=["operations"])
    async def replay(name: str, _: Auth, body: ReplayIn | None = None) -> ReplayOut:
        await run_in_threadpool(activations.get, db, name)
        result = await run_in_threadpool(
            lambda: outbox.replay_failed(db, name, (body or ReplayIn()).event_ids, now=now())
        )
        if worker is not None:
            worker.wake()
        return ReplayOut(replayed=result.replayed, not_replayable=result.not_replayable)

    app.state.metrics = metrics
    app.state.started_at = time.time()
    mount_console(app, ctx, worker)
    return app


def _timestamp(value: datetime | None, field: str) -> float | None:
    """POSIX seconds; a time without a zone is read as UTC."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InvalidInput.single(field, "out of range") from None
