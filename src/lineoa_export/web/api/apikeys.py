"""``/v1/apikeys``: API keys with a role (role ``admin``; a new key is shown once)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from .bodies import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from .deps import Admin, Ops

router = APIRouter(prefix="/v1/apikeys", tags=["API keys"])


@router.post("", status_code=201)
def create_apikey(body: ApiKeyIn, ops: Ops, _: Admin) -> ApiKeyCreated:
    return ApiKeyCreated(name=body.name, role=body.role, key=ops.create_apikey(body.name, body.role))


@router.get("")
def list_apikeys(ops: Ops, _: Admin) -> list[ApiKeyOut]:
    return [
        ApiKeyOut(name=k.name, role=k.role, created_at=k.created_at, revoked_at=k.revoked_at)
        for k in ops.list_apikeys()
    ]


@router.delete("/{name}", status_code=204)
def revoke_apikey(name: str, ops: Ops, _: Admin) -> Response:
    ops.revoke_apikey(name)
    return Response(status_code=204)
