"""The rules' own error: raised when a request names what the packs do not hold, or when the
packs are invalid. The rules import nothing of the service's, so this is not an `AppError`;
it carries the same `status`, `code`, `message` and `details`, and the API renders it in the
same envelope (`app.api.errors`)."""

from __future__ import annotations

from typing import Any


class RulesError(Exception):
    status: int = 422
    code: str = "validation_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
