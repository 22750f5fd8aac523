"""``/v1/authentications/{name}/reconcile``: LINE's count of a day's pushes next to ours.

Running one asks LINE and stores the verdict (role ``operator``); reading the stored ones needs
``read``. See :mod:`lineoa_export.insight.reconcile` for the verdicts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from .deps import Operator, Ops, Reader

router = APIRouter(prefix="/v1/authentications", tags=["reconciliation"])


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: str | None = Field(default=None, description="A day in UTC+9, YYYY-MM-DD (default: yesterday)")


@router.post("/{name}/reconcile")
async def reconcile(name: str, ops: Ops, _: Operator, body: ReconcileIn | None = None) -> dict[str, Any]:
    """Compare LINE's count of the channel's pushes that day with the pushes we recorded as accepted:
    ``equal``, ``line_more``, ``line_fewer``, ``not_ready`` or ``unavailable`` (under 20)."""
    return (await ops.reconcile(name, (body or ReconcileIn()).date)).public()


@router.get("/{name}/reconciliations")
def reconciliations(name: str, ops: Ops, _: Reader) -> list[dict[str, Any]]:
    """The stored verdicts, newest day first (up to 31)."""
    return [r.public() for r in ops.reconciliations(name)]
