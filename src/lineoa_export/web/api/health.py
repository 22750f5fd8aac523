"""Health checks (no key) and Prometheus metrics (role ``read``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .bodies import ErrorBody
from .deps import Reader
from .errors import error_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorBody}})
def readyz(request: Request) -> Response:
    db = request.app.state.ctx.db
    if not db.ping():
        return error_response(503, "not_ready", "the database is not reachable")
    if db.storage_full:
        return error_response(503, "storage_full", "the database's disk is full: writes fail until space is freed")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, _: Reader) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
