"""The activation table (role ``read``): pages, exports, one event; and replay (role ``operator``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from ... import activation_table
from ...errors import InvalidInput
from .bodies import LogPage, ReplayIn, ReplayOut
from .deps import Operator, Ops, Reader

router = APIRouter(prefix="/v1/activations")


def _timestamp(value: datetime | None, field: str) -> float | None:
    """POSIX seconds; a time without a zone is read as UTC."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InvalidInput.single(field, "out of range") from None


@router.get("/{name}/log", tags=["activation table"], response_model=LogPage)
def read_log(
    name: str,
    ops: Ops,
    _: Reader,
    delivered: bool | None = None,
    state: Literal["queued", "retrying", "paused", "delivered", "failed", "suppressed", "deferred"] | None = None,
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


@router.get("/{name}/events/{event_id}", tags=["activation table"])
def read_event(name: str, event_id: str, ops: Ops, _: Reader) -> dict[str, Any]:
    return ops.event(name, event_id)


@router.post("/{name}/replay", tags=["operations"])
def replay(name: str, ops: Ops, _: Operator, body: ReplayIn | None = None) -> ReplayOut:
    result = ops.replay(name, (body or ReplayIn()).event_ids)
    return ReplayOut(replayed=result.replayed, not_replayable=result.not_replayable)
