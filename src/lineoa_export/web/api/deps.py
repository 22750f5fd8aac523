"""What every route depends on: the caller's API key, whose role must allow what the route does,
and the operations it calls.

The one rule: every route takes exactly one of :data:`Reader`, :data:`Triggerer`,
:data:`Operator` or :data:`Admin`, which is how it states the role it needs
(:func:`lineoa_export.apikeys.allows` decides who may).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import apikeys
from ...apikeys import ApiKey
from ...operations import Operations
from ..request_guard import VERIFIED_KEY

bearer = HTTPBearer(auto_error=False, description="An API key from `lineoa-export apikey create NAME`.")


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


Reader = Annotated[ApiKey, Depends(needs("read"))]
Triggerer = Annotated[ApiKey, Depends(needs("trigger"))]
Operator = Annotated[ApiKey, Depends(needs("operator"))]
Admin = Annotated[ApiKey, Depends(needs("admin"))]


def operations_of(request: Request) -> Operations:
    ops = request.app.state.ops
    assert isinstance(ops, Operations)
    return ops


Ops = Annotated[Operations, Depends(operations_of)]
