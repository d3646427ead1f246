"""Typed application errors. Each maps to one HTTP status and a stable machine-readable code.

Raise them anywhere below the routers; `app.api.errors` renders every one of them (and every
framework error) in the single envelope `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotAuthenticated(AppError):
    status, code = 401, "not_authenticated"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class Conflict(AppError):
    status, code = 409, "conflict"


class Unprocessable(AppError):
    status, code = 422, "validation_error"


class TooManyRequests(AppError):
    """Over a rate limit: answered with `Retry-After` (whole seconds until it lifts)."""

    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details)
        self.retry_after = max(1, retry_after)


class Unavailable(AppError):
    status, code = 503, "unavailable"
