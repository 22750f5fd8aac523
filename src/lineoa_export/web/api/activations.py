"""``/v1/activations``: triggered activations (read, stats: ``read``; change, validate, preview: ``operator``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ... import activations
from ...operations import Operations
from .bodies import ActivationIn, ActivationOut, PauseIn, SampleIn
from .deps import Operator, Ops, Reader

router = APIRouter(prefix="/v1/activations", tags=["activations"])


def _out(ops: Operations, activation: activations.Activation) -> ActivationOut:
    return ActivationOut(
        **activation.public(),
        counts=ops.counts(activation.name),
        aggregation_unit_status=ops.unit_status(activation.name).public(),
    )


@router.post("", status_code=201)
def create_activation(body: ActivationIn, ops: Ops, _: Operator) -> ActivationOut:
    return _out(ops, ops.create_activation(body.name, body.fields(), copy_from=body.copy_from))


@router.get("")
def list_activations(ops: Ops, _: Reader) -> list[ActivationOut]:
    return [_out(ops, a) for a in ops.list_activations()]


@router.get("/{name}")
def get_activation(name: str, ops: Ops, _: Reader) -> ActivationOut:
    return _out(ops, ops.get_activation(name))


@router.patch("/{name}")
def update_activation(name: str, body: ActivationIn, ops: Ops, _: Operator) -> ActivationOut:
    return _out(ops, ops.update_activation(name, body.changes()))


@router.delete("/{name}", status_code=204)
def delete_activation(name: str, ops: Ops, _: Operator) -> Response:
    ops.delete_activation(name)
    return Response(status_code=204)


@router.post("/{name}/pause")
def pause_activation(name: str, ops: Ops, _: Operator, body: PauseIn | None = None) -> ActivationOut:
    return _out(ops, ops.pause_activation(name, (body or PauseIn()).reason))


@router.post("/{name}/resume")
def resume_activation(name: str, ops: Ops, _: Operator) -> ActivationOut:
    return _out(ops, ops.resume_activation(name))


@router.post("/{name}/validate")
async def validate_activation(name: str, ops: Ops, _: Operator, body: SampleIn | None = None) -> dict[str, Any]:
    await ops.validate_activation(name, (body or SampleIn()).event)
    return {"valid": True, "checked": ["local", "line"]}


@router.get("/{name}/stats")
async def activation_stats(
    name: str,
    ops: Ops,
    _: Reader,
    first: str | None = Query(default=None, alias="from", description="First day, YYYY-MM-DD (UTC+9)"),
    last: str | None = Query(default=None, alias="to", description="Last day, YYYY-MM-DD (UTC+9), at most 30 after"),
) -> dict[str, Any]:
    """LINE's statistics for the activation's aggregation unit; a null figure is one under 20.

    LINE is asked when the stored figures are older than 5 minutes and the channel has one of its
    60 requests an hour left; else the stored figures come back with ``age_seconds`` and a ``note``.
    """
    return (await ops.activation_stats(name, first, last)).public()


@router.post("/{name}/preview")
def preview_activation(name: str, body: SampleIn, ops: Ops, _: Operator) -> dict[str, Any]:
    return ops.preview_activation(name, body.event or {}).public()
