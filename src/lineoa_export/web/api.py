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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, activation_table, activations, apikeys
from ..apikeys import ApiKey
from ..context import Context
from ..delivery.line_client import DEFAULT_API_URL
from ..errors import (
    AlreadyExists,
    CredentialsRejected,
    DatabaseUnavailable,
    FieldProblem,
    InvalidInput,
    LineoaExportError,
    NotFound,
    StorageFull,
)
from ..naming import storable
from ..operations import MAX_BATCH, MAX_REASON, MAX_REPLAY, Operations, WorkerHandle
from .console import mount_console
from .metrics import Metrics
from .request_guard import VERIFIED_KEY, RequestGuard

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


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-64 letters, digits, '_', '.', '-'")
    role: Literal["admin", "operator", "trigger", "read"] = "admin"


class ApiKeyOut(BaseModel):
    name: str
    role: str
    created_at: float
    revoked_at: float | None


class ApiKeyCreated(BaseModel):
    name: str
    role: str
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


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
        """The activation's settings given (for a create: not its name, not where it is copied from)."""
        return self.model_dump(exclude_none=True, exclude={"copy_from", "name"})

    def changes(self) -> dict[str, Any]:
        """Everything given (an update refuses a new name or a ``copy_from``)."""
        return self.model_dump(exclude_none=True)


class RotateIn(BaseModel):
    """The new secret: an access token for a token authentication, else the channel's new secret."""

    model_config = ConfigDict(extra="forbid")
    access_token: SecretStr | None = None
    channel_secret: SecretStr | None = None
    skip_test: bool = Field(default=False, description="Store without testing the new secret with LINE")


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
        default=None, max_length=MAX_REPLAY, description=f"Up to {MAX_REPLAY} failed events; all when left out"
    )


class ReplayOut(BaseModel):
    replayed: list[str]
    not_replayable: list[str]


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="paused through the API", max_length=MAX_REASON)


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

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(_: Request, _exc: DatabaseUnavailable) -> JSONResponse:
        # The store replaces lost connections by itself: the same request works again once it is back.
        return _error(503, "database_unavailable", DatabaseUnavailable.public_message)

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
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "too_large",
        }
        response = _error(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422)}


async def api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    """The caller's API key, name and role (the RequestGuard checked it already); 401 without a valid one."""
    key: ApiKey | None = request.scope.get("state", {}).get(VERIFIED_KEY)
    if key is None and credentials:
        key = await run_in_threadpool(apikeys.verify, request.app.state.ctx.db, credentials.credentials)
    if key is None:
        raise StarletteHTTPException(
            401, "a valid API key is required (Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"}
        )
    return key


def needs(need: str) -> Callable[[ApiKey], ApiKey]:
    """A route's dependency: a valid key (401) whose role may do what the route does (403)."""

    def dependency(key: Annotated[ApiKey, Depends(api_key)]) -> ApiKey:
        if not apikeys.allows(key.role, need):
            raise StarletteHTTPException(
                403,
                f"this needs an API key with the role {apikeys.who_may(need)}; "
                f"the key {key.name!r} has the role {key.role!r}",
            )
        return key

    return dependency


# What each route needs, by name: every route takes exactly one of these.
Reader = Annotated[ApiKey, Depends(needs("read"))]
Triggerer = Annotated[ApiKey, Depends(needs("trigger"))]
Operator = Annotated[ApiKey, Depends(needs("operator"))]
Admin = Annotated[ApiKey, Depends(needs("admin"))]


# -- the app -----------------------------------------------------------------------------------


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def create_api(ctx: Context, *, worker: WorkerHandle | None = None, metrics: Metrics | None = None) -> FastAPI:
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
    ops = Operations(ctx, worker, on_accepted=metrics.on_accepted)
    app.state.ops = ops
    install_error_handlers(app)
    app.add_middleware(
        RequestGuard,
        verify_key=lambda token: apikeys.verify(ctx.db, token),
        error=_error,
        max_body_bytes=MAX_BODY_BYTES,
        body_timeout=BODY_READ_TIMEOUT,
    )

    db = ctx.db

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
    def metrics_endpoint(_: Reader) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    # -- authentications -------------------------------------------------------------------

    @app.post("/v1/authentications", status_code=201, tags=["authentications"])
    async def create_authentication(body: AuthenticationIn, _: Admin) -> AuthenticationOut:
        auth = await ops.create_authentication(
            body.name,
            access_token=_secret(body.access_token),
            channel_id=body.channel_id,
            channel_secret=_secret(body.channel_secret),
            api_url=body.api_url,
            skip_test=body.skip_test,
        )
        return AuthenticationOut(**auth.public())

    @app.get("/v1/authentications", tags=["authentications"])
    def list_authentications(_: Admin) -> list[AuthenticationOut]:
        return [AuthenticationOut(**a.public()) for a in ops.list_authentications()]

    @app.get("/v1/authentications/{name}", tags=["authentications"])
    def get_authentication(name: str, _: Admin) -> AuthenticationOut:
        return AuthenticationOut(**ops.get_authentication(name).public())

    @app.delete("/v1/authentications/{name}", status_code=204, tags=["authentications"])
    def delete_authentication(name: str, _: Admin) -> Response:
        ops.delete_authentication(name)
        return Response(status_code=204)

    @app.post("/v1/authentications/{name}/test", tags=["authentications"])
    async def test_authentication(name: str, _: Admin) -> dict[str, Any]:
        bot = await ops.test_authentication(name)
        return {"ok": True, "bot_user_id": bot.user_id, "bot_name": bot.display_name}

    @app.post("/v1/authentications/{name}/rotate", tags=["authentications"])
    async def rotate_authentication(name: str, body: RotateIn, _: Admin) -> AuthenticationOut:
        auth = await ops.rotate_authentication(
            name,
            access_token=_secret(body.access_token),
            channel_secret=_secret(body.channel_secret),
            skip_test=body.skip_test,
        )
        return AuthenticationOut(**auth.public())

    # -- API keys --------------------------------------------------------------------------

    @app.post("/v1/apikeys", status_code=201, tags=["API keys"])
    def create_apikey(body: ApiKeyIn, _: Admin) -> ApiKeyCreated:
        return ApiKeyCreated(name=body.name, role=body.role, key=ops.create_apikey(body.name, body.role))

    @app.get("/v1/apikeys", tags=["API keys"])
    def list_apikeys(_: Admin) -> list[ApiKeyOut]:
        return [
            ApiKeyOut(name=k.name, role=k.role, created_at=k.created_at, revoked_at=k.revoked_at)
            for k in ops.list_apikeys()
        ]

    @app.delete("/v1/apikeys/{name}", status_code=204, tags=["API keys"])
    def revoke_apikey(name: str, _: Admin) -> Response:
        ops.revoke_apikey(name)
        return Response(status_code=204)

    # -- activations -----------------------------------------------------------------------

    def activation_out(a: activations.Activation, with_counts: bool = True) -> ActivationOut:
        counts = ops.counts(a.name) if with_counts else {}
        return ActivationOut(**a.public(), counts=counts)

    @app.post("/v1/activations", status_code=201, tags=["activations"])
    def create_activation(body: ActivationIn, _: Operator) -> ActivationOut:
        return activation_out(ops.create_activation(body.name, body.fields(), copy_from=body.copy_from))

    @app.get("/v1/activations", tags=["activations"])
    def list_activations(_: Reader) -> list[ActivationOut]:
        return [activation_out(a) for a in ops.list_activations()]

    @app.get("/v1/activations/{name}", tags=["activations"])
    def get_activation(name: str, _: Reader) -> ActivationOut:
        return activation_out(ops.get_activation(name))

    @app.patch("/v1/activations/{name}", tags=["activations"])
    def update_activation(name: str, body: ActivationIn, _: Operator) -> ActivationOut:
        return activation_out(ops.update_activation(name, body.changes()))

    @app.delete("/v1/activations/{name}", status_code=204, tags=["activations"])
    def delete_activation(name: str, _: Operator) -> Response:
        ops.delete_activation(name)
        return Response(status_code=204)

    @app.post("/v1/activations/{name}/pause", tags=["activations"])
    def pause_activation(name: str, _: Operator, body: PauseIn | None = None) -> ActivationOut:
        return activation_out(ops.pause_activation(name, (body or PauseIn()).reason))

    @app.post("/v1/activations/{name}/resume", tags=["activations"])
    def resume_activation(name: str, _: Operator) -> ActivationOut:
        return activation_out(ops.resume_activation(name))

    @app.post("/v1/activations/{name}/validate", tags=["activations"])
    async def validate_activation(name: str, _: Operator, body: SampleIn | None = None) -> dict[str, Any]:
        await ops.validate_activation(name, (body or SampleIn()).event)
        return {"valid": True, "checked": ["local", "line"]}

    @app.post("/v1/activations/{name}/preview", tags=["activations"])
    def preview_activation(name: str, body: SampleIn, _: Operator) -> dict[str, Any]:
        return ops.preview_activation(name, body.event or {}).public()

    # -- triggers --------------------------------------------------------------------------

    @app.post("/v1/activations/{name}/triggers", status_code=202, tags=["triggers"])
    def trigger(name: str, body: TriggerIn, _: Triggerer) -> TriggerOut:
        if (body.event is None) == (body.events is None):
            raise InvalidInput.single("body", "give exactly one of 'event' or 'events'")
        triggered = ops.trigger(name, [body.event] if body.event is not None else (body.events or []))
        return TriggerOut(results=[r.public() for r in triggered.results], counts=triggered.counts)

    # -- activation table ------------------------------------------------------------------

    @app.get("/v1/activations/{name}/log", tags=["activation table"], response_model=LogPage)
    def read_log(
        name: str,
        _: Reader,
        delivered: bool | None = None,
        state: Literal["queued", "retrying", "paused", "delivered", "failed"] | None = None,
        status_code: Annotated[int | None, Query(ge=100, le=599)] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601; events accepted at or after")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601; events accepted before")] = None,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        format: Literal["json", "csv", "ndjson"] = "json",
    ) -> Response:
        filters = activation_table.Filters(
            state=state,
            delivered=delivered,
            status_code=status_code,
            since=_timestamp(since, "since"),
            until=_timestamp(until, "until"),
        )
        if format == "json":
            entries, next_before = ops.table_page(name, filters, limit=limit, before=int(cursor) if cursor else None)
            body = {"events": entries, "next_cursor": str(next_before) if next_before else None}
            return Response(orjson.dumps(body), media_type="application/json")
        chunks = ops.export(name, filters, format)
        if format == "csv":
            return StreamingResponse(
                chunks, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
            )
        return StreamingResponse(chunks, media_type="application/x-ndjson")

    @app.get("/v1/activations/{name}/events/{event_id}", tags=["activation table"])
    def read_event(name: str, event_id: str, _: Reader) -> dict[str, Any]:
        return ops.event(name, event_id)

    @app.post("/v1/activations/{name}/replay", tags=["operations"])
    def replay(name: str, _: Operator, body: ReplayIn | None = None) -> ReplayOut:
        result = ops.replay(name, (body or ReplayIn()).event_ids)
        return ReplayOut(replayed=result.replayed, not_replayable=result.not_replayable)

    app.state.metrics = metrics
    app.state.started_at = time.time()
    mount_console(app, ops)
    return app


def _timestamp(value: datetime | None, field: str) -> float | None:
    """POSIX seconds; a time without a zone is read as UTC."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InvalidInput.single(field, "out of range") from None
