"""How the API says no: one JSON shape for every error, naming each bad field.

::

    {"error": "invalid_input", "message": "...", "problems": [{"field": "messages[0].text",
                                                               "reason": "longer than 5000"}]}

The one rule: every error this package raises on purpose (:mod:`lineoa_export.errors`) maps to
one status here, so no route catches them itself and no input answers 5xx.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import activations
from ...errors import (
    AlreadyExists,
    CredentialsRejected,
    DatabaseUnavailable,
    FieldProblem,
    InvalidInput,
    LineoaExportError,
    NotFound,
    StorageFull,
)
from ...naming import storable
from .bodies import ErrorBody

HTTP_ERRORS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
}
# What the OpenAPI document lists for every route.
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422)}


def error_response(status: int, error: str, message: str, problems: list[FieldProblem] | None = None) -> JSONResponse:
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


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return error_response(422, "invalid_input", str(exc), list(exc.problems))


async def _rejected(_: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "credentials_rejected", str(exc), [FieldProblem("credentials", str(exc))])


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    problems = [FieldProblem(_path_of(tuple(e.get("loc", ()))), str(e.get("msg", "invalid"))) for e in errors]
    return error_response(422, "invalid_input", "; ".join(str(p) for p in problems), problems)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = error_response(exc.status_code, HTTP_ERRORS.get(exc.status_code, "http_error"), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The store replaces lost connections by itself: the same request works again once it is back.
    return error_response(503, "database_unavailable", DatabaseUnavailable.public_message)


def _plain(status: int, error: str) -> Any:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return error_response(status, error, str(exc))

    return handler


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(NotFound, _plain(404, "not_found"))
    app.add_exception_handler(AlreadyExists, _plain(409, "already_exists"))
    app.add_exception_handler(CredentialsRejected, _rejected)
    app.add_exception_handler(StorageFull, _plain(503, "storage_full"))
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(LineoaExportError, _plain(400, "bad_request"))
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
