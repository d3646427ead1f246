"""One error envelope for every 4xx and 5xx: `{"error": {"code", "message", "details"}}`.

Validation details carry where and what, never the submitted value: a caller's number or a
narrative must not be echoed back into a response (or a proxy's log of it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic_core import ErrorDetails
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import store_unavailable
from app.errors import AppError, TooManyRequests
from app.logs import exception_origin
from app.metrics.catalogue import DATABASE_ERRORS
from app.rules.errors import RulesError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


def envelope(status: int, code: str, message: str, details: object = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}},
        status_code=status,
        headers=headers,
    )


def _clean_validation_errors(errors: Sequence[ErrorDetails]) -> list[dict[str, object]]:
    cleaned: list[dict[str, object]] = []
    for err in errors:
        cleaned.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return cleaned


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError | RulesError)
    response = envelope(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _clean_validation_errors(exc.errors())
    if any(d["type"] == "json_invalid" for d in details):
        return envelope(400, "malformed_json", "request body is not valid JSON", details)
    return envelope(422, "validation_error", "request did not validate", details)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    response = envelope(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


# The store (or the pool in front of it) cannot serve right now: down, restarting, out of
# connections, or a transient failure such as a deadlock. Nothing was committed; the caller
# should retry, and a telephony platform does on 503. Other driver errors (DBAPIError) are
# sorted by `store_unavailable`: asyncpg's "the database system is shutting down / starting
# up" (CannotConnectNowError) or a statement cancelled by the statement timeout arrive as
# plain DBAPIErrors.
_STORE_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)
RETRY_AFTER_SECONDS = 2


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The class name only: driver messages can quote statement parameters.
    log.warning(
        "store unavailable on %s %s",
        request.method,
        request.url.path,
        extra={"error": type(exc).__name__},
    )
    DATABASE_ERRORS.inc(type(exc).__name__)
    response = envelope(503, "unavailable", "the store is unavailable; retry shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    if store_unavailable(exc):
        return await _store_unavailable(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The type and where it was raised; never the message, which may quote request data (a
    # driver's error names the offending value). The traceback is rendered value-free.
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        extra={"error": type(exc).__name__, "where": exception_origin(exc)},
        exc_info=exc,
    )
    return envelope(500, "internal_error", "internal error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RulesError, _app_error)  # the pure rules' own (same shape)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in _STORE_UNAVAILABLE:
        app.add_exception_handler(kind, _store_unavailable)
    app.add_exception_handler(sa_exc.DBAPIError, _driver_error)
    app.add_exception_handler(Exception, _unexpected)
