"""``/v1/authentications``: stored LINE channel credentials (role ``admin``; secrets are write-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from .bodies import AuthenticationIn, AuthenticationOut, AuthenticationUpdate, RotateIn, secret
from .deps import Admin, Ops

router = APIRouter(prefix="/v1/authentications", tags=["authentications"])


@router.post("", status_code=201)
async def create_authentication(body: AuthenticationIn, ops: Ops, _: Admin) -> AuthenticationOut:
    auth = await ops.create_authentication(
        body.name,
        access_token=secret(body.access_token),
        channel_id=body.channel_id,
        channel_secret=secret(body.channel_secret),
        api_url=body.api_url,
        skip_test=body.skip_test,
    )
    return AuthenticationOut(**auth.public())


@router.get("")
def list_authentications(ops: Ops, _: Admin) -> list[AuthenticationOut]:
    return [AuthenticationOut(**a.public()) for a in ops.list_authentications()]


@router.get("/{name}")
def get_authentication(name: str, ops: Ops, _: Admin) -> AuthenticationOut:
    return AuthenticationOut(**ops.get_authentication(name).public())


@router.patch("/{name}")
def update_authentication(name: str, body: AuthenticationUpdate, ops: Ops, _: Admin) -> AuthenticationOut:
    auth = ops.update_authentication(
        name,
        forward_webhook=body.forward_webhook,
        no_forward_webhook=body.stops_forwarding,
        channel_secret=secret(body.channel_secret),
    )
    return AuthenticationOut(**auth.public())


@router.delete("/{name}", status_code=204)
def delete_authentication(name: str, ops: Ops, _: Admin) -> Response:
    ops.delete_authentication(name)
    return Response(status_code=204)


@router.post("/{name}/test")
async def test_authentication(name: str, ops: Ops, _: Admin) -> dict[str, Any]:
    bot = await ops.test_authentication(name)
    return {"ok": True, "bot_user_id": bot.user_id, "bot_name": bot.display_name}


@router.post("/{name}/rotate")
async def rotate_authentication(name: str, body: RotateIn, ops: Ops, _: Admin) -> AuthenticationOut:
    auth = await ops.rotate_authentication(
        name,
        access_token=secret(body.access_token),
        channel_secret=secret(body.channel_secret),
        skip_test=body.skip_test,
    )
    return AuthenticationOut(**auth.public())
