"""``GET /v1/activations/{name}/overview`` and ``GET /v1/authentications/{name}/overview`` (role ``read``):
the figures of the console's overview pages, as JSON.

The last hour by minute (pushes delivered, retried, failed; trigger→push latency), outcomes, retry
reasons, the queue and its lag, the channel's rate limit, hold and lane, engagement as stored (a
null is "fewer than 20"), the latest reconciliation and the monthly quota (LINE is asked at most
once a minute per channel; see :mod:`lineoa_export.overview` and :mod:`lineoa_export.insight.quota`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .deps import Ops, Reader

router = APIRouter(prefix="/v1", tags=["overview"])


@router.get("/activations/{name}/overview")
async def activation_overview(name: str, ops: Ops, _: Reader) -> dict[str, Any]:
    """The activation's last hour, queue, channel state, quota, engagement and latest reconciliation."""
    return (await ops.activation_overview(name)).public()


@router.get("/authentications/{name}/overview")
async def channel_overview(name: str, ops: Ops, _: Reader) -> dict[str, Any]:
    """The same for every activation on the authentication's LINE channel."""
    return (await ops.channel_overview(name)).public()
